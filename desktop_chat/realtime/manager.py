"""One supervised Realtime subscription per signed-in user, plus ephemeral per-chat channels.

The client library's own reconnect gives up after a few tries and rejoins with whatever token it had,
so this manager owns the connection instead: it builds the channel, waits for SUBSCRIBED, and on any
error, close or token change tears everything down and builds it again, with backoff, for as long as
the user is signed in. Realtime does not replay what was missed while disconnected, so after **every**
successful subscribe it asks the data layer to back-fill (and, while disconnected, on a timer).

Per-chat channels (``chat:<id>``) carry typing indicators (broadcast) and who is online (presence);
they are ephemeral and never stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from realtime import AsyncRealtimeChannel, RealtimePostgresChangesListenEvent, RealtimeSubscribeStates
from realtime.types import BroadcastPayload, PostgresChangesPayload

from desktop_chat.models import ChangeEvent, ChatId, UserId
from desktop_chat.realtime.events import commit_time
from desktop_chat.realtime.inbox import PushInbox

log = logging.getLogger(__name__)

TYPING_EVENT = "typing"
TYPING_TTL = 6.0  # seconds a "typing" signal lasts unless repeated


class ConnectionState(StrEnum):
    """The realtime link (what the status bar shows as the connection)."""

    OFFLINE = "offline"  # signed out, or the server cannot be reached
    CONNECTING = "connecting"
    LIVE = "live"
    RECONNECTING = "reconnecting"


class RealtimeClientLike(Protocol):
    """The part of ``supabase.AsyncClient`` the manager uses."""

    @property
    def realtime(self) -> Any: ...

    def channel(self, topic: str, params: Any = None) -> AsyncRealtimeChannel: ...


ChangesListener = Callable[[Sequence[ChangeEvent]], None]
PushParser = Callable[[Mapping[str, object]], ChangeEvent | None]
StateListener = Callable[[ConnectionState], None]
Backfill = Callable[[], Awaitable[None]]
UsersListener = Callable[[ChatId, frozenset[UserId]], None]


@dataclass
class _ChatChannel:
    channel: AsyncRealtimeChannel
    typing: dict[UserId, float] = field(default_factory=dict)  # user -> expiry (monotonic)
    online: frozenset[UserId] = frozenset()


class RealtimeManager:
    """Keeps the user's realtime link up and turns pushes into change events.

    Args:
        client: The official async client (its realtime socket is driven from here).
        tables: The ``public`` tables whose changes the user's channel binds.
        parse: Turns one push into a change event (None: not one to apply).
        on_changes: Called with each batch of change events, in arrival (commit) order.
        on_state: Called when the link state changes.
        backfill: Awaited after every successful subscribe, and on ``backfill_interval`` while down.
        on_typing, on_presence: Called with the users typing / online in a chat.
    """

    def __init__(
        self,
        client: RealtimeClientLike,
        tables: Sequence[str],
        parse: PushParser,
        on_changes: ChangesListener,
        on_state: StateListener,
        backfill: Backfill,
        *,
        on_typing: UsersListener | None = None,
        on_presence: UsersListener | None = None,
        on_lag: Callable[[float], None] | None = None,
        subscribe_timeout: float = 10.0,
        max_backoff: float = 30.0,
        backfill_interval: float = 15.0,
    ) -> None:
        self._client = client
        self._tables = tuple(tables)
        self._parse = parse
        self._on_changes = on_changes
        self._on_state = on_state
        self._backfill = backfill
        self._on_typing = on_typing
        self._on_presence = on_presence
        self._on_lag = on_lag
        self._subscribe_timeout = subscribe_timeout
        self._max_backoff = max_backoff
        self._backfill_interval = backfill_interval
        self._state = ConnectionState.OFFLINE
        self._user_id: UserId | None = None
        self._token: str | None = None
        self._channel: AsyncRealtimeChannel | None = None
        self._broken = asyncio.Event()
        self._wake = asyncio.Event()
        self._supervisor: asyncio.Task[None] | None = None
        self._chats: dict[ChatId, _ChatChannel] = {}
        self._wanted_chats: list[ChatId] = []
        self.reconnects = 0
        self.last_push_at: float | None = None
        self._inbox: PushInbox[PostgresChangesPayload] = PushInbox(self._handle_push)

    @property
    def state(self) -> ConnectionState:
        return self._state

    # --- lifecycle ---------------------------------------------------------------------------------
    async def start(self, user_id: UserId, access_token: str) -> None:
        """Begin supervising the link for ``user_id`` (returns at once; the link comes up later)."""
        await self.stop()
        self._user_id = user_id
        self._token = access_token
        self._set_state(ConnectionState.CONNECTING)
        self._supervisor = asyncio.get_running_loop().create_task(self._supervise(), name="realtime-supervisor")

    async def stop(self) -> None:
        task, self._supervisor = self._supervisor, None
        if task is not None:
            # Cancel until it is done: a library awaited inside the supervisor may swallow one
            # cancellation (seen with Python 3.11's asyncio.timeout), and stop() must never hang.
            while not task.done():
                task.cancel()
                await asyncio.wait({task}, timeout=1.0)
            with contextlib.suppress(asyncio.CancelledError, Exception):
                task.result()
        await self._teardown()
        await self._inbox.close()
        self._wanted_chats = []
        self._user_id = None
        self._set_state(ConnectionState.OFFLINE)

    def update_token(self, access_token: str) -> None:
        """A refreshed access token: rebuild the channels with it (rejoining does not refresh it)."""
        if access_token == self._token:
            return
        self._token = access_token
        self._broken.set()

    # --- supervision -------------------------------------------------------------------------------
    async def _supervise(self) -> None:
        failures = 0
        while True:
            self._broken.clear()
            try:
                await self._connect()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                failures += 1
                log.info("Realtime is not available (%s); retrying", type(error).__name__)
                await self._teardown()
                self._set_state(ConnectionState.RECONNECTING)
                await self._wait_and_backfill(self._delay(failures))
                continue
            failures = 0
            self._set_state(ConnectionState.LIVE)
            await self._run_backfill()
            await self._broken.wait()
            self.reconnects += 1
            await self._teardown()
            self._set_state(ConnectionState.RECONNECTING)

    def _delay(self, failures: int) -> float:
        ceiling = min(self._max_backoff, 0.5 * 2.0 ** min(failures, 10))
        return ceiling / 2 + random.random() * ceiling / 2

    async def _wait_and_backfill(self, delay: float) -> None:
        """Wait out a backoff; back-fill on the way when the wait is long (the link may stay down)."""
        deadline = time.monotonic() + delay
        self._wake.clear()
        while (remaining := deadline - time.monotonic()) > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(remaining, self._backfill_interval)):
                    await self._wake.wait()
                return  # woken: the server answers again, try now
            if time.monotonic() < deadline:
                await self._run_backfill()

    def nudge(self) -> None:
        """The server answered another request: cut a reconnect backoff short."""
        self._wake.set()

    async def _run_backfill(self) -> None:
        try:
            await self._backfill()
        except asyncio.CancelledError:
            raise
        except Exception as error:  # the server may be unreachable too; the next round tries again
            log.info("Back-fill did not complete: %s", error)

    async def _connect(self) -> None:
        if self._user_id is None or self._token is None:
            raise RuntimeError("not signed in")
        realtime = self._client.realtime
        await realtime.set_auth(self._token)
        await realtime.connect()
        channel = self._client.channel(f"user:{self._user_id}")
        for table in self._tables:
            channel.on_postgres_changes(
                RealtimePostgresChangesListenEvent.All, callback=self._on_push, table=table, schema="public"
            )
        outcome: asyncio.Future[RealtimeSubscribeStates] = asyncio.get_running_loop().create_future()

        def on_status(status: RealtimeSubscribeStates, error: Exception | None) -> None:
            if not outcome.done():
                outcome.set_result(status)
            elif status is not RealtimeSubscribeStates.SUBSCRIBED:
                log.info("Realtime channel %s: %s", status.value, type(error).__name__ if error else "")
                self._broken.set()

        self._channel = channel
        await channel.subscribe(on_status)
        async with asyncio.timeout(self._subscribe_timeout):
            status = await outcome
        if status is not RealtimeSubscribeStates.SUBSCRIBED:
            raise ConnectionError(f"subscribe ended with {status.value}")
        await self._join_chats(self._wanted_chats)

    async def _teardown(self) -> None:
        self._chats.clear()
        self._channel = None
        realtime = self._client.realtime
        with contextlib.suppress(Exception):
            await realtime.remove_all_channels()
        with contextlib.suppress(Exception):
            await realtime.close()

    def _set_state(self, state: ConnectionState) -> None:
        if state is not self._state:
            self._state = state
            self._on_state(state)

    def _on_push(self, payload: PostgresChangesPayload) -> None:
        self.last_push_at = time.time()
        self._inbox.put(payload)  # handled off the library's receive loop, in slices (see inbox.py)

    def _handle_push(self, payload: PostgresChangesPayload) -> None:
        now = time.time()
        if self._on_lag is not None:
            committed = commit_time(payload)
            if committed is not None:
                self._on_lag(max(now - committed, 0.0))
        event = self._parse(payload)
        if event is not None:
            self._on_changes([event])

    # --- per-chat ephemeral channels ---------------------------------------------------------------
    async def watch_chats(self, session_ids: Sequence[ChatId]) -> None:
        """Keep typing/presence channels for exactly these chats."""
        wanted = list(dict.fromkeys(session_ids))  # most important first
        for gone in set(self._wanted_chats) - set(wanted):
            chat = self._chats.pop(gone, None)
            if chat is not None:
                with contextlib.suppress(Exception):
                    await self._client.realtime.remove_channel(chat.channel)
        added = [chat_id for chat_id in wanted if chat_id not in self._wanted_chats]
        self._wanted_chats = wanted
        if self._state is ConnectionState.LIVE:
            await self._join_chats(added)

    async def _join_chats(self, session_ids: Sequence[ChatId]) -> None:
        """Join several chat channels at once: one slow join must not hold up the others."""
        await asyncio.gather(*(self._join_chat(chat_id) for chat_id in session_ids))

    async def _join_chat(self, chat_id: ChatId) -> None:
        if chat_id in self._chats or self._user_id is None:
            return
        user_id = self._user_id
        channel = self._client.channel(
            f"chat:{chat_id}",
            {"config": {"broadcast": {"ack": False, "self": False}, "presence": {"key": str(user_id)}}},
        )
        chat = _ChatChannel(channel)
        channel.on_broadcast(TYPING_EVENT, lambda payload: self._on_typing_push(chat_id, payload))
        channel.on_presence_sync(lambda: self._on_presence_sync(chat_id))
        self._chats[chat_id] = chat
        try:
            async with asyncio.timeout(self._subscribe_timeout):
                await channel.subscribe()
                await channel.track({"user_id": str(user_id)})
        except Exception as error:  # ephemeral: a chat without typing indicators is not worth failing
            log.info("Typing/presence for chat %s unavailable: %s", chat_id, type(error).__name__)

    async def send_typing(self, chat_id: ChatId, typing: bool) -> None:
        chat = self._chats.get(chat_id)
        if chat is None or self._user_id is None:
            return
        with contextlib.suppress(Exception):
            await chat.channel.send_broadcast(TYPING_EVENT, {"user_id": str(self._user_id), "typing": typing})

    def typing_users(self, chat_id: ChatId) -> frozenset[UserId]:
        chat = self._chats.get(chat_id)
        if chat is None:
            return frozenset()
        now = time.monotonic()
        return frozenset(user for user, expiry in chat.typing.items() if expiry > now)

    def _on_typing_push(self, chat_id: ChatId, payload: BroadcastPayload) -> None:
        chat = self._chats.get(chat_id)
        body: Any = payload.get("payload")
        if chat is None or not isinstance(body, dict):
            return
        try:
            user = UserId(uuid.UUID(str(body.get("user_id"))))
        except ValueError:
            return
        if body.get("typing"):
            chat.typing[user] = time.monotonic() + TYPING_TTL
        else:
            chat.typing.pop(user, None)
        if self._on_typing is not None:
            self._on_typing(chat_id, self.typing_users(chat_id))

    def _on_presence_sync(self, chat_id: ChatId) -> None:
        chat = self._chats.get(chat_id)
        if chat is None:
            return
        users: set[UserId] = set()
        for metas in chat.channel.presence_state().values():
            for meta in metas:
                fields: dict[str, Any] = dict(meta)  # the tracked fields sit beside presence_ref
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    users.add(UserId(uuid.UUID(str(fields["user_id"]))))
        chat.online = frozenset(users)
        if self._on_presence is not None:
            self._on_presence(chat_id, chat.online)
