"""Frames and join payloads as the official client sends them (see supabase-wire.md section 3)."""

from __future__ import annotations

import json

import pytest

from devstack.gateway.realtime.protocol import (
    CLOSE_INVALID_PAYLOAD,
    CLOSE_UNSUPPORTED_DATA,
    FrameError,
    JoinError,
    binding_id,
    decode_frame,
    encode_frame,
    encode_reply,
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


def test_decode_a_client_frame() -> None:
    frame = decode_frame(
        json.dumps(
            {"event": "phx_join", "payload": CLIENT_JOIN, "topic": "realtime:room:7", "ref": "1", "join_ref": "1"}
        )
    )
    assert (frame.topic, frame.event, frame.ref, frame.join_ref) == ("realtime:room:7", "phx_join", "1", "1")
    heartbeat = decode_frame('{"event":"heartbeat","payload":{},"topic":"phoenix","ref":null,"join_ref":null}')
    assert heartbeat.ref is None and heartbeat.payload == {}


@pytest.mark.parametrize(
    ("raw", "close_code"),
    [
        ("not json", CLOSE_INVALID_PAYLOAD),
        ('["1","1","realtime:room","phx_join",{}]', CLOSE_UNSUPPORTED_DATA),  # V2 serializer
        ("42", CLOSE_INVALID_PAYLOAD),
    ],
)
def test_frames_that_end_the_socket(raw: str, close_code: int) -> None:
    with pytest.raises(FrameError) as caught:
        decode_frame(raw)
    assert caught.value.close_code == close_code


def test_frames_answered_with_an_error_keep_what_they_named() -> None:
    with pytest.raises(FrameError) as caught:
        decode_frame('{"topic":"realtime:x","event":"broadcast","payload":"text","ref":"3"}')
    assert caught.value.close_code is None
    assert (caught.value.topic, caught.value.ref) == ("realtime:x", "3")
    with pytest.raises(FrameError) as caught:
        decode_frame('{"topic":"realtime:x","event":"broadcast","payload":{},"ref":3}')
    assert caught.value.topic == "realtime:x" and caught.value.ref is None
    with pytest.raises(FrameError) as caught:
        decode_frame('{"event":"broadcast","payload":{},"ref":"4"}')
    assert caught.value.topic is None and caught.value.ref == "4"


def test_server_frames_always_carry_ref() -> None:
    push = json.loads(encode_frame("realtime:x", "broadcast", {"event": "e", "payload": {}}))
    assert push == {"topic": "realtime:x", "event": "broadcast", "payload": {"event": "e", "payload": {}}, "ref": None}
    reply = json.loads(encode_reply("phoenix", None, "ok", {}))
    assert reply == {"topic": "phoenix", "event": "phx_reply", "payload": {"status": "ok", "response": {}}, "ref": None}


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
