"""Bad input from one client never deafens another: lone surrogates, deep nesting, oversized bodies.

A string holding a lone UTF-16 surrogate (``"\\ud800"``) is valid JSON text but not valid Unicode: it
cannot be encoded to UTF-8, so a server that relays it cannot write the frame to anyone. Each test has
a victim on the topic that must keep getting replies and broadcasts after the offending input.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import websockets

from tests.conftest import StackHandle
from tests.integration.realtime.conftest import TIMEOUT, Db, Raw, Realtime, assert_still_serving

pytestmark = pytest.mark.integration

LONE_SURROGATE = "\ud800"


def broadcast_url(stack: StackHandle) -> str:
    return f"{stack.api_url}/realtime/v1/api/broadcast"


def headers(stack: StackHandle) -> dict[str, str]:
    return {"apikey": stack.anon_key, "content-type": "application/json"}


async def victim_on(connect: Callable[..., Any], stack: StackHandle, topic: str) -> Raw:
    """A socket joined to ``realtime:<topic>`` with presence on, its join pushes read."""
    victim: Raw = await connect()
    reply = await victim.join(f"realtime:{topic}", {"presence": {"key": "victim", "enabled": True}}, stack.anon_key)
    assert reply["payload"]["status"] == "ok"
    assert (await victim.receive())["event"] == "presence_state"
    return victim


async def assert_hears(victim: Raw, stack: StackHandle, topic: str) -> None:
    """The victim answers a heartbeat and receives a clean broadcast on ``topic``."""
    ref = await victim.send("phoenix", "heartbeat", {})
    assert (await victim.reply_to(ref))["payload"]["status"] == "ok"
    marker = str(uuid.uuid4())
    async with httpx.AsyncClient() as http:
        message = {"topic": topic, "event": "clean", "payload": {"marker": marker}}
        response = await http.post(broadcast_url(stack), json={"messages": [message]}, headers=headers(stack))
    assert response.status_code == 202
    while True:
        frame = await victim.receive()
        if frame["event"] == "broadcast":
            assert frame["payload"]["payload"] == {"marker": marker}
            return


async def test_http_broadcast_with_a_lone_surrogate_is_refused(
    connect: Callable[..., Any], stack: StackHandle, rt: Realtime, db: Db
) -> None:
    topic = f"room:{uuid.uuid4()}"
    victim = await victim_on(connect, stack, topic)
    # json.dumps escapes the surrogate as the six characters \ud800: valid JSON syntax.
    body = json.dumps({"messages": [{"topic": topic, "event": "e", "payload": {"text": LONE_SURROGATE}}]})
    assert "\\ud800" in body
    async with httpx.AsyncClient() as http:
        response = await http.post(broadcast_url(stack), content=body, headers=headers(stack))
    assert response.status_code == 400
    assert "surrogate" in response.json()["message"]
    await assert_hears(victim, stack, topic)
    await assert_still_serving(rt, db)


async def test_a_broadcast_frame_with_a_lone_surrogate_gets_an_error_reply(
    connect: Callable[..., Any], stack: StackHandle
) -> None:
    topic = f"room:{uuid.uuid4()}"
    victim = await victim_on(connect, stack, topic)
    offender: Raw = await connect()
    config = {"broadcast": {"ack": True, "self": True}}
    assert (await offender.join(f"realtime:{topic}", config, stack.anon_key))["payload"]["status"] == "ok"
    payload = {"type": "broadcast", "event": "e", "payload": {"text": LONE_SURROGATE}}
    ref = await offender.send(f"realtime:{topic}", "broadcast", payload, join_ref="1")
    reply = await offender.reply_to(ref)
    assert reply["payload"]["status"] == "error"
    assert "surrogate" in reply["payload"]["response"]["reason"]
    # Both sockets are fine: the offender's next broadcast reaches the victim, acked.
    ref = await offender.send(f"realtime:{topic}", "broadcast", {"type": "broadcast", "event": "e", "payload": {}})
    assert (await offender.reply_to(ref))["payload"]["status"] == "ok"
    await assert_hears(victim, stack, topic)


async def test_presence_with_a_lone_surrogate_is_refused(connect: Callable[..., Any], stack: StackHandle) -> None:
    topic = f"lobby:{uuid.uuid4()}"
    victim = await victim_on(connect, stack, topic)
    offender: Raw = await connect()
    reply = await offender.join(f"realtime:{topic}", {"presence": {"key": "x", "enabled": True}}, stack.anon_key)
    assert reply["payload"]["status"] == "ok"
    ref = await offender.send(
        f"realtime:{topic}",
        "presence",
        {"type": "presence", "event": "track", "payload": {LONE_SURROGATE: 1}},
        join_ref="1",
    )
    assert "surrogate" in (await offender.reply_to(ref))["payload"]["response"]["reason"]
    # A presence key with one, in the join itself.
    config = {"presence": {"key": f"key{LONE_SURROGATE}", "enabled": True}}
    reply = await offender.join(f"realtime:{topic}:other", config, stack.anon_key)
    assert reply["payload"]["status"] == "error"
    # A newcomer gets the topic's presence state (nothing unencodable was tracked).
    newcomer: Raw = await connect()
    reply = await newcomer.join(f"realtime:{topic}", {"presence": {"key": "new", "enabled": True}}, stack.anon_key)
    assert reply["payload"]["status"] == "ok"
    assert (await newcomer.receive())["event"] == "presence_state"
    await assert_hears(victim, stack, topic)


async def read_until_closed(raw: Raw) -> None:
    while True:
        await raw.receive()


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


async def test_deeply_nested_frames_get_an_error_or_a_close_frame(
    connect: Callable[..., Any], stack: StackHandle, rt: Realtime, db: Db
) -> None:
    topic = f"room:{uuid.uuid4()}"
    victim = await victim_on(connect, stack, topic)
    offender: Raw = await connect()
    assert (await offender.join(f"realtime:{topic}", {}, stack.anon_key))["payload"]["status"] == "ok"
    # Deeper than the limit (128) but still readable: the frame is answered with an error.
    frame = {"topic": f"realtime:{topic}", "event": "broadcast", "ref": "7", "payload": {"x": "DEEP"}}
    await offender.ws.send(json.dumps(frame).replace('"DEEP"', nested(200)))
    reply = await offender.reply_to("7")
    assert "nested" in reply["payload"]["response"]["reason"]
    # So deep that reading it would exhaust the stack: the socket is closed with 1007, cleanly.
    frame["ref"] = "8"
    await offender.ws.send(json.dumps(frame).replace('"DEEP"', nested(100_000)))
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await read_until_closed(offender)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1007
    await assert_hears(victim, stack, topic)
    await assert_still_serving(rt, db)


@pytest.mark.parametrize(
    "body",
    [
        '{"messages":' + nested(100_000) + "}",
        '{"messages":[{"topic":"t","event":"e","payload":{"x":' + nested(200) + "}}]}",
        '{"messages":[{"topic":"t","event":"e","payload":{"x":NaN}}]}',
        '{"messages":[{"topic":"t","event":"e","payload":{"x":1}}',
        b'{"messages":[{"topic":"t","event":"e","payload":{"x":"\xed\xa0\x80"}}]}',  # a surrogate, UTF-8 encoded
    ],
    ids=["very-deep", "deep", "nan", "truncated", "encoded-surrogate"],
)
async def test_http_broadcast_bodies_that_are_not_json(stack: StackHandle, body: str | bytes) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.post(broadcast_url(stack), content=body, headers=headers(stack))
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    assert response.json()["message"]


async def chunks(body: bytes) -> AsyncIterator[bytes]:
    """``body`` sent chunked, without a Content-Length: the limit must hold while reading."""
    for start in range(0, len(body), 65536):
        yield body[start : start + 65536]


async def test_http_broadcast_body_limit(stack: StackHandle) -> None:
    """Realtime's endpoint reads at most 8,000,000 bytes (Plug.Parsers' default) and answers 413."""
    filler = "x" * (8_000_000 - 80)
    fits = json.dumps({"messages": [{"topic": "t", "event": "e", "payload": {"a": filler[:2_900_000]}}]})
    too_large = json.dumps({"messages": [{"topic": "t", "event": "e", "payload": {"a": filler + "x" * 100}}]})
    assert len(too_large) > 8_000_000
    async with httpx.AsyncClient(timeout=TIMEOUT) as http:
        accepted = await http.post(broadcast_url(stack), content=fits, headers=headers(stack))
        refused = await http.post(broadcast_url(stack), content=too_large, headers=headers(stack))
        chunked = await http.post(broadcast_url(stack), content=chunks(too_large.encode()), headers=headers(stack))
    assert accepted.status_code == 202
    assert refused.status_code == 413 and refused.json()["message"]
    assert chunked.status_code == 413


async def test_http_broadcast_messages_are_validated_as_realtime_does(stack: StackHandle) -> None:
    """Each message needs a topic, an event and an object payload of at most 3,000 kB: else 422."""
    big = {"a": "x" * 3_001_000}
    messages = [
        {"topic": "t", "event": "e", "payload": {}},
        {"event": "e", "payload": {}},
        {"topic": "t", "event": "e", "payload": "text"},
        {"topic": "t", "event": "e", "payload": big},
    ]
    async with httpx.AsyncClient(timeout=TIMEOUT) as http:
        response = await http.post(broadcast_url(stack), json={"messages": messages}, headers=headers(stack))
        empty = await http.post(broadcast_url(stack), json={}, headers=headers(stack))
    assert response.status_code == 422
    errors = response.json()["errors"]["messages"]
    assert errors[0] == {}
    assert errors[1] == {"topic": ["can't be blank"]}
    assert errors[2] == {"payload": ["is invalid"]}
    assert errors[3] == {"payload": ["Payload size exceeds tenant limit"]}
    assert empty.status_code == 422 and empty.json() == {"errors": {"messages": ["can't be blank"]}}
