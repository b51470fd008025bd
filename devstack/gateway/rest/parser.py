"""PostgREST's query string grammar, parsed into a small syntax tree. Pure: no I/O, no catalog.

Supported: ``select`` (columns, ``*``, ``alias:column``), horizontal filters ``col=[not.]op.value`` with
``eq neq gt gte lt lte like ilike match imatch in is``, logic trees ``or=(...)``/``and=(...)`` (also
``not.or``/``not.and``) with nested ``and(...)``/``or(...)``, ``order`` (``asc desc nullsfirst
nullslast``), ``limit``, ``offset``, ``on_conflict``, ``columns``, and the ``Prefer`` header. Names are
returned as written; whether they exist is the SQL builder's question (it checks the catalog).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from devstack.gateway.rest.errors import RestError, parse_error
from devstack.gateway.rest.reader import Reader

OPERATORS = frozenset({"eq", "neq", "gt", "gte", "lt", "lte", "like", "ilike", "match", "imatch", "in", "is"})
IS_VALUES = frozenset({"null", "true", "false", "unknown"})
_MAX_BIGINT = 2**63 - 1
LOGIC_KEYS: dict[str, tuple[Literal["and", "or"], bool]] = {
    "or": ("or", False),
    "and": ("and", False),
    "not.or": ("or", True),
    "not.and": ("and", True),
}


@dataclass(frozen=True)
class Condition:
    """``column <operator> value``; ``value`` is a tuple for ``in``, a keyword for ``is``."""

    column: str
    operator: str
    value: str | tuple[str, ...]
    negated: bool = False


@dataclass(frozen=True)
class Logic:
    """Conditions joined by ``and``/``or``."""

    op: Literal["and", "or"]
    items: tuple[Condition | Logic, ...]
    negated: bool = False


Node = Condition | Logic


@dataclass(frozen=True)
class SelectItem:
    """One output column: ``column`` is ``*`` for all columns; ``alias`` renames it."""

    column: str
    alias: str | None = None


@dataclass(frozen=True)
class OrderItem:
    column: str
    descending: bool = False
    nulls: Literal["first", "last"] | None = None


@dataclass(frozen=True)
class Query:
    """Everything a request's query string says, beyond the path."""

    select: tuple[SelectItem, ...] = (SelectItem("*"),)
    where: tuple[Node, ...] = ()
    order: tuple[OrderItem, ...] = ()
    limit: int | None = None
    offset: int | None = None
    on_conflict: tuple[str, ...] | None = None
    columns: tuple[str, ...] | None = None
    arguments: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Preferences:
    """The ``Prefer`` header: what PostgREST lets the client choose."""

    return_: Literal["representation", "minimal", "headers-only"] | None = None
    count: Literal["exact", "planned", "estimated"] | None = None
    resolution: Literal["merge-duplicates", "ignore-duplicates"] | None = None
    missing_default: bool = False

    def applied(self) -> str:
        """The ``Preference-Applied`` header value for what was honoured."""
        parts = []
        if self.return_:
            parts.append(f"return={self.return_}")
        if self.count:
            parts.append(f"count={self.count}")
        if self.resolution:
            parts.append(f"resolution={self.resolution}")
        if self.missing_default:
            parts.append("missing=default")
        return ", ".join(parts)


def parse_query(items: Iterable[tuple[str, str]], *, arguments: frozenset[str] = frozenset()) -> Query:
    """Parse decoded query string pairs (keys may repeat). Names in ``arguments`` are RPC arguments."""
    select: tuple[SelectItem, ...] = (SelectItem("*"),)
    where: list[Node] = []
    order: tuple[OrderItem, ...] = ()
    limit = offset = None
    on_conflict = columns = None
    args: dict[str, str] = {}
    for key, value in items:
        if key in arguments:
            args[key] = value
        elif key == "select":
            select = parse_select(value)
        elif key == "order":
            order = parse_order(value)
        elif key == "limit":
            limit = _parse_count("limit", value)
        elif key == "offset":
            offset = _parse_count("offset", value)
        elif key == "on_conflict":
            on_conflict = parse_name_list("on_conflict", value)
        elif key == "columns":
            columns = parse_name_list("columns", value)
        elif key in LOGIC_KEYS:
            op, negated = LOGIC_KEYS[key]
            where.append(parse_logic(op, value, negated=negated))
        else:
            where.append(parse_filter(key, value))
    return Query(select, tuple(where), order, limit, offset, on_conflict, columns, args)


