"""The wire, frame by frame, with a raw websocket: exact replies, bad input, and a server that stays up.

Every frame the server sends is validated with the official client's own model of server messages.
"""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import websockets

from tests.conftest import StackHandle
from tests.integration.realtime.conftest import ALICE, BOB, Db, Realtime, assert_still_serving

pytestmark = pytest.mark.integration

TIMEOUT = 10.0


async def test_join_reply_pushes_and_leave_on_the_wire(connect: Callable[..., Any], stack: StackHandle) -> None:
    raw = await connect()
    bindings = [
        {"event": "INSERT", "schema": "public", "table": "chat_messages", "filter": f"session_id=eq.{uuid.uuid4()}"},
        {"event": "*", "schema": "public", "table": "chat_members"},
        {"event": "UPDATE", "schema": "public"},
    ]
    config = {
        "broadcast": {"ack": True, "self": False},
        "presence": {"key": "", "enabled": True},
        "private": False,
        "postgres_changes": bindings,
    }
    reply = await raw.join("realtime:wire", config, stack.anon_key)
    assert reply["topic"] == "realtime:wire" and reply["payload"]["status"] == "ok"
    echoed = reply["payload"]["response"]["postgres_changes"]
    assert [{k: v for k, v in b.items() if k != "id"} for b in echoed] == bindings  # echoed as sent, in order
    assert all(isinstance(b["id"], int) and b["id"] > 0 for b in echoed) and len({b["id"] for b in echoed}) == 3
    system = await raw.receive()
    assert system == {
        "topic": "realtime:wire",
        "event": "system",
        "payload": {
            "channel": "wire",
            "extension": "postgres_changes",
            "message": "Subscribed to PostgreSQL",
            "status": "ok",
        },
        "ref": None,
    }
    assert await raw.receive() == {"topic": "realtime:wire", "event": "presence_state", "payload": {}, "ref": None}

    ref = await raw.send("realtime:wire", "broadcast", {"type": "broadcast", "event": "e", "payload": {}}, join_ref="1")
    assert (await raw.reply_to(ref))["payload"] == {"status": "ok", "response": {}}  # ack: true
    ref = await raw.send("phoenix", "heartbeat", {})
    assert (await raw.reply_to(ref))["topic"] == "phoenix"
    await raw.ws.send(json.dumps({"topic": "phoenix", "event": "heartbeat", "payload": {}, "ref": None}))
    assert await raw.receive() == {
        "topic": "phoenix",
        "event": "phx_reply",
        "payload": {"status": "ok", "response": {}},
        "ref": None,
    }

    ref = await raw.send(
        "realtime:wire", "presence", {"type": "presence", "event": "track", "payload": {"x": 1}}, join_ref="1"
    )
    assert (await raw.reply_to(ref))["payload"]["status"] == "ok"
    diff = await raw.receive()
    assert diff["event"] == "presence_diff" and diff["ref"] is None
    (key,) = diff["payload"]["joins"]
    assert diff["payload"]["joins"][key]["metas"][0]["phx_ref"]

    ref = await raw.send("realtime:wire", "phx_leave", {}, join_ref="1")
    assert (await raw.receive()) == {
        "topic": "realtime:wire",
        "event": "phx_reply",
        "payload": {"status": "ok", "response": {}},
        "ref": ref,
    }
    assert await raw.receive() == {"topic": "realtime:wire", "event": "phx_close", "payload": {}, "ref": "1"}

    raw.ref = 99
    reply = await raw.join("realtime:none", {"broadcast": None, "presence": None, "private": False}, stack.anon_key)
    assert reply["payload"] == {"status": "ok", "response": {"postgres_changes": []}}


