"""Sockets, the channels joined on them, and the topics that tie channels of different sockets together."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from devstack.gateway.realtime.bindings import Binding
from devstack.gateway.realtime.policies import Policies
from devstack.gateway.realtime.presence import Diff, PresenceRegistry
from devstack.gateway.realtime.protocol import (
    CLOSE_INTERNAL_ERROR,
    CLOSE_TRY_AGAIN_LATER,
    MAX_FRAME_BYTES,
    Broadcast,
)
from devstack.gateway.realtime.serializer import Frame, Serializer

log = logging.getLogger(__name__)

MAX_QUEUED_FRAMES = 10_000
"""A socket that falls this far behind is closed (1013) rather than buffering without bound."""

TopicKey = tuple[bool, str]
"""``(private, topic)``: private and public channels of the same name do not see each other."""


@dataclass(frozen=True, slots=True)
class Auth:
    """The verified token a channel acts with.

    Attributes:
        token: The JWT itself (to recognise a repeated ``access_token``).
        claims: Its claims; ``role`` and ``exp`` are present.
        claims_json: The claims as Postgres gets them in ``request.jwt.claims``.
    """

    token: str
    claims: dict[str, Any]
    claims_json: str

    @classmethod
    def of(cls, token: str, claims: dict[str, Any]) -> Auth:
        return cls(token, claims, json.dumps(claims, sort_keys=True, separators=(",", ":")))

    @property
    def role(self) -> str:
        return str(self.claims["role"])

    @property
    def expires_at(self) -> float:
        return float(self.claims["exp"])

    @property
    def group(self) -> tuple[str, str]:
        """Subscribers with equal groups see exactly the same rows: one check serves them all."""
        return (self.role, self.claims_json)


class Connection:
    """One client websocket: an outbound queue drained by a writer task, so that a slow client never
    blocks the change fan-out, and frames leave in the order they were queued.

    Frames are built by the socket's ``serializer``. If writing fails for any reason other than the peer
    being gone (a frame that cannot be encoded, say), the socket is closed with 1011 and ``on_broken``
    runs at once, so its channels and presences are dropped instead of lingering deaf.
    """

    def __init__(self, websocket: WebSocket, apikey: str, serializer: Serializer) -> None:
        self.websocket = websocket
        self.apikey = apikey
        self.serializer = serializer
        # What Realtime hands to policies as `request.headers`: the upgrade request's x- headers.
        self.x_headers = {
            name.lower(): value for name, value in websocket.headers.items() if name.lower().startswith("x-")
        }
        self.channels: dict[str, Channel] = {}
        self.on_broken: Callable[[Connection], None] | None = None
        self._queue: asyncio.Queue[Frame | tuple[int, str]] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None
        self.closing = False

    def start(self) -> None:
        self._writer = asyncio.create_task(self._write_loop(), name="realtime-socket-writer")

    async def stop(self) -> None:
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer

    def send(self, frame: Frame) -> None:
        """Queue a frame; frames over the client's limit are dropped (and logged), never sent."""
        if self.closing:
            return
        # A character takes at most 4 bytes in UTF-8: only long frames need the exact count.
        if len(frame) * 4 > MAX_FRAME_BYTES and len(frame if isinstance(frame, bytes) else frame.encode()) > (
            MAX_FRAME_BYTES
        ):
            log.warning("realtime: dropped a %d-character frame, over the 1 MiB limit", len(frame))
            return
        if self._queue.qsize() >= MAX_QUEUED_FRAMES:
            log.warning("realtime: closing a socket %d frames behind", self._queue.qsize())
            self.close(CLOSE_TRY_AGAIN_LATER, "too far behind")
            return
        self._queue.put_nowait(frame)

    def close(self, code: int, reason: str = "") -> None:
        """Close after the frames already queued."""
        if self.closing:
            return
        self.closing = True
        self._queue.put_nowait((code, reason))

    async def _write_loop(self) -> None:
        websocket = self.websocket
        try:
            while True:
                item = await self._queue.get()
                if isinstance(item, tuple):
                    if websocket.application_state == WebSocketState.CONNECTED:
                        await websocket.close(item[0], item[1])
                    return
                if isinstance(item, bytes):
                    await websocket.send_bytes(item)
                else:
                    await websocket.send_text(item)
        except (OSError, RuntimeError, WebSocketDisconnect) as error:
            # The peer went away, or closed while a frame was on its way (uvicorn then refuses to send).
            log.debug("realtime: send failed: %s", error)
            await self._fail()
        except Exception as error:  # whatever broke the writer, this socket must not stay deaf
            log.warning("realtime: closing a socket whose writer failed: %s: %s", type(error).__name__, error)
            await self._fail()

    async def _fail(self) -> None:
        """Stop sending, drop the channels now, and close the socket (1011) if it is still open."""
        self.closing = True
        if self.on_broken is not None:
            self.on_broken(self)
        if self.websocket.application_state == WebSocketState.CONNECTED:
            with contextlib.suppress(Exception):  # the peer may be gone already
                await self.websocket.close(CLOSE_INTERNAL_ERROR, "internal error")