def _parse_count(name: str, value: str) -> int:
    text = value.strip()
    if text.startswith("-") and text[1:].isdigit():
        raise RestError(416, "PGRST103", "Requested range not satisfiable", details=f"{name} must not be negative")
    if not text.isascii() or not text.isdigit() or int(text) > _MAX_BIGINT:
        raise parse_error(f"failed to parse {name} ({value})", "expecting a non-negative 64-bit integer")
    return int(text)


def parse_filter(column: str, value: str) -> Condition:
    """``column=[not.]operator.value`` from the query string."""
    if not column or column != column.strip():
        raise parse_error(f"failed to parse filter ({column}={value})", "a filter needs a column name")
    negated = False
    rest = value
    if rest.startswith("not."):
        negated, rest = True, rest[4:]
    operator, dot, operand = rest.partition(".")
    if not dot or operator not in OPERATORS:
        raise parse_error(
            f"failed to parse filter ({value})",
            f"unknown operator {operator!r}; expecting one of {', '.join(sorted(OPERATORS))}",
        )
    return _condition(column, operator, operand, negated, source=value)


def _condition(column: str, operator: str, operand: str, negated: bool, *, source: str) -> Condition:
    if operator == "in":
        return Condition(column, "in", parse_in_list(operand, source=source), negated)
    if operator == "is":
        keyword = operand.lower()
        if keyword not in IS_VALUES:
            raise parse_error(f"failed to parse filter ({source})", "is. accepts null, true, false or unknown")
        return Condition(column, "is", keyword, negated)
    if operator in ("like", "ilike"):
        # PostgREST's URL-friendly wildcard: * stands for %.
        operand = operand.replace("*", "%")
    return Condition(column, operator, operand, negated)


def parse_in_list(text: str, *, source: str) -> tuple[str, ...]:
    """``(a,"b,c",d)``: comma-separated, double quotes protect commas, backslash escapes in quotes."""
    if len(text) < 2 or text[0] != "(" or text[-1] != ")":
        raise parse_error(f"failed to parse filter ({source})", "in. needs a parenthesised list: in.(a,b)")
    reader = Reader(text[1:-1])
    values: list[str] = []
    if reader.at_end():
        return ()
    while True:
        values.append(reader.quoted() if reader.peek() == '"' else reader.until(",", source=source))
        if reader.at_end():
            return tuple(values)
        reader.expect(",", source=source)


def parse_logic(op: Literal["and", "or"], value: str, *, negated: bool = False) -> Logic:
    """The value of ``or=``/``and=``: ``(item,item,...)``."""
    reader = Reader(value)
    tree = _logic_body(reader, op, negated, source=value)
    if not reader.at_end():
        raise parse_error(f"failed to parse logic tree ({value})", "unexpected text after the closing parenthesis")
    return tree


def _logic_body(reader: Reader, op: Literal["and", "or"], negated: bool, *, source: str) -> Logic:
    reader.expect("(", source=source)
    items: list[Node] = []
    while True:
        items.append(_logic_item(reader, source=source))
        if reader.peek() == ",":
            reader.advance()
            continue
        reader.expect(")", source=source)
        return Logic(op, tuple(items), negated)


def _logic_item(reader: Reader, *, source: str) -> Node:
    negated = reader.consume("not.")
    ops: tuple[Literal["and", "or"], ...] = ("and", "or")
    for op in ops:
        if reader.consume(f"{op}("):
            reader.back(1)
            return _logic_body(reader, op, negated, source=source)
    if negated:
        raise parse_error(f"failed to parse logic tree ({source})", "not. must be followed by and(...) or or(...)")
    column = reader.until(".", source=source)
    reader.expect(".", source=source)
    negated = reader.consume("not.")
    operator = reader.until(".", source=source)
    reader.expect(".", source=source)
    if operator not in OPERATORS:
        raise parse_error(f"failed to parse logic tree ({source})", f"unknown operator {operator!r}")
    if not column:
        raise parse_error(f"failed to parse logic tree ({source})", "a condition needs a column name")
    if operator == "in":
        operand = reader.balanced(source=source)
    elif reader.peek() == '"':
        # A quoted operand is taken literally: commas and parentheses inside it are data.
        operand = reader.quoted()
    else:
        operand = reader.value(source=source)
    return _condition(column, operator, operand, negated, source=source)


