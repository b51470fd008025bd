"""A cursor over one query string value, for the parser's small grammars (logic trees, lists, names).

Every failure is PGRST100 naming the text that failed, as PostgREST reports its parse errors.
"""

from __future__ import annotations

from devstack.gateway.rest.errors import parse_error


class Reader:
    """A cursor over one parameter value, for the parser's small recursive grammars."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def advance(self) -> None:
        self.pos += 1

    def back(self, count: int) -> None:
        self.pos -= count

    def consume(self, prefix: str) -> bool:
        if self.text.startswith(prefix, self.pos):
            self.pos += len(prefix)
            return True
        return False

    def expect(self, char: str, *, source: str) -> None:
        if self.peek() != char:
            found = repr(self.peek()) if self.peek() else "the end"
            raise parse_error(
                f"failed to parse ({source})", f"expecting {char!r} at position {self.pos}, found {found}"
            )
        self.pos += 1

    def until(self, stops: str, *, source: str) -> str:
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] not in stops:
            if self.text[self.pos] in "()":
                raise parse_error(f"failed to parse ({source})", f"unexpected parenthesis at position {self.pos}")
            self.pos += 1
        return self.text[start : self.pos]

    def quoted(self) -> str:
        """A double-quoted string; backslash escapes the next character."""
        self.pos += 1
        out = []
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char == "\\" and self.pos + 1 < len(self.text):
                out.append(self.text[self.pos + 1])
                self.pos += 2
            elif char == '"':
                self.pos += 1
                return "".join(out)
            else:
                out.append(char)
                self.pos += 1
        raise parse_error(f"failed to parse ({self.text})", "unterminated double quote")

    def value(self, *, source: str) -> str:
        """An unquoted operand inside a logic tree: up to a comma or closing parenthesis at depth 0."""
        start, depth = self.pos, 0
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char == "(":
                depth += 1
            elif char == ")":
                if depth == 0:
                    break
                depth -= 1
            elif char == "," and depth == 0:
                break
            self.pos += 1
        return self.text[start : self.pos]

    def balanced(self, *, source: str) -> str:
        """A parenthesised list such as ``(1,"a,b")``, returned with its parentheses."""
        start = self.pos
        self.expect("(", source=source)
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char == '"':
                self.quoted()
                continue
            self.pos += 1
            if char == ")":
                return self.text[start : self.pos]
        raise parse_error(f"failed to parse logic tree ({source})", "unterminated in.(...) list")