async def test_error_replies_keep_the_socket_open(connect: Callable[..., Any], stack: StackHandle) -> None:
    raw = await connect()
    ref = await raw.send("realtime:not-joined", "broadcast", {"event": "e", "payload": {}})
    assert (await raw.reply_to(ref))["payload"] == {"status": "error", "response": {"reason": "unmatched topic"}}
    assert (await raw.join("realtime:ok", {}, stack.anon_key))["payload"]["status"] == "ok"
    ref = await raw.send("realtime:ok", "shout", {})
    assert (await raw.reply_to(ref))["payload"]["response"]["reason"] == "unknown event 'shout'"
    ref = await raw.send("realtime:ok", "presence", {"event": "dance"})
    assert (await raw.reply_to(ref))["payload"]["status"] == "error"
    ref = await raw.send("realtime:ok", "presence", {"event": "track", "payload": "not a map"})
    assert "must be a map" in (await raw.reply_to(ref))["payload"]["response"]["reason"]
    await raw.ws.send(json.dumps({"topic": "realtime:ok", "event": "broadcast", "payload": "text", "ref": "50"}))
    assert "malformed message" in (await raw.reply_to("50"))["payload"]["response"]["reason"]
    ref = await raw.send("phoenix", "dance", {})
    assert (await raw.reply_to(ref))["payload"]["status"] == "error"
    ref = await raw.send("realtime:bad", "phx_join", {"config": {"postgres_changes": "all"}})
    assert "must be a list" in (await raw.reply_to(ref))["payload"]["response"]["reason"]
    ref = await raw.send("phoenix", "heartbeat", {})
    assert (await raw.reply_to(ref))["payload"]["status"] == "ok"  # all the while, the socket stayed up


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("this is not json", 1007),
        ('["1", "1", "realtime:x", "phx_join", {}]', 1003),  # the V2 serializer's array frames
        (b"\x00\x01binary", 1003),
        ("x" * (1024 * 1024 + 1), 1009),  # over websockets' 1 MiB default, as the gateway is configured
    ],
    ids=["not-json", "v2-array", "binary", "oversized"],
)
async def test_frames_that_close_only_their_socket(
    connect: Callable[..., Any], rt: Realtime, db: Db, frame: str | bytes, code: int
) -> None:
    bystander = await connect()
    assert (await bystander.join("realtime:bystander", {}, rt.stack.anon_key))["payload"]["status"] == "ok"
    offender = await connect(max_size=None)
    await offender.ws.send(frame)
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await asyncio.wait_for(offender.ws.recv(), TIMEOUT)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == code
    ref = await bystander.send("phoenix", "heartbeat", {})
    assert (await bystander.reply_to(ref))["payload"]["status"] == "ok"
    await assert_still_serving(rt, db)


@pytest.mark.parametrize(
    "query",
    ["vsn=1.0.0", "apikey=not-a-jwt&vsn=1.0.0", "apikey={forged}&vsn=1.0.0", "apikey={anon}&vsn=3.0.0"],
    ids=["no-apikey", "garbage-apikey", "forged-apikey", "unknown-serializer"],
)
async def test_handshakes_that_are_refused(connect: Callable[..., Any], stack: StackHandle, query: str) -> None:
    forged = stack.anon_key.rsplit(".", 1)[0] + ".c2lnbmF0dXJl"
    with pytest.raises(websockets.InvalidStatus) as refused:
        await connect(query.format(anon=stack.anon_key, forged=forged))
    assert refused.value.response.status_code == 403


async def test_websocket_pings_are_answered(connect: Callable[..., Any]) -> None:
    raw = await connect()
    pong = await raw.ws.ping()
    await asyncio.wait_for(pong, TIMEOUT)


async def test_a_socket_that_stops_reading_does_not_hold_up_others(
    connect: Callable[..., Any], rt: Realtime, db: Db
) -> None:
    chat = await db.new_chat(ALICE, BOB)
    # A tiny receive buffer (no autotuning), so the unread pushes pile up at the server.
    sock = socket.create_connection((rt.stack.config.host, rt.stack.config.api_port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled = await connect(sock=sock)
    binding = {"event": "INSERT", "schema": "public", "table": "chat_messages", "filter": f"session_id=eq.{chat}"}
    reply = await stalled.join("realtime:stalled", {"postgres_changes": [binding]}, rt.token(BOB))
    assert reply["payload"]["status"] == "ok"
    # Megabytes of pushes for a socket that never reads again: far more than the kernel buffers hold,
    # so a server that waited for this socket would stop delivering to everyone.
    await db.pool.execute(
        "insert into public.chat_messages (session_id, sender_id, content)"
        " select $1, $2, repeat('x', 8000) from generate_series(1, 1000)",
        chat,
        ALICE,
    )
    await assert_still_serving(rt, db)
    stalled.ws.transport.abort()  # a polite close would wait behind the unread megabytes
