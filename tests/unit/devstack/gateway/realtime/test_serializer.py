"""The V1 (object) and V2 (array and binary) wire formats, frame by frame."""

from __future__ import annotations

import json

import pytest

from devstack.gateway.realtime.protocol import (
    CLOSE_INVALID_PAYLOAD,
    CLOSE_UNSUPPORTED_DATA,
    Broadcast,
    FrameError,
    UserBroadcast,
)
from devstack.gateway.realtime.serializer import SERIALIZERS, V1Serializer, V2Serializer

V1 = V1Serializer()
V2 = V2Serializer()


def user_broadcast_push(
    topic: str, event: str, payload: bytes, *, encoding: int = 1, join_ref: str = "1", ref: str = "2", meta: str = ""
) -> bytes:
    """A V2 client's binary broadcast: kind 3, five sizes, the encoding, the strings, the payload."""
    fields = [join_ref.encode(), ref.encode(), topic.encode(), event.encode(), meta.encode()]
    return bytes([3, *(len(field) for field in fields), encoding]) + b"".join(fields) + payload


def test_serializers_by_vsn() -> None:
    assert set(SERIALIZERS) == {"1.0.0", "2.0.0"}


# --- V1 --------------------------------------------------------------------------------------------


def test_v1_decodes_a_client_frame() -> None:
    frame = V1.decode(
        json.dumps({"event": "phx_join", "payload": {}, "topic": "realtime:room:7", "ref": "1", "join_ref": "1"})
    )
    assert (frame.topic, frame.event, frame.ref, frame.join_ref) == ("realtime:room:7", "phx_join", "1", "1")
    heartbeat = V1.decode('{"event":"heartbeat","payload":{},"topic":"phoenix","ref":null,"join_ref":null}')
    assert heartbeat.ref is None and heartbeat.payload == {}


@pytest.mark.parametrize(
    ("raw", "close_code"),
    [
        ("not json", CLOSE_INVALID_PAYLOAD),
        ('["1","1","realtime:room","phx_join",{}]', CLOSE_UNSUPPORTED_DATA),  # V2's shape
        ("42", CLOSE_INVALID_PAYLOAD),
        (b"\x03\x00", CLOSE_UNSUPPORTED_DATA),
        ('{"topic":"realtime:x","payload":' + "[" * 1000 + "]" * 1000 + "}", CLOSE_INVALID_PAYLOAD),
    ],
    ids=["not-json", "array", "number", "binary", "unreadably-deep"],
)
def test_v1_frames_that_end_the_socket(raw: str | bytes, close_code: int) -> None:
    with pytest.raises(FrameError) as caught:
        V1.decode(raw)
    assert caught.value.close_code == close_code


def test_v1_frames_answered_with_an_error_keep_what_they_named() -> None:
    with pytest.raises(FrameError) as caught:
        V1.decode('{"topic":"realtime:x","event":"broadcast","payload":"text","ref":"3"}')
    assert caught.value.close_code is None
    assert (caught.value.topic, caught.value.ref) == ("realtime:x", "3")
    with pytest.raises(FrameError) as caught:
        V1.decode('{"topic":"realtime:x","event":"broadcast","payload":{},"ref":3}')
    assert caught.value.topic == "realtime:x" and caught.value.ref is None
    with pytest.raises(FrameError) as caught:
        V1.decode('{"event":"broadcast","payload":{},"ref":"4"}')
    assert caught.value.topic is None and caught.value.ref == "4"
    with pytest.raises(FrameError, match="surrogate") as caught:
        V1.decode('{"topic":"realtime:x","event":"broadcast","payload":{"a":"\\ud800"},"ref":"5"}')
    assert (caught.value.topic, caught.value.ref, caught.value.close_code) == ("realtime:x", "5", None)
    with pytest.raises(FrameError, match="surrogate") as caught:
        V1.decode('{"topic":"realtime:\\ud800","event":"broadcast","payload":{},"ref":"6"}')
    assert caught.value.topic is None  # a topic that cannot be encoded cannot be answered on


