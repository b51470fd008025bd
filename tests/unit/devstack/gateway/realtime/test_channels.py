"""A socket whose writer fails is closed properly and leaves its topics; the others keep hearing."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from starlette.websockets import WebSocketState

from devstack.gateway.realtime.channels import Auth, Channel, Connection, Hub
from devstack.gateway.realtime.protocol import CLOSE_INTERNAL_ERROR, Broadcast
from devstack.gateway.realtime.serializer import V1Serializer

TOPIC = "realtime:room"


class FakeWebSocket:
    """Records what is sent; raises ``error`` on the first send when given one."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error
        self.sent: list[str | bytes] = []
        self.closed: tuple[int, str] | None = None
        self.application_state = WebSocketState.CONNECTED
        self.headers: dict[str, str] = {}
        self.arrived = asyncio.Event()

    async def send_text(self, text: str) -> None:
        await self._send(text)

    async def send_bytes(self, data: bytes) -> None:
        await self._send(data)

    async def _send(self, frame: str | bytes) -> None:
        if self.error is not None:
            raise self.error
        self.sent.append(frame)
        self.arrived.set()

    async def close(self, code: int, reason: str = "") -> None:
        self.closed = (code, reason)
        self.application_state = WebSocketState.DISCONNECTED
        self.arrived.set()


def joined(hub: Hub, websocket: FakeWebSocket, key: str) -> Channel:
    conn = Connection(websocket, "apikey", V1Serializer())  # type: ignore[arg-type]

    def drop(broken: Connection) -> None:  # what the service does with a broken socket
        for channel in list(broken.channels.values()):
            hub.remove(channel)
        broken.channels.clear()

    conn.on_broken = drop
    channel = Channel(
        conn=conn,
        topic=TOPIC,
        sub_topic="room",
        join_ref="1",
        private=False,
        broadcast_self=False,
        broadcast_ack=False,
        presence_enabled=True,
        presence_key=key,
        bindings=(),
        auth=Auth.of("token", {"role": "anon", "exp": 2**40}),
    )
    conn.channels[TOPIC] = channel
    hub.add(channel)
    hub.presence.track(channel.topic_key, channel, key, {"name": key})
    conn.start()
    return channel


async def until(event: asyncio.Event) -> None:
    await asyncio.wait_for(event.wait(), 5)
    event.clear()


@pytest.mark.parametrize(
    "error",
    [
        UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed"),
        ValueError("anything else"),
        KeyError("a bug"),
    ],
    ids=["unencodable", "value-error", "bug"],
)
async def test_a_failing_writer_closes_its_socket_and_leaves_its_topics(error: BaseException) -> None:
    hub = Hub()
    healthy_socket, broken_socket = FakeWebSocket(), FakeWebSocket(error)
    healthy = joined(hub, healthy_socket, "healthy")
    broken = joined(hub, broken_socket, "broken")

    hub.broadcast(healthy.topic_key, Broadcast(payload={"type": "broadcast", "event": "e", "payload": {}}), None)
    await until(broken_socket.arrived)
    assert broken_socket.closed == (CLOSE_INTERNAL_ERROR, "internal error")
    assert broken.conn.closing and not broken.active and not broken.conn.channels
    assert hub.members(healthy.topic_key) == [healthy]

    # The healthy socket got the broadcast, then the broken one's presence leave.
    frames: list[dict[str, Any]] = []
    while len(frames) < 2:
        await until(healthy_socket.arrived)
        frames = [json.loads(frame) for frame in healthy_socket.sent]
    assert [frame["event"] for frame in frames] == ["broadcast", "presence_diff"]
    assert list(frames[1]["payload"]["leaves"]) == ["broken"]
    assert list(hub.presence.state(healthy.topic_key)) == ["healthy"]

    broken.conn.send("ignored")  # a closed socket queues nothing more
    assert broken_socket.sent == []
    for channel in (healthy, broken):
        await channel.conn.stop()
