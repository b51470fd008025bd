"""wal2json records into changes, and values rendered as to_json renders them.

The integration suite checks the rendering against Postgres's own ``to_jsonb`` for a row of many types;
these cases pin the text forms wal2json produces (captured from wal2json 2.5 on PostgreSQL 15).
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from devstack.gateway.realtime.wal import (
    PgType,
    TypeRegistry,
    format_commit_timestamp,
    parse_array_literal,
    parse_change,
    render,
)

TYPES = TypeRegistry(
    [
        PgType(16, "bool"),
        PgType(17, "bytea"),
        PgType(20, "int8"),
        PgType(23, "int4"),
        PgType(25, "text"),
        PgType(114, "json"),
        PgType(701, "float8"),
        PgType(1007, "_int4", category="A", element=23),
        PgType(1009, "_text", category="A", element=25),
        PgType(1000, "_bool", category="A", element=16),
        PgType(1022, "_float8", category="A", element=701),
        PgType(1082, "date"),
        PgType(1083, "time"),
        PgType(1114, "timestamp"),
        PgType(1184, "timestamptz"),
        PgType(1185, "_timestamptz", category="A", element=1184),
        PgType(1186, "interval"),
        PgType(1266, "timetz"),
        PgType(1700, "numeric"),
        PgType(2950, "uuid"),
        PgType(3802, "jsonb"),
        PgType(3807, "_jsonb", category="A", element=3802),
        PgType(90000, "positive_int", kind="d", base=23),
        PgType(90001, "mood", kind="e"),
    ]
)

INSERT = (
    '{"action":"I","timestamp":"2026-11-26 18:39:31.330933+00","schema":"public","table":"tt","columns":['
    '{"name":"id","type":"integer","typeoid":23,"value":1},'
    '{"name":"n","type":"numeric","typeoid":1700,"value":12.50},'
    '{"name":"j","type":"jsonb","typeoid":3802,"value":"{\\"k\\": [1, 2]}"},'
    '{"name":"f","type":"double precision","typeoid":701,"value":null}],'
    '"pk":[{"name":"id","type":"integer","typeoid":23}]}'
)
UPDATE = (
    '{"action":"U","timestamp":"2026-11-26 18:39:31.331481+00","schema":"public","table":"tt","columns":['
    '{"name":"id","type":"integer","typeoid":23,"value":2},{"name":"a","type":"text","typeoid":25,"value":"y"}],'
    '"identity":[{"name":"id","type":"integer","typeoid":23,"value":1}],'
    '"pk":[{"name":"id","type":"integer","typeoid":23}]}'
)
DELETE = (
    '{"action":"D","timestamp":"2026-11-26 18:39:31.331644+00","schema":"public","table":"members",'
    '"identity":[{"name":"session_id","type":"uuid","typeoid":2950,"value":"c0000000-0000-4000-8000-00000000a0b0"},'
    '{"name":"user_id","type":"uuid","typeoid":2950,"value":"b0b00000-0000-4000-8000-000000000002"}],'
    '"pk":[{"name":"session_id","type":"uuid","typeoid":2950},{"name":"user_id","type":"uuid","typeoid":2950}]}'
)


def test_insert() -> None:
    change = parse_change(INSERT)
    assert change is not None
    assert (change.schema, change.table, change.kind) == ("public", "tt", "INSERT")
    assert change.commit_timestamp == "2026-11-26T18:39:31.330Z"
    assert change.record == {"id": 1, "n": Decimal("12.50"), "j": '{"k": [1, 2]}', "f": None}
    assert change.old_record is None
    assert change.pk == ("id",)
    assert change.key_text() == {"id": "1"}
    assert [(c.name, c.type_oid) for c in change.columns] == [("id", 23), ("n", 1700), ("j", 3802), ("f", 701)]


def test_update_keys_by_the_new_row_and_keeps_the_old_identity() -> None:
    change = parse_change(UPDATE)
    assert change is not None and change.kind == "UPDATE"
    assert change.record == {"id": 2, "a": "y"}
    assert change.old_record == {"id": 1}
    assert change.key_text() == {"id": "2"}  # visibility is checked on the row as it is now


def test_delete_has_only_the_identity() -> None:
    change = parse_change(DELETE)
    assert change is not None and change.kind == "DELETE"
    assert change.record is None and change.columns == ()
    assert change.key_text() == {
        "session_id": "c0000000-0000-4000-8000-00000000a0b0",
        "user_id": "b0b00000-0000-4000-8000-000000000002",
    }


def test_lines_that_are_not_row_changes() -> None:
    assert parse_change('{"action":"M","transactional":true,"prefix":"devstack_realtime","content":""}') is None
    assert parse_change('{"action":"T","schema":"public","table":"tt"}') is None
    assert parse_change('{"action":"B","timestamp":"2026-11-26 18:39:31.33259+00"}') is None


def test_commit_timestamp_format() -> None:
    assert format_commit_timestamp("2025-06-01 12:00:00.123456+00") == "2025-06-01T12:00:00.123Z"
    assert format_commit_timestamp("2025-06-01 12:00:00.1+00") == "2025-06-01T12:00:00.100Z"
    assert format_commit_timestamp("2025-06-01 12:00:00+00") == "2025-06-01T12:00:00.000Z"
    assert format_commit_timestamp("2025-06-01 14:00:00+02") == "2025-06-01T14:00:00.000+02:00"


@pytest.mark.parametrize(
    ("value", "type_oid", "expected"),
    [
        (True, 16, True),
        (42, 20, 42),
        (Decimal("12.50"), 1700, 12.5),
        (Decimal("100"), 1700, 100),
        (Decimal("1E+100"), 701, 1e100),
        (None, 701, None),
        ("0102", 17, "\\x0102"),
        ('{"k": [1, 2]}', 3802, {"k": [1, 2]}),
        ('{"a":1 , "b":[true]}', 114, {"a": 1, "b": [True]}),
        ("2025-01-02 03:04:05.123+00", 1184, "2025-01-02T03:04:05.123+00:00"),
        ("2025-01-02 03:04:05+05:30", 1184, "2025-01-02T03:04:05+05:30"),
        ("0044-03-15 12:00:00+00 BC", 1184, "0044-03-15T12:00:00+00:00 BC"),
        ("infinity", 1184, "infinity"),
        ("2025-01-02 03:04:05.123", 1114, "2025-01-02T03:04:05.123"),
        ("2025-01-02", 1082, "2025-01-02"),
        ("12:00:01.5", 1083, "12:00:01.5"),
        ("12:00:00+05:30", 1266, "12:00:00+05:30"),
        ("1 day 02:00:00", 1186, "1 day 02:00:00"),
        ("8415f326-3854-42f1-b2fe-05e3d8faa257", 2950, "8415f326-3854-42f1-b2fe-05e3d8faa257"),
        ("{1,2,NULL}", 1007, [1, 2, None]),
        ("{{1,2},{3,4}}", 1007, [[1, 2], [3, 4]]),
        ("[2:3]={1,2}", 1007, [1, 2]),
        ("{}", 1007, []),
        ('{"a,b","c d",NULL,"NULL","x\\"y"}', 1009, ["a,b", "c d", None, "NULL", 'x"y']),
        ("{t,f}", 1000, [True, False]),
        ("{1.50,NaN,-Infinity}", 1022, [1.5, "NaN", "-Infinity"]),
        ('{"2025-01-02 03:04:05+00"}', 1185, ["2025-01-02T03:04:05+00:00"]),
        ('{"{\\"a\\": 1}"}', 3807, [{"a": 1}]),
        (7, 90000, 7),  # a domain renders as its base type
        ("happy", 90001, "happy"),  # enums are text
        ("whatever", 12345, "whatever"),  # an unknown type stays text
    ],
)
def test_render_like_to_json(value: object, type_oid: int, expected: object) -> None:
    assert render(value, type_oid, TYPES) == expected


def test_array_literal_parser() -> None:
    assert parse_array_literal('{a,"b\\\\c",{d}}') == ["a", "b\\c", ["d"]]
    assert parse_array_literal("{(1,2);(3,4)}", ";") == ["(1,2)", "(3,4)"]
    with pytest.raises(ValueError, match="array literal"):
        parse_array_literal("{1,2")
