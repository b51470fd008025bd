"""The official async client against the gateway's realtime service, plus helpers to write and wait.

Every test waits for events with timeouts, never for time to pass; absence is shown by ordering: a
change that must not arrive is committed *before* a control change that must, and each socket gets
its pushes in commit order.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import pytest
import websockets
from realtime import AsyncRealtimeChannel, RealtimeSubscribeStates
from realtime import RealtimePostgresChangesListenEvent as Event
from realtime.message import ServerMessageAdapter
from supabase import AsyncClient, AsyncClientOptions, acreate_client
from websockets.asyncio.client import ClientConnection

from devstack.gateway.jwt import issue_access_token
from tests.conftest import StackHandle
from tests.integration.db.conftest import ALICE, BOB, CAROL, Db

__all__ = ["ALICE", "BOB", "CAROL", "Db", "Inbox", "Raw", "Realtime", "Statuses", "assert_still_serving", "subscribe"]

TIMEOUT = 10.0
EMAILS = {ALICE: "alice@example.com", BOB: "bob@example.com", CAROL: "carol@example.com"}


class Inbox:
    """Collects callback arguments in arrival order."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self._queue: asyncio.Queue[Any] = asyncio.Queue()

    def __call__(self, *args: Any) -> None:
        item = args[0] if len(args) == 1 else args
        self.items.append(item)
        self._queue.put_nowait(item)

    async def next(self, within: float = TIMEOUT) -> Any:
        return await asyncio.wait_for(self._queue.get(), within)

    async def until(self, predicate: Callable[[Any], bool], within: float = TIMEOUT) -> Any:
        """The first new item that satisfies ``predicate`` (earlier ones are consumed)."""
        async with asyncio.timeout(within):
            while True:
                item = await self._queue.get()
                if predicate(item):
                    return item


class Statuses(Inbox):
    """Subscribe callback: ``(status, error)`` pairs."""

    async def wait_for(self, status: RealtimeSubscribeStates, within: float = TIMEOUT) -> tuple[Any, Any]:
        result: tuple[Any, Any] = await self.until(lambda item: item[0] == status, within)
        return result


async def subscribe(channel: AsyncRealtimeChannel) -> Statuses:
    """Subscribe and require SUBSCRIBED as the first status; later statuses are left to wait for."""
    statuses = Statuses()
    await channel.subscribe(statuses)
    assert statuses.items, "subscribe returned without a status"
    assert statuses.items[0][0] == RealtimeSubscribeStates.SUBSCRIBED, statuses.items
    await statuses.next()
    return statuses


def record_id(payload: dict[str, Any]) -> str:
    """The row id of a postgres_changes callback payload (new row, or old one for deletes)."""
    data = payload["data"]
    row = data.get("record") or data.get("old_record")
    return str(row["id"])


@dataclass
class Realtime:
    """Makes official clients for the stack and closes them at the end of the test."""

    stack: StackHandle
    clients: list[AsyncClient] = field(default_factory=list)

    def token(self, user: uuid.UUID, *, ttl: int = 3600, role: str = "authenticated") -> str:
        """A user's access token.

        The gateway's /auth/v1 is being written separately; until it exists the token is minted with
        the stack's JWT secret, exactly as GoTrue would sign it. Switch to ``sign_in_with_password``
        (seeded password ``password123``) when it lands.
        """
        token, _ = issue_access_token(
            str(self.stack.info["jwt_secret"]),
            user_id=user,
            email=EMAILS.get(user, f"{user}@example.com"),
            session_id=uuid.uuid4(),
            ttl=ttl,
            role=role,
        )
        return token

    async def client(self, user: uuid.UUID | None = None, *, token: str | None = None, **realtime: Any) -> AsyncClient:
        """A client signed in as ``user`` (anonymous when None) or using ``token``."""
        options = AsyncClientOptions(realtime=realtime or None, auto_refresh_token=False)
        client = await acreate_client(self.stack.api_url, self.stack.anon_key, options)
        self.clients.append(client)
        if token is None and user is not None:
            token = self.token(user)
        if token is not None:
            await client.realtime.set_auth(token)
        return client

    async def close(self) -> None:
        for client in self.clients:
            try:
                await client.realtime.remove_all_channels()
            except Exception:  # a test may have broken the socket on purpose
                await client.realtime.close()


