"""A cursor over one query string value, for the parser's small grammars (names, JSON paths, lists).

Every failure is PGRST100 in PostgREST's shape: the message names what failed to parse and where
(``"failed to parse filter (eq)" (line 1, column 3)``), the details what was found and expected.
"""

from __future__ import annotations

from devstack.gateway.rest.errors import RestError, parse_error

# PostgREST's identifier characters: letters, digits, underscore, space and dollar (spaces are trimmed).
_IDENT_EXTRA = "_ $"
# What ends an unquoted JSON key (``->key``).
_JSON_KEY_STOPS = "(-:.,>)"


def is_ident_char(char: str) -> bool:
    return char.isalnum() or char in _IDENT_EXTRA


class Reader:
    """A cursor over one parameter value; ``source`` names the value in error messages."""

    def __init__(self, text: str, source: str) -> None:
        self.text = text
        self.source = source
        self.pos = 0

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def peek(self, offset: int = 0) -> str:
        index = self.pos + offset
        return self.text[index] if index < len(self.text) else ""

    def startswith(self, prefix: str) -> bool:
        return self.text.startswith(prefix, self.pos)

    def consume(self, prefix: str) -> bool:
        if self.text.startswith(prefix, self.pos):
            self.pos += len(prefix)
            return True
        return False

    def skip_blanks(self) -> None:
        while self.peek() in (" ", "\t") and self.peek():
            self.pos += 1

    def fail(self, expecting: str) -> RestError:
        found = f'"{self.peek()}"' if not self.at_end() else "end of input"
        return parse_error(
            f'"{self.source}" (line 1, column {self.pos + 1})', f"unexpected {found} expecting {expecting}"
        )

    def expect(self, char: str, expecting: str | None = None) -> None:
        if self.peek() != char:
            raise self.fail(expecting or f'"{char}"')
        self.pos += 1

    def quoted(self) -> str:
        """A double-quoted string (the cursor is on the quote); backslash escapes the next character."""
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
        raise self.fail('"\\"" (an unterminated quoted value)')

    def identifier(self) -> str:
        """One or more identifier characters, trimmed (PostgREST's ``pIdentifier``)."""
        start = self.pos
        while not self.at_end() and is_ident_char(self.peek()):
            self.pos += 1
        if self.pos == start:
            raise self.fail("letter or digit")
        return self.text[start : self.pos].strip()

    def _dashed(self, *, json_key: bool = False) -> str:
        """Words joined by dashes, where a dash followed by ``>`` is an arrow, not part of the name."""
        words = [self._json_word() if json_key else self.identifier()]
        while self.peek() == "-" and self.peek(1) != ">":
            self.pos += 1
            words.append(self._json_word() if json_key else self.identifier())
        return "-".join(words)

    def _json_word(self) -> str:
        start = self.pos
        while not self.at_end() and self.peek() not in _JSON_KEY_STOPS:
            self.pos += 1
        if self.pos == start:
            raise self.fail("any non reserved character different from: .,>()")
        return self.text[start : self.pos].strip()

    def field_name(self) -> str:
        """A column, relation or alias name: quoted, or identifier words joined by dashes."""
        if self.peek() == '"':
            return self.quoted()
        if self.at_end() or not is_ident_char(self.peek()):
            raise self.fail("field name (* or [a..z0..9_$])")
        return self._dashed()

    def json_key(self) -> str:
        if self.peek() == '"':
            return self.quoted()
        return self._dashed(json_key=True)

    def until(self, stops: str) -> str:
        """Everything up to (not including) one of ``stops`` or the end."""
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] not in stops:
            self.pos += 1
        return self.text[start : self.pos]

    def rest(self) -> str:
        value = self.text[self.pos :]
        self.pos = len(self.text)
        return value
