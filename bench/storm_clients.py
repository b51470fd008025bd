"""The clients of the app-level reconnect storm (``bench_fanout``): the app's own realtime link, many per process.

Each client is the app's ``RealtimeManager`` (its heartbeat, reconnect spread, topic plan and private
joins) on the official Realtime client, holding ``user:<me>``, the open chat (the big one every client
has open) and two recent chats. Its back-fill after each (re)connect is the app's: the chat list's first
page (``rpc/chat_list``, 100 rows), then one ``rpc/changes_since`` call with the cursor of every chat it
has one for (here the open chat), over REST with the user's token. Each chat joined after that back-fill
began is back-filled on its own (``changes_since`` with its one cursor), as the app does. The rest of the
data layer (cache, views) is left out: it costs the server nothing.

A worker process runs its share of the clients on one event loop and answers the driver's commands on
a queue: ``ready`` (every client live and holding its topics), ``drop`` (every socket cut at once, as by a
network blip), ``wait`` (until every client is live, holds its topics and has every message up to a
given ``rev``, then a report) and ``stop``.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
from realtime import AsyncRealtimeClient

from desktop_chat.dal.changes import EVENTS, parse_change
from desktop_chat.models import ChangeEvent, ChatId, MessageUpserted, UserId
from desktop_chat.realtime.manager import RealtimeManager
from desktop_chat.realtime.plan import LinkTiming
from desktop_chat.realtime.state import ConnectionState

TIMINGS = {
    # The app's: spread, the open chat first, the others deferred.
    "app": LinkTiming(),
    # Every client straight back with every topic, as a client without a plan does (a few ms of jitter,
    # backing off from there when attempts fail).
    "at_once": LinkTiming(reconnect_spread=0.05, deferred_after=0.0, deferred_spread=0.0),
}
HOT_TOPICS = 6  # chat:<id> and chat:<id>:typing for the open chat and two recent ones
WAIT = 120.0


@dataclass
class Client:
    user: UserId
    token: str
    chat: ChatId  # the open one
    recent: list[ChatId]
    http: httpx.AsyncClient
    manager: RealtimeManager | None = None
    have: set[int] = field(default_factory=set)  # revs of the open chat this client has
    live_at: float | None = None
    hot_at: float | None = None
    done_at: float | None = None
    joins: list[float] = field(default_factory=list)
    rest_calls: int = 0
    reconnects_before: int = 0
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def cursor(self) -> int:
        value = 0
        while value + 1 in self.have:
            value += 1
        return value

    def on_changes(self, events: Any) -> None:
        for event in events:
            if isinstance(event, MessageUpserted) and event.message.chat_id == self.chat and event.message.rev:
                self.have.add(event.message.rev)

    def on_state(self, state: ConnectionState) -> None:
        if state is ConnectionState.LIVE and self.live_at is None:
            self.live_at = time.time()

    async def backfill(self) -> None:
        """The link's back-fill: the chat list read again, then every cursor in one call (the server skips
        the chats that did not move)."""
        await self._rest("POST", "/rest/v1/rpc/chat_list", json={"p_limit": 100})
        await self.backfill_chat(self.chat)

    async def backfill_chat(self, chat: ChatId) -> None:
        """One chat's changes above its cursor (the open chat's; the recent ones have none here)."""
        after = self.cursor() if chat == self.chat else 0
        body = {"p_chats": [str(chat)], "p_revs": [after], "p_limit": 500}
        rows = await self._rest("POST", "/rest/v1/rpc/changes_since", json=body)
        for row in rows:
            if row.get("chat_id") == str(self.chat):
                self.have.update(int(message["rev"]) for message in row.get("messages") or [])

    async def _rest(self, method: str, path: str, **options: Any) -> list[dict[str, Any]]:
        """One REST call, tried again after a second when the connection fails (the app's probe would try
        again a few seconds later; a storm must not leave a client behind for a dropped keep-alive)."""
        for attempt in range(5):
            self.rest_calls += 1
            try:
                response = await self.http.request(method, path, headers=self._auth(), **options)
                response.raise_for_status()
                rows: list[dict[str, Any]] = response.json()
                return rows
            except httpx.HTTPError:
                if attempt == 4:
                    raise
                await asyncio.sleep(1.0)
        raise AssertionError("unreachable")

    def on_chat_joined(self, chat: ChatId) -> None:
        """As the app does: a chat whose topics were just joined is back-filled."""
        task = asyncio.get_running_loop().create_task(self.backfill_chat(chat))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def on_join(self, _topic: str) -> None:
        self.joins.append(time.time())

    def reset(self) -> None:
        self.live_at = self.hot_at = self.done_at = None
        self.joins = []
        self.rest_calls = 0
        self.reconnects_before = self.manager.reconnects if self.manager is not None else 0


def _parse(push: Any) -> ChangeEvent | None:
    return parse_change(push)


async def _main(spec: dict[str, Any], commands: Any, results: Any) -> None:
    loop = asyncio.get_running_loop()
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(
        base_url=spec["api_url"], headers={"apikey": spec["anon_key"]}, limits=limits, timeout=60
    ) as http:
        clients = [
            Client(
                UserId(uuid.UUID(user)),
                token,
                ChatId(uuid.UUID(spec["chat"])),
                [ChatId(uuid.UUID(c)) for c in recent],
                http,
            )
            for user, token, recent in spec["clients"]
        ]
        url, key = spec["realtime_url"], spec["anon_key"]
        for client in clients:
            client.manager = RealtimeManager(
                lambda: AsyncRealtimeClient(url, token=key, auto_reconnect=False),
                EVENTS,
                _parse,
                on_changes=client.on_changes,
                on_state=client.on_state,
                backfill=client.backfill,
                on_chat_joined=client.on_chat_joined,
                on_join=client.on_join,
            )
            client.manager.watch_chats([client.chat], client.recent)
            await client.manager.start(client.user, client.token)
            await asyncio.sleep(0.02)  # the setup is not the storm: let the first joins go in gently
        try:
            while True:
                command, argument = await loop.run_in_executor(None, commands.get)
                if command == "ready":
                    await _until(clients, lambda c: _holds(c), WAIT)
                    results.put(("ready", _census(clients)))
                elif command == "drop":
                    for client in clients:
                        client.reset()
                        assert client.manager is not None
                        client.manager.timing = TIMINGS[argument]
                    dropped = time.time()
                    for client in clients:
                        _cut(client)
                    results.put(("drop", dropped))
                elif command == "wait":
                    target = int(argument)
                    await _until(clients, lambda c, target=target: _complete(c, target), WAIT)
                    results.put(("wait", [_report(c, target) for c in clients]))
                elif command == "stop":
                    break
        finally:
            for client in clients:
                if client.manager is not None:
                    await client.manager.stop()
            results.put(("stop", None))


def _census(clients: list[Client]) -> dict[str, int]:
    """How the clients stand (what the driver checks before a storm, and shows when it cannot start)."""
    managers = [client.manager for client in clients if client.manager is not None]
    return {
        "clients": len(clients),
        "ready": sum(1 for client in clients if _holds(client)),
        "live": sum(1 for manager in managers if manager.state is ConnectionState.LIVE),
        "reconnects": sum(manager.reconnects for manager in managers),
        "heartbeat_misses": sum(manager.heartbeat_misses for manager in managers),
        "joins": sum(manager.joins for manager in managers),
    }


def _holds(client: Client) -> bool:
    manager = client.manager
    return manager is not None and manager.state is ConnectionState.LIVE and len(manager.topics) == HOT_TOPICS


def _complete(client: Client, target: int) -> bool:
    now = time.time()
    # Only once live again: right after the cut a client may not have noticed it yet.
    if client.hot_at is None and client.live_at is not None and _holds(client):
        client.hot_at = now
    if (
        client.done_at is None
        and client.live_at is not None
        and all(rev in client.have for rev in range(1, target + 1))
    ):
        client.done_at = now
    return client.hot_at is not None and client.done_at is not None


async def _until(clients: list[Client], check: Any, within: float) -> None:
    deadline = time.monotonic() + within
    # Every client is checked each round (a list, not a short-circuiting generator): the check notes when
    # each one got there. Polling, since the clients' own tasks change their state.
    while not all([check(client) for client in clients]) and time.monotonic() < deadline:  # noqa: C419, ASYNC110
        await asyncio.sleep(0.05)


def _cut(client: Client) -> None:
    """Drop the client's socket without a word, as a network blip does (the transport is aborted)."""
    manager = client.manager
    socket = getattr(manager, "_socket", None)
    transport = getattr(getattr(socket, "_ws_connection", None), "transport", None)
    if transport is not None:
        transport.abort()


def _report(client: Client, target: int) -> dict[str, Any]:
    manager = client.manager
    return {
        "live_at": client.live_at,
        "hot_at": client.hot_at,
        "done_at": client.done_at,
        "complete": client.done_at is not None and client.hot_at is not None,
        "joins": client.joins,
        "rest_calls": client.rest_calls,
        "reconnects": (manager.reconnects if manager is not None else 0) - client.reconnects_before,
        "target": target,
    }


def run_worker(spec: dict[str, Any], commands: Any, results: Any) -> None:
    asyncio.run(_main(spec, commands, results))