@dataclass(eq=False)
class Channel:
    """A topic joined on one connection (compared by identity: one object per join)."""

    conn: Connection
    topic: str
    sub_topic: str
    join_ref: str | None
    private: bool
    broadcast_self: bool
    broadcast_ack: bool
    presence_enabled: bool
    presence_key: str
    bindings: tuple[Binding, ...]
    auth: Auth
    policies: Policies | None = None
    """A private channel's rights on its topic (``policies``); None for a public channel."""
    active: bool = True
    expiry: asyncio.TimerHandle | None = None

    @property
    def topic_key(self) -> TopicKey:
        return (self.private, self.topic)

    @property
    def reads_broadcasts(self) -> bool:
        """Whether broadcasts on the topic reach this channel (a private one needs the read right)."""
        return self.policies is None or self.policies.broadcast_read is True

    @property
    def reads_presence(self) -> bool:
        """Whether presence of the topic reaches this channel (a private one needs the read right)."""
        return self.policies is None or self.policies.presence_read is True

    def push(self, event: str, payload: Any) -> None:
        """A push of this channel (``system``, ``presence_state``), carrying its join ref in V2."""
        self.conn.send(self.conn.serializer.message(self.topic, event, payload, join_ref=self.join_ref))

    def push_change(self, ids: list[int], data_json: str) -> None:
        """A ``postgres_changes`` push; ``data_json`` is serialized once per change and shared."""
        self.conn.send(self.conn.serializer.change(self.topic, ids, data_json))


class Hub:
    """Every joined channel by topic, the channels with ``postgres_changes`` bindings, and presence."""

    def __init__(self) -> None:
        self._topics: dict[TopicKey, dict[Channel, None]] = {}
        self._subscribed: dict[Channel, None] = {}
        self.presence = PresenceRegistry()

    def add(self, channel: Channel) -> None:
        self._topics.setdefault(channel.topic_key, {})[channel] = None
        if channel.bindings:
            self._subscribed[channel] = None

    def remove(self, channel: Channel) -> None:
        """Forget ``channel`` and tell the topic if it was present (a presence leave)."""
        channel.active = False
        if channel.expiry is not None:
            channel.expiry.cancel()
            channel.expiry = None
        members = self._topics.get(channel.topic_key)
        if members is not None:
            members.pop(channel, None)
            if not members:
                del self._topics[channel.topic_key]
        self._subscribed.pop(channel, None)
        diff = self.presence.untrack(channel.topic_key, channel)
        if diff is not None:
            self.send_presence_diff(channel.topic_key, diff)

    def members(self, key: TopicKey) -> list[Channel]:
        return list(self._topics.get(key, {}))

    def subscribed(self) -> Iterator[Channel]:
        """Channels with ``postgres_changes`` bindings, in join order."""
        return iter(list(self._subscribed))

    def send_presence_diff(self, key: TopicKey, diff: Diff, exclude: Channel | None = None) -> None:
        frames: dict[Serializer, Frame] = {}  # each frame built once per wire format
        for member in self._topics.get(key, {}):
            if member.presence_enabled and member.reads_presence and member is not exclude:
                serializer = member.conn.serializer
                frame = frames.get(serializer)
                if frame is None:
                    frame = frames[serializer] = serializer.message(member.topic, "presence_diff", diff)
                member.conn.send(frame)

    def broadcast(self, key: TopicKey, message: Broadcast, sender: Channel | None) -> None:
        """Relay a broadcast to the topic; to ``sender`` too only when it asked for ``self``."""
        frames: dict[Serializer, Frame | None] = {}
        for member in self._topics.get(key, {}):
            if (member is sender and not member.broadcast_self) or not member.reads_broadcasts:
                continue
            serializer = member.conn.serializer
            if serializer not in frames:
                frames[serializer] = serializer.broadcast(member.topic, message)
            frame = frames[serializer]
            if frame is not None:
                member.conn.send(frame)