def test_v1_server_frames_always_carry_ref() -> None:
    push = json.loads(V1.message("realtime:x", "system", {"a": 1}, join_ref="9"))
    assert push == {"topic": "realtime:x", "event": "system", "payload": {"a": 1}, "ref": None}
    reply = json.loads(V1.reply("phoenix", None, "ok", {}))
    assert reply == {"topic": "phoenix", "event": "phx_reply", "payload": {"status": "ok", "response": {}}, "ref": None}
    assert json.loads(V1.close("realtime:x", "4"))["ref"] == "4"
    change = json.loads(V1.change("realtime:x", [5, 6], '{"type":"INSERT"}'))
    assert change == {
        "topic": "realtime:x",
        "event": "postgres_changes",
        "ref": None,
        "payload": {"ids": [5, 6], "data": {"type": "INSERT"}},
    }


def test_v1_gets_user_broadcasts_as_json_and_never_binary_ones() -> None:
    user = UserBroadcast(event="typing", payload=b'{"who":"js"}', is_json=True)
    frame = V1.broadcast("realtime:room", Broadcast(user=user))
    assert isinstance(frame, str)
    assert json.loads(frame) == {
        "topic": "realtime:room",
        "event": "broadcast",
        "ref": None,
        "payload": {"type": "broadcast", "event": "typing", "payload": {"who": "js"}},
    }
    assert V1.broadcast("realtime:room", Broadcast(user=UserBroadcast("e", b"\x00\x01", is_json=False))) is None


# --- V2 --------------------------------------------------------------------------------------------


def test_v2_decodes_array_frames() -> None:
    frame = V2.decode('["1","2","realtime:room","phx_join",{"config":{}}]')
    assert (frame.join_ref, frame.ref, frame.topic, frame.event, frame.payload) == (
        "1",
        "2",
        "realtime:room",
        "phx_join",
        {"config": {}},
    )
    heartbeat = V2.decode('[null,"3","phoenix","heartbeat",{}]')
    assert heartbeat.join_ref is None and heartbeat.ref == "3"


@pytest.mark.parametrize(
    ("raw", "close_code"),
    [
        ('{"topic":"realtime:x","event":"e","payload":{},"ref":"1"}', CLOSE_UNSUPPORTED_DATA),  # V1's shape
        ('["1","2","realtime:x"]', CLOSE_INVALID_PAYLOAD),
        ("nope", CLOSE_INVALID_PAYLOAD),
        (b"\x09whatever", CLOSE_UNSUPPORTED_DATA),
        (b"\x03\x01\x01", CLOSE_INVALID_PAYLOAD),  # shorter than its header
        (b"\x03\x00\x00\x09\x01\x00\x01realtime", CLOSE_INVALID_PAYLOAD),  # shorter than its sizes say
    ],
    ids=["object", "short-array", "not-json", "unknown-kind", "short-header", "short-fields"],
)
def test_v2_frames_that_end_the_socket(raw: str | bytes, close_code: int) -> None:
    with pytest.raises(FrameError) as caught:
        V2.decode(raw)
    assert caught.value.close_code == close_code