def parse_select(value: str) -> tuple[SelectItem, ...]:
    items = []
    for raw in _split_top(value, source=value):
        text = raw.strip()
        if not text:
            raise parse_error(f"failed to parse select parameter ({value})", "empty column name")
        if "(" in text or text.startswith("..."):
            raise parse_error(
                f"failed to parse select parameter ({value})",
                "embedded resources, spreads and aggregates are not supported by the devstack gateway",
            )
        if "::" in text or "->" in text:
            raise parse_error(
                f"failed to parse select parameter ({value})",
                "casts and JSON paths in select are not supported by the devstack gateway",
            )
        alias, colon, column = text.partition(":")
        if colon:
            items.append(SelectItem(_unquote(column.strip()), _unquote(alias.strip())))
        else:
            items.append(SelectItem(_unquote(text)))
    return tuple(items)


def parse_order(value: str) -> tuple[OrderItem, ...]:
    items = []
    for raw in value.split(","):
        parts = raw.strip().split(".")
        column, modifiers = parts[0], parts[1:]
        if not column or len(modifiers) > 2:
            raise parse_error(
                f"failed to parse order ({value})", "expecting column[.asc|.desc][.nullsfirst|.nullslast]"
            )
        descending = False
        nulls: Literal["first", "last"] | None = None
        for index, modifier in enumerate(modifiers):
            if modifier in ("asc", "desc") and index == 0:
                descending = modifier == "desc"
            elif modifier in ("nullsfirst", "nullslast") and nulls is None:
                nulls = "first" if modifier == "nullsfirst" else "last"
            else:
                raise parse_error(f"failed to parse order ({value})", f"unexpected modifier {modifier!r}")
        items.append(OrderItem(_unquote(column), descending, nulls))
    return tuple(items)


def parse_name_list(name: str, value: str) -> tuple[str, ...]:
    """``a,b`` or ``"a","b"`` (the client quotes each key of ``columns``)."""
    reader = Reader(value)
    names: list[str] = []
    while True:
        if reader.peek() == '"':
            names.append(reader.quoted())
        else:
            names.append(reader.until(",", source=value).strip())
        if reader.at_end():
            break
        reader.expect(",", source=value)
    if any(not n for n in names):
        raise parse_error(f"failed to parse {name} ({value})", "empty column name")
    return tuple(names)


def parse_prefer(values: Iterable[str]) -> Preferences:
    """All ``Prefer`` headers; unknown preferences are ignored, as PostgREST does by default."""
    found: dict[str, str] = {}
    for header in values:
        for part in header.split(","):
            key, _, val = part.strip().partition("=")
            found[key.strip().lower()] = val.strip().lower()
    return_ = found.get("return")
    count = found.get("count")
    resolution = found.get("resolution")
    return Preferences(
        return_=return_ if return_ in ("representation", "minimal", "headers-only") else None,  # type: ignore[arg-type]
        count=count if count in ("exact", "planned", "estimated") else None,  # type: ignore[arg-type]
        resolution=resolution if resolution in ("merge-duplicates", "ignore-duplicates") else None,  # type: ignore[arg-type]
        missing_default=found.get("missing") == "default",
    )


def _unquote(name: str) -> str:
    if len(name) >= 2 and name[0] == name[-1] == '"':
        return name[1:-1]
    return name


def _split_top(text: str, *, source: str) -> list[str]:
    """Split on commas outside parentheses and double quotes."""
    parts, depth, quoted, start = [], 0, False, 0
    for index, char in enumerate(text):
        if char == '"':
            quoted = not quoted
        elif quoted:
            continue
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise parse_error(f"failed to parse select parameter ({source})", "unbalanced parentheses")
        elif char == "," and depth == 0:
            parts.append(text[start:index])
            start = index + 1
    if depth or quoted:
        raise parse_error(f"failed to parse select parameter ({source})", "unbalanced parentheses or quotes")
    parts.append(text[start:])
    return parts
