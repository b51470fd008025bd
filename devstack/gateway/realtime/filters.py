"""``postgres_changes`` filters: Supabase's syntax, typed comparison of row values. Pure.

A binding may carry ``filter: "session_id=eq.<uuid>"``; several conditions joined by commas must all
hold (``"seq=gt.10,session_id=eq.<uuid>"``), and ``not.`` negates an operator. The operators are
``eq neq lt lte gt gte in``; ``in`` takes a parenthesised list (``id=in.(1,2,3)``, elements quoted like
PostgREST's when they hold commas). Anything else is refused when the channel joins, as Realtime does.

Filter values are cast to the column's type by Postgres when the channel joins (so ``eq.abc`` on a uuid
column is a join error, and ``eq.01`` on an integer equals ``1``); the canonical text Postgres returns
and the values wal2json decodes are then compared here, by type, without a database round trip per row.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

OPERATORS = frozenset({"eq", "neq", "lt", "lte", "gt", "gte", "in"})
ORDERING_OPERATORS = frozenset({"lt", "lte", "gt", "gte"})
MAX_IN_VALUES = 100

_INTEGER_TYPES = frozenset({"int2", "int4", "int8", "oid"})
_DECIMAL_TYPES = frozenset({"numeric", "float4", "float8"})
_TEXT_TYPES = frozenset({"text", "varchar", "bpchar", "name", "citext", "uuid"})
_TIMESTAMP_TYPES = frozenset({"timestamptz", "timestamp"})
# Types whose order Python reproduces exactly; ordering operators on others are refused at join
# rather than answered by comparing text, which would be wrong (intervals, json, arrays, ...).
ORDERABLE_TYPES = _INTEGER_TYPES | _DECIMAL_TYPES | _TEXT_TYPES | _TIMESTAMP_TYPES | {"date", "bool"}


class FilterError(ValueError):
    """A filter that cannot be parsed or applied; the message is shown to the client."""


@dataclass(frozen=True, slots=True)
class FilterSpec:
    """One parsed condition, before its value is checked against the column's type.

    Attributes:
        column: The column name, as written.
        op: One of ``OPERATORS``.
        negate: True for ``not.<op>``.
        values: The operand; several for ``in``.
    """

    column: str
    op: str
    negate: bool
    values: tuple[str, ...]


def parse_filters(text: str) -> tuple[FilterSpec, ...]:
    """The conditions of a filter string; an empty string means no condition."""
    stripped = text.strip()
    if not stripped:
        return ()
    return tuple(_parse_condition(part) for part in _split_top_level(stripped, ","))


def _parse_condition(text: str) -> FilterSpec:
    condition = text.strip()
    if not condition:
        raise FilterError("Error parsing `filter` params: empty condition (check for extra commas)")
    column, sep, rest = condition.partition("=")
    if not sep or not column:
        raise FilterError(f"Error parsing `filter` params: expected column=operator.value, got {condition!r}")
    negate = rest.startswith("not.")
    if negate:
        rest = rest[4:]
    op, sep, value = rest.partition(".")
    if not sep or op not in OPERATORS:
        raise FilterError(
            f"Error parsing `filter` params: unsupported operator {op!r} in {condition!r}"
            f" (supported: {', '.join(sorted(OPERATORS))})"
        )
    if op == "in":
        if not (value.startswith("(") and value.endswith(")")):
            raise FilterError("Error parsing `filter` params: `in` filter value must be wrapped by parentheses")
        inner = value[1:-1]
        values = tuple(_unquote(item.strip()) for item in _split_top_level(inner, ",")) if inner.strip() else ()
        if len(values) > MAX_IN_VALUES:
            raise FilterError(f"Error parsing `filter` params: `in` takes at most {MAX_IN_VALUES} values")
        return FilterSpec(column, op, negate, values)
    return FilterSpec(column, op, negate, (_unquote(value),))


def _split_top_level(text: str, separator: str) -> list[str]:
    """Split on ``separator`` outside parentheses and double quotes (backslash escapes in quotes)."""
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    quoted = False
    escaped = False
    for char in text:
        if quoted:
            current.append(char)
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                quoted = False
            continue
        if char == '"':
            quoted = True
        elif char == "(":
            depth += 1
        elif char == ")":
            depth = max(0, depth - 1)
        elif char == separator and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    if quoted:
        raise FilterError("Error parsing `filter` params: unterminated double quote")
    parts.append("".join(current))
    return parts


def _unquote(value: str) -> str:
    if len(value) >= 2 and value.startswith('"') and value.endswith('"'):
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


# --- typed comparison -----------------------------------------------------------------------------

_MINUS_INFINITY = (-1,)
_PLUS_INFINITY = (1,)
_OFFSET_WITHOUT_MINUTES = re.compile(r"([+-]\d\d)$")


def comparable(typname: str, value: object) -> Any:
    """A key that compares like Postgres compares values of ``typname``.

    ``value`` is what wal2json decodes (int, Decimal, bool, or the type's text output) or the canonical
    text Postgres gave for a filter operand. Types without an exact Python order compare as text,
    which is exact for equality (both sides are the type's canonical output).
    """
    if typname in _INTEGER_TYPES:
        return int(str(value))
    if typname in _DECIMAL_TYPES:
        number = Decimal(str(value))
        # Postgres sorts NaN above every number and equal to itself.
        return (1,) if number.is_nan() else (0, number)
    if typname == "bool":
        if isinstance(value, bool):
            return value
        return str(value).lower() in {"t", "true"}
    if typname in _TIMESTAMP_TYPES or typname == "date":
        return _temporal(typname, str(value))
    if typname == "bpchar":
        # char(n) compares without its trailing spaces (the WAL has them, a cast to text drops them).
        return str(value).rstrip(" ")
    return str(value)


def _temporal(typname: str, text: str) -> tuple[Any, ...]:
    if text == "infinity":
        return _PLUS_INFINITY
    if text == "-infinity":
        return _MINUS_INFINITY
    if text.endswith(" BC"):
        # Before year 1: Python's datetime cannot hold it; earlier than any AD value, ordered by text.
        return (-1, 0, text)
    if typname == "date":
        return (0, dt.date.fromisoformat(text))
    if typname == "timestamptz":
        text = _OFFSET_WITHOUT_MINUTES.sub(r"\1:00", text)
    try:
        return (0, dt.datetime.fromisoformat(text))
    except ValueError:
        # Years past 9999 do not fit datetime; they sort after every value that does.
        return (0.5, text)


@dataclass(frozen=True, slots=True)
class BoundFilter:
    """A condition whose operands were cast to the column's type by Postgres.

    Attributes:
        column: The column it reads.
        typname: The column's type (base type for domains), as ``pg_type.typname``.
        op: One of ``OPERATORS``.
        negate: True for ``not.<op>``.
        operands: Comparison keys of the canonical operand texts (see ``comparable``).
    """

    column: str
    typname: str
    op: str
    negate: bool
    operands: tuple[Any, ...]

    @classmethod
    def bind(cls, spec: FilterSpec, typname: str, canonical: tuple[str, ...]) -> BoundFilter:
        """Bind ``spec`` to a column of ``typname`` with the operands Postgres returned."""
        if spec.op in ORDERING_OPERATORS and typname not in ORDERABLE_TYPES:
            raise FilterError(f"operator {spec.op} is not supported on column {spec.column!r} of type {typname}")
        try:
            operands = tuple(comparable(typname, value) for value in canonical)
        except (ValueError, InvalidOperation) as error:
            raise FilterError(f"invalid value for column {spec.column!r} of type {typname}: {error}") from None
        return cls(spec.column, typname, spec.op, spec.negate, operands)

    def matches(self, row: Mapping[str, object]) -> bool:
        """Whether ``row`` (column → wal2json value) satisfies the condition.

        A missing column or SQL NULL never matches, negated or not, since ``NULL op x`` is not true.
        """
        if self.column not in row:
            return False
        value = row[self.column]
        if value is None:
            return False
        try:
            key = comparable(self.typname, value)
            result = self._compare(key)
        except (TypeError, ValueError, InvalidOperation):
            return False
        return result != self.negate

    def _compare(self, key: Any) -> bool:
        op = self.op
        if op == "in":
            return key in self.operands
        operand = self.operands[0]
        if op == "eq":
            return bool(key == operand)
        if op == "neq":
            return bool(key != operand)
        if op == "lt":
            return bool(key < operand)
        if op == "lte":
            return bool(key <= operand)
        if op == "gt":
            return bool(key > operand)
        return bool(key >= operand)


def matches_all(filters: tuple[BoundFilter, ...], row: Mapping[str, object] | None) -> bool:
    """Whether ``row`` satisfies every filter (no filter: always)."""
    if not filters:
        return True
    if row is None:
        return False
    return all(condition.matches(row) for condition in filters)