class Raw:
    """A raw V1 client: sends frames, reads frames, checks each against the client's models."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.ref = 0

    async def send(self, topic: str, event: str, payload: Any, *, join_ref: str | None = None) -> str:
        self.ref += 1
        ref = str(self.ref)
        await self.ws.send(
            json.dumps({"topic": topic, "event": event, "payload": payload, "ref": ref, "join_ref": join_ref})
        )
        return ref

    async def receive(self) -> dict[str, Any]:
        raw = await asyncio.wait_for(self.ws.recv(), TIMEOUT)
        assert isinstance(raw, str)
        ServerMessageAdapter.validate_json(raw)  # what the official client would accept
        frame: dict[str, Any] = json.loads(raw)
        assert set(frame) == {"topic", "event", "payload", "ref"}
        return frame

    async def reply_to(self, ref: str) -> dict[str, Any]:
        while True:
            frame = await self.receive()
            if frame["event"] == "phx_reply" and frame["ref"] == ref:
                return frame

    async def join(self, topic: str, config: dict[str, Any], token: str) -> dict[str, Any]:
        ref = await self.send(topic, "phx_join", {"config": config, "access_token": token}, join_ref="1")
        return await self.reply_to(ref)


async def assert_still_serving(rt: Realtime, db: Db) -> None:
    """Another client can still subscribe and receive a change."""
    chat = await db.new_chat(ALICE)
    client = await rt.client(ALICE)
    inbox = Inbox()
    await subscribe(client.channel("healthy").on_postgres_changes(Event.Insert, inbox, table="chat_messages"))
    message = (await db.post(ALICE, chat, "still here"))["id"]
    await inbox.until(lambda payload: record_id(payload) == str(message))


@pytest.fixture
async def connect(stack: StackHandle) -> AsyncIterator[Callable[..., Any]]:
    sockets: list[ClientConnection] = []
    base = f"ws://{stack.config.host}:{stack.config.api_port}/realtime/v1/websocket"

    async def open_socket(query: str | None = None, **options: Any) -> Raw:
        ws = await websockets.connect(f"{base}?{query or f'apikey={stack.anon_key}&vsn=1.0.0'}", **options)
        sockets.append(ws)
        return Raw(ws)

    try:
        yield open_socket
    finally:
        for ws in sockets:
            await ws.close()


@pytest.fixture
async def rt(stack: StackHandle) -> AsyncIterator[Realtime]:
    helper = Realtime(stack)
    try:
        yield helper
    finally:
        await helper.close()


@pytest.fixture
async def db(stack: StackHandle) -> AsyncIterator[Db]:
    pool = await asyncpg.create_pool(stack.db_url, min_size=1, max_size=6)
    try:
        yield Db(pool)
    finally:
        await pool.close()


@pytest.fixture(autouse=True)
def _gateway_logs_no_failure(stack: StackHandle) -> Iterator[None]:
    """Whatever a test sends, the gateway must not log a failure of its own (capture, fan-out, crash)."""
    log = stack.stack.gateway.log_file
    start = log.stat().st_size if log.exists() else 0
    yield
    with log.open("rb") as handle:
        handle.seek(start)
        new = handle.read().decode(errors="replace")
    failures = [line for line in new.splitlines() if "Traceback" in line or "realtime" in line.lower()]
    assert not failures, new


@pytest.fixture(autouse=True)
def _client_accepts_every_frame(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """The official client logs and drops frames it cannot validate; none may be dropped."""
    caplog.set_level(logging.ERROR, logger="realtime")
    yield
    dropped = [r.getMessage() for r in caplog.records if "Unrecognized message format" in r.getMessage()]
    assert not dropped, dropped
