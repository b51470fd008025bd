"""wal2json (format 2) change records, and row values rendered as PostgREST renders them. Pure.

wal2json prints numbers and booleans as JSON and every other value as the type's text output
(``2025-01-02 03:04:05+00``, ``{1,2}``, ``{"k": 1}``). A client must see the same JSON as a REST read
of the row (``to_json``): timestamps in ISO 8601 with a ``T`` and a full offset, arrays as lists,
json/jsonb as objects, bytea as ``\\x...``. Types ``to_json`` renders as text stay text.

Known gaps, shared with Supabase Realtime (which also decodes with wal2json): NaN and ±Infinity in
float and numeric columns arrive as null, and an UPDATE that leaves a TOASTed (large, out-of-line)
value unchanged omits that column from the record.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

ChangeKind = Literal["INSERT", "UPDATE", "DELETE"]
_ACTIONS: dict[str, ChangeKind] = {"I": "INSERT", "U": "UPDATE", "D": "DELETE"}


@dataclass(frozen=True, slots=True)
class PgType:
    """What rendering needs from ``pg_type``.

    Attributes:
        oid: The type's oid.
        name: ``typname`` (``int8``, ``timestamptz``, ``_text`` for text[]).
        kind: ``typtype``: ``b`` base, ``d`` domain, ``e`` enum, ``c`` composite, ``r`` range, ...
        category: ``typcategory``: ``A`` for arrays.
        element: The element type's oid for arrays, else 0.
        base: The underlying type's oid for domains, else 0.
    """

    oid: int
    name: str
    kind: str = "b"
    category: str = "U"
    element: int = 0
    base: int = 0


class TypeRegistry:
    """``pg_type`` by oid, loaded from the database; resolves domains to their base type."""

    def __init__(self, types: Iterable[PgType] = ()) -> None:
        self._by_oid = {entry.oid: entry for entry in types}

    def __contains__(self, oid: int) -> bool:
        return oid in self._by_oid

    def get(self, oid: int) -> PgType | None:
        return self._by_oid.get(oid)

    def resolve(self, oid: int) -> PgType | None:
        """The type itself, or for a domain the type it is based on."""
        entry = self._by_oid.get(oid)
        for _ in range(16):  # domains over domains; bounded in case of a broken catalog
            if entry is None or entry.kind != "d" or not entry.base:
                return entry
            entry = self._by_oid.get(entry.base)
        return entry


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type_oid: int


@dataclass(frozen=True, slots=True)
class Change:
    """One row change, in commit order.

    Attributes:
        schema, table: Where it happened.
        kind: ``INSERT``, ``UPDATE`` or ``DELETE``.
        commit_timestamp: The transaction's commit time, as Realtime sends it (UTC, ms, ``Z``).
        columns: The new row's columns with their type oids (empty for DELETE).
        record: Column → wal2json value of the new row (None for DELETE).
        old_record: Column → value of the old row's replica identity (the primary key unless the table
            is ``REPLICA IDENTITY FULL``); None for INSERT.
        pk: The primary key's column names.
        xid: The writing transaction's id (32 bits, as the WAL has it); 0 when unknown.
    """

    schema: str
    table: str
    kind: ChangeKind
    commit_timestamp: str
    columns: tuple[Column, ...]
    record: dict[str, Any] | None
    old_record: dict[str, Any] | None
    pk: tuple[str, ...]
    xid: int = 0

    def key_text(self) -> dict[str, str] | None:
        """The primary key's values as text, from the row that identifies it; None without a key."""
        source = self.old_record if self.kind == "DELETE" else self.record
        if not self.pk or source is None:
            return None
        values = {}
        for name in self.pk:
            if name not in source or source[name] is None:
                return None
            values[name] = pg_text(source[name])
        return values