def test_v2_decodes_a_user_broadcast_push() -> None:
    frame = V2.decode(user_broadcast_push("realtime:room", "typing", b'{"who":"js"}', ref="7"))
    assert (frame.topic, frame.event, frame.ref, frame.join_ref) == ("realtime:room", "broadcast", "7", "1")
    assert frame.payload == {"type": "broadcast", "event": "typing", "payload": {"who": "js"}}
    assert frame.user_broadcast == UserBroadcast(event="typing", payload=b'{"who":"js"}', is_json=True)
    binary = V2.decode(user_broadcast_push("realtime:room", "blob", b"\x00\xff", encoding=0, meta='{"id":"x"}'))
    assert binary.user_broadcast == UserBroadcast(event="blob", payload=b"\x00\xff", is_json=False)
    assert "payload" not in binary.payload
    empty_refs = V2.decode(user_broadcast_push("realtime:room", "e", b"{}", join_ref="", ref=""))
    assert (empty_refs.join_ref, empty_refs.ref) == (None, None)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b'{"a":"\\ud800"}', "surrogate"),
        (b"[" * 200 + b"]" * 200, "nested deeper"),
        (b"{nope", "not JSON"),
        (b'"\xed\xa0\x80"', "not UTF-8"),
    ],
)
def test_v2_user_broadcast_pushes_with_bad_json_are_answered(payload: bytes, reason: str) -> None:
    with pytest.raises(FrameError, match=reason) as caught:
        V2.decode(user_broadcast_push("realtime:room", "e", payload, ref="8"))
    assert (caught.value.topic, caught.value.ref, caught.value.join_ref, caught.value.close_code) == (
        "realtime:room",
        "8",
        "1",
        None,
    )


def test_v2_binary_pushes_are_answered_with_an_error() -> None:
    frame = bytes([0, 1, 1, 13, 1]) + b"1" + b"5" + b"realtime:room" + b"e" + b"\x00\x01"
    with pytest.raises(FrameError, match="only accepted in broadcasts") as caught:
        V2.decode(frame)
    assert (caught.value.topic, caught.value.ref) == ("realtime:room", "5")


def test_v2_server_frames() -> None:
    assert json.loads(V2.message("realtime:x", "system", {"a": 1}, join_ref="9")) == [
        "9",
        None,
        "realtime:x",
        "system",
        {"a": 1},
    ]
    assert json.loads(V2.reply("realtime:x", "3", "ok", {}, join_ref="1")) == [
        "1",
        "3",
        "realtime:x",
        "phx_reply",
        {"status": "ok", "response": {}},
    ]
    assert json.loads(V2.close("realtime:x", "4")) == ["4", "4", "realtime:x", "phx_close", {}]
    assert json.loads(V2.change("realtime:x", [5], '{"type":"DELETE"}')) == [
        None,
        None,
        "realtime:x",
        "postgres_changes",
        {"ids": [5], "data": {"type": "DELETE"}},
    ]


def test_v2_sends_user_broadcasts_in_binary_and_json_broadcasts_as_text() -> None:
    user = UserBroadcast(event="typing", payload=b'{"who":"js"}', is_json=True)
    frame = V2.broadcast("realtime:room", Broadcast(user=user))
    # kind 4, sizes of topic (13), event (6) and metadata (0), encoding 1 (JSON), then the strings and payload
    assert frame == bytes([4, 13, 6, 0, 1]) + b"realtime:room" + b"typing" + b'{"who":"js"}'
    binary = V2.broadcast("realtime:room", Broadcast(user=UserBroadcast("e", b"\x00", is_json=False)))
    assert binary == bytes([4, 13, 1, 0, 0]) + b"realtime:room" + b"e" + b"\x00"
    payload = {"type": "broadcast", "event": "e", "payload": {"x": 1}}
    text = V2.broadcast("realtime:room", Broadcast(payload=payload))
    assert isinstance(text, str) and json.loads(text) == [None, None, "realtime:room", "broadcast", payload]


def test_v2_falls_back_to_text_when_a_name_is_too_long_for_the_binary_layout() -> None:
    topic = "realtime:" + "x" * 300
    frame = V2.broadcast(topic, Broadcast(user=UserBroadcast("e", b"[1]", is_json=True)))
    assert isinstance(frame, str)
    assert json.loads(frame) == [None, None, topic, "broadcast", {"type": "broadcast", "event": "e", "payload": [1]}]
    assert V2.broadcast(topic, Broadcast(user=UserBroadcast("e", b"\x00", is_json=False))) is None
