"""Join payloads as the official client sends them (see supabase-wire.md section 3), and JSON limits."""

from __future__ import annotations

import json

import pytest

from devstack.gateway.realtime.protocol import (
    MAX_JSON_DEPTH,
    JoinError,
    JsonError,
    binding_id,
    json_depth,
    loads,
    parse_join,
)

CLIENT_JOIN = {
    "config": {
        "broadcast": {"ack": False, "self": False},
        "presence": {"key": "", "enabled": True},
        "private": False,
        "postgres_changes": [
            {"event": "INSERT", "schema": "public", "table": "messages", "filter": "room_id=eq.7"},
            {"event": "*", "schema": "public", "table": "reactions"},
        ],
    },
    "access_token": "token",
}


def test_parse_the_clients_join() -> None:
    join = parse_join("realtime:room:7", CLIENT_JOIN)
    assert join.sub_topic == "room:7"
    assert join.access_token == "token"
    assert (join.broadcast_self, join.broadcast_ack, join.presence_enabled, join.private) == (False, False, True, False)
    assert [b.raw for b in join.bindings] == CLIENT_JOIN["config"]["postgres_changes"]  # type: ignore[index]
    first, second = join.bindings
    assert (first.event, first.schema, first.table) == ("INSERT", "public", "messages")
    assert [(f.column, f.op, f.values) for f in first.filters] == [("room_id", "eq", ("7",))]
    assert (second.event, second.table, second.filters) == ("*", "reactions", ())


def test_join_accepts_null_broadcast_and_missing_sections() -> None:
    # {"config": {"private": True}} makes the client send "broadcast": null.
    join = parse_join("realtime:x", {"config": {"broadcast": None, "presence": None, "private": False}})
    assert join.bindings == () and not join.broadcast_self and not join.presence_enabled
    assert parse_join("realtime:x", {}).bindings == ()
    assert parse_join("realtime:x", {"config": {"broadcast": {"self": True, "ack": True}}}).broadcast_self


def test_binding_defaults() -> None:
    only_table = parse_join("realtime:x", {"config": {"postgres_changes": [{"event": "insert", "table": "t"}]}})
    assert (only_table.bindings[0].schema, only_table.bindings[0].event) == ("public", "INSERT")
    only_schema = parse_join("realtime:x", {"config": {"postgres_changes": [{"event": "*", "schema": "public"}]}})
    assert only_schema.bindings[0].table is None


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"config": {"postgres_changes": [{"event": "*"}]}}, "no subscription params"),
        ({"config": {"postgres_changes": [{"event": "TRUNCATE", "table": "t"}]}}, "event must be one of"),
        (
            {"config": {"postgres_changes": [{"event": "*", "table": "t", "filter": "id=like.x"}]}},
            "unsupported operator",
        ),
        ({"config": {"postgres_changes": [{"event": "*", "table": "t", "filter": "undefined"}]}}, "Error parsing"),
        ({"config": {"postgres_changes": [{"event": "*", "schema": "public", "filter": "id=eq.1"}]}}, "explicit table"),
        ({"config": {"postgres_changes": [{"event": "*", "table": "t", "select": "id"}]}}, "list of column names"),
        ({"config": {"postgres_changes": {"event": "*"}}}, "must be a list"),
        ({"config": {"broadcast": "yes"}}, "`broadcast` must be an object"),
        ({"config": [], "access_token": "x"}, "`config` must be an object"),
        ({"access_token": 42}, "`access_token` must be a string"),
    ],
)
def test_bad_joins_are_refused_with_a_reason(payload: dict[str, object], reason: str) -> None:
    with pytest.raises(JoinError, match=reason):
        parse_join("realtime:x", payload)


def test_a_topic_name_is_required() -> None:
    for topic in ("realtime:", "room:7"):
        with pytest.raises(JoinError, match="TopicNameRequired"):
            parse_join(topic, {})


def test_binding_ids_are_stable_non_zero_and_unique_in_a_channel() -> None:
    raw = {"event": "*", "schema": "public", "table": "t"}
    first = binding_id(raw, set())
    assert first == binding_id(dict(reversed(list(raw.items()))), set())  # key order does not matter
    assert 0 < first < 2**31
    taken: set[int] = set()
    ids = [binding_id(raw, taken) for _ in range(3)]
    assert len(set(ids)) == 3 and all(0 < value < 2**31 for value in ids)


def nested(depth: int, inner: str = "1") -> str:
    return "[" * depth + inner + "]" * depth


def test_json_depth_ignores_brackets_in_strings() -> None:
    assert json_depth('{"a":[1,{"b":"[[[{{{"}],"c":"\\"]"}', 100) == 3
    assert json_depth(nested(50), 100) == 50
    assert json_depth(nested(10_000), 100) == 101  # the scan stops above the limit


@pytest.mark.parametrize(
    "text",
    [
        nested(MAX_JSON_DEPTH),
        '{"emoji":"\\ud83d\\ude00"}',  # a surrogate pair is one valid character
        "[" + ",".join(["[1]"] * 1000) + "]",  # many brackets, shallow
        '{"a":"[[[[' + "[" * 500 + '"}',
    ],
    ids=["at-the-limit", "surrogate-pair", "wide", "brackets-in-a-string"],
)
def test_json_the_wire_accepts(text: str) -> None:
    assert loads(text) == json.loads(text)


@pytest.mark.parametrize(
    ("raw", "reason", "unreadable"),
    [
        (nested(MAX_JSON_DEPTH + 1), "nested deeper", False),
        (nested(100_000), "nested deeper", True),
        ('{"x":"\\ud800"}', "lone UTF-16 surrogate", False),
        ('{"\\udfff":1}', "lone UTF-16 surrogate", False),
        ('{"x":"\\ude00\\ud83d"}', "lone UTF-16 surrogate", False),  # a pair in the wrong order
        ('{"x":NaN}', "NaN is not JSON", False),
        ("[-Infinity]", "-Infinity is not JSON", False),
        ('{"x":', "not JSON", False),
        (b'"\xed\xa0\x80"', "not UTF-8", False),  # a surrogate encoded in UTF-8, which Python's json lets through
    ],
)
def test_json_the_wire_refuses(raw: str | bytes, reason: str, unreadable: bool) -> None:
    with pytest.raises(JsonError, match=reason) as caught:
        loads(raw)
    assert caught.value.unreadable == unreadable