def pg_text(value: Any) -> str:
    """The text Postgres would parse back into the same value (for primary-key lookups)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def parse_change(line: str) -> Change | None:
    """A change from one wal2json format-2 line; None for lines that are not row changes."""
    data = json.loads(line, parse_float=Decimal)
    kind = _ACTIONS.get(data.get("action", ""))
    if kind is None:
        return None
    columns = tuple(Column(item["name"], int(item.get("typeoid", 0))) for item in data.get("columns", ()))
    record = {item["name"]: item.get("value") for item in data["columns"]} if kind != "DELETE" else None
    identity = data.get("identity")
    old_record = {item["name"]: item.get("value") for item in identity} if identity is not None else None
    if kind == "UPDATE" and old_record is None:
        # wal2json omits the identity when the table has none; Realtime then sends an empty old_record.
        old_record = {}
    pk = tuple(item["name"] for item in data.get("pk", ()))
    return Change(
        schema=data["schema"],
        table=data["table"],
        kind=kind,
        commit_timestamp=format_commit_timestamp(data.get("timestamp", "")),
        columns=columns,
        record=record,
        old_record=old_record,
        pk=pk,
        xid=int(data.get("xid", 0)),
    )


_TIMESTAMP = re.compile(r"^(\d{4,})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)(?:\.(\d+))?([+-]\d\d)(?::?(\d\d))?")


def format_commit_timestamp(text: str) -> str:
    """``2025-06-01 12:00:00.123456+00`` (wal2json, in the session's zone) → ``2025-06-01T12:00:00.123Z``.

    The decoding session runs in UTC, so the offset is +00 and the fields are already UTC.
    """
    match = _TIMESTAMP.match(text)
    if match is None:
        return text
    year, month, day, hour, minute, second, fraction, offset_hours, _ = match.groups()
    millis = (fraction or "").ljust(3, "0")[:3]
    if offset_hours not in ("+00", "-00"):
        # Not UTC after all (a server configured otherwise): keep the offset rather than lie.
        return f"{year}-{month}-{day}T{hour}:{minute}:{second}.{millis}{offset_hours}:{match.group(9) or '00'}"
    return f"{year}-{month}-{day}T{hour}:{minute}:{second}.{millis}Z"


# --- rendering -------------------------------------------------------------------------------------

_INTEGERS = frozenset({"int2", "int4", "int8", "oid", "xid", "cid"})
_FLOATS = frozenset({"float4", "float8", "numeric"})
_SHORT_OFFSET = re.compile(r"([+-]\d\d)((?: BC)?)$")


def render(value: Any, type_oid: int, types: TypeRegistry) -> Any:
    """A wal2json value as ``to_json`` renders it for a column of ``type_oid``."""
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal):
        return _number(value)
    entry = types.resolve(type_oid)
    if entry is None:
        return value
    if entry.name == "bytea":
        # wal2json prints bytea as bare hex; the text output (and to_json) has the \x prefix.
        return value if value.startswith("\\x") else "\\x" + value
    return render_text(str(value), entry, types)


def render_text(text: str, entry: PgType, types: TypeRegistry) -> Any:
    """The type's text output ``text`` as ``to_json`` renders it."""
    name = entry.name
    if entry.category == "A" and entry.element:
        element = types.resolve(entry.element)
        return _render_array(text, element, types)
    if name in _INTEGERS:
        return int(text)
    if name in _FLOATS:
        return _number(Decimal(text)) if text not in ("NaN", "Infinity", "-Infinity") else text
    if name == "bool":
        return text in ("t", "true")
    if name in ("json", "jsonb"):
        return json.loads(text)
    if name == "timestamptz":
        return _SHORT_OFFSET.sub(r"\1:00\2", text.replace(" ", "T", 1))
    if name == "timestamp":
        return text.replace(" ", "T", 1)
    return text


def _number(value: Decimal) -> int | float | None:
    if not value.is_finite():
        return None
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent >= 0 and "E" not in str(value).upper():
        return int(value)
    return float(value)


def _render_array(text: str, element: PgType | None, types: TypeRegistry) -> Any:
    if text.startswith("["):
        # Non-default bounds ("[2:3]={1,2}"): to_json drops them.
        text = text[text.index("=") + 1 :]
    delimiter = ";" if element is not None and element.name == "box" else ","
    parsed = parse_array_literal(text, delimiter)

    def convert(item: Any) -> Any:
        if isinstance(item, list):
            return [convert(inner) for inner in item]
        if item is None or element is None:
            return item
        return render_text(item, element, types)

    return convert(parsed)


def parse_array_literal(text: str, delimiter: str = ",") -> list[Any]:
    """Postgres array text output (``{1,2,NULL}``, ``{{a,"b c"},{d,e}}``) as nested lists of str/None."""
    position = 0

    def parse_list() -> list[Any]:
        nonlocal position
        if text[position] != "{":
            raise ValueError(f"array literal expected '{{' at {position}: {text!r}")
        position += 1
        items: list[Any] = []
        if text[position] == "}":
            position += 1
            return items
        while True:
            if text[position] == "{":
                items.append(parse_list())
            elif text[position] == '"':
                items.append(parse_quoted())
            else:
                items.append(parse_bare())
            if text[position] == delimiter:
                position += 1
                continue
            if text[position] == "}":
                position += 1
                return items
            raise ValueError(f"array literal: unexpected {text[position]!r} at {position}: {text!r}")

    def parse_quoted() -> str:
        nonlocal position
        position += 1
        chars: list[str] = []
        while text[position] != '"':
            if text[position] == "\\":
                position += 1
            chars.append(text[position])
            position += 1
        position += 1
        return "".join(chars)

    def parse_bare() -> str | None:
        nonlocal position
        start = position
        while text[position] not in (delimiter, "}"):
            position += 1
        word = text[start:position]
        return None if word == "NULL" else word

    try:
        result = parse_list()
    except IndexError:
        raise ValueError(f"array literal ends early: {text!r}") from None
    return result


def render_row(
    row: Mapping[str, Any], columns: Mapping[str, int], types: TypeRegistry, keep: frozenset[str] | None = None
) -> dict[str, Any]:
    """``row`` (column → wal2json value) rendered; ``keep`` limits the columns (None: all)."""
    return {
        name: render(value, columns.get(name, 0), types) for name, value in row.items() if keep is None or name in keep
    }
