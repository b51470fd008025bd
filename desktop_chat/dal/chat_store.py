"""ChatStore: the one object the UI talks to.

Reads go through the cache (hit → return; miss → Supabase → store → return; one load per key; an
expired entry is served while one refresh runs). Writes go through the outbox first and show at once.
Live changes (realtime pushes, send confirmations, back-fill) are applied to the cache first and then to
the views, in batches, by ``LiveSync``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Any, TypeVar

from desktop_chat.backend.auth import SessionInfo
from desktop_chat.backend.client import SupabaseBackend
from desktop_chat.cache import CacheKey, CacheStatus, KeyKind, LoadToken, TieredCache, chat_key, msgs_key, recent_key
from desktop_chat.cache.tiered import Cached
from desktop_chat.config import Settings
from desktop_chat.dal.api import (
    ChatList,
    MessageListener,
    StatusListener,
    StoreStatus,
    Timeline,
    UsersListener,
)
from desktop_chat.dal.live import FRAME_INTERVAL, LiveSync
from desktop_chat.dal.live_list import Unsubscribe
from desktop_chat.dal.readthrough import SingleFlight
from desktop_chat.errors import BackendUnavailable, InvalidInput, NotSignedIn, Rejected
from desktop_chat.models import (
    ChatDetails,
    ChatId,
    ChatSummary,
    DeliveryState,
    Message,
    MessageId,
    MessagePage,
    MessageUpserted,
    Profile,
    UserId,
    new_chat_id,
    new_message_id,
    validate_message_text,
    validate_title,
)
from desktop_chat.realtime.manager import ConnectionState, RealtimeManager
from desktop_chat.sync.outbox import Outbox
from desktop_chat.sync.sender import Sender
from desktop_chat.telemetry.metrics import ERRORS, REALTIME_LAG, SUPABASE_LATENCY, MetricsRegistry

log = logging.getLogger(__name__)

T = TypeVar("T")

PAGE = 50
WARM_CHATS = 5


class ChatStore:
    """Implements ``desktop_chat.dal.api.ChatStoreAPI``.

    Args:
        settings: TTLs, caps and timeouts.
        backend: Supabase (already started).
        cache: The typed cache (never raises; Redis with a memory tier behind a breaker).
        outbox: The durable outbox (already open).
        metrics: Where measurements go (the same registry the cache reports to).
        realtime: Start the realtime link after sign-in (tests of the read path turn it off).
        frame_interval: How long live changes are collected before the views hear of them.
    """

    def __init__(
        self,
        settings: Settings,
        backend: SupabaseBackend,
        cache: TieredCache,
        outbox: Outbox,
        metrics: MetricsRegistry,
        *,
        realtime: bool = True,
        frame_interval: float = FRAME_INTERVAL,
    ) -> None:
        self._settings = settings
        self._backend = backend
        self._cache = cache
        self._outbox = outbox
        self._metrics = metrics
        self._realtime_enabled = realtime
        self._user: Profile | None = None
        self._status = StoreStatus(cache=cache.status, detail=cache.detail)
        self._status_listeners: list[StatusListener] = []
        self._flight: SingleFlight[CacheKey, Any] = SingleFlight()
        self._sender: Sender | None = None
        self._realtime: RealtimeManager | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self._unsubscribers: list[Callable[[], None]] = []
        self._closers: list[Callable[[], Awaitable[None]]] = []
        self.live = LiveSync(self, frame_interval=frame_interval)
        self._unsubscribers.append(cache.subscribe_status(self._on_cache_status))

    # ==============================================================================================
    # session
    # ==============================================================================================
    @property
    def current_user(self) -> Profile | None:
        return self._user

    @property
    def backend(self) -> SupabaseBackend:
        return self._backend

    @property
    def cache(self) -> TieredCache:
        return self._cache

    @property
    def settings(self) -> Settings:
        return self._settings

    @property
    def outbox(self) -> Outbox:
        return self._outbox

    def require_user(self) -> UserId:
        if self._user is None:
            raise NotSignedIn("You are not signed in.")
        return self._user.id

    async def restore_session(self) -> Profile | None:
        profile = await self._backend.restore_session()
        if profile is not None:
            await self._signed_in(profile)
        return profile

    async def sign_in(self, email: str, password: str) -> Profile:
        if not email.strip() or not password:
            raise InvalidInput("Enter your email address and password.")
        profile = await self._backend.sign_in(email, password)
        await self._signed_in(profile)
        return profile

    async def sign_up(self, email: str, password: str, display_name: str) -> Profile:
        from desktop_chat.models import validate_display_name

        name = validate_display_name(display_name)
        profile = await self._backend.sign_up(email, password, name)
        await self._signed_in(profile)
        return profile

    async def sign_out(self) -> None:
        user = self._user
        await self._stop_user_services()
        if user is not None:
            await self._cache.purge_user(user.id)
        await self._backend.sign_out()
        self._set_status(connection=ConnectionState.OFFLINE, outbox_depth=0, backend_reachable=True, detail="")

    async def _signed_in(self, profile: Profile) -> None:
        await self._stop_user_services()
        self._user = profile
        self.live.reset_for_user(profile.id)
        self._sender = Sender(
            self._outbox,
            self._backend,
            self._backend.server,
            profile.id,
            on_message=self._on_delivery,
            on_depth=lambda depth: self._set_status(outbox_depth=depth),
        )
        online = self._backend.session is not None
        if not online:
            # Started offline from the saved session: show the cache, hold the sends, and let the session
            # keeper confirm the session in the background (see _on_session).
            self._sender.pause()
            self._set_status(
                connection=ConnectionState.OFFLINE,
                backend_reachable=False,
                detail=f"Cannot reach {self._backend.server}; showing what is saved on this computer.",
            )
        unsent = await self._sender.start()
        self.live.remember_unsent(unsent)
        if self._realtime_enabled:
            self._realtime = RealtimeManager(
                self._backend.client,
                on_changes=self.live.enqueue,
                on_state=self._on_link_state,
                backfill=self.live.backfill_all,
                on_typing=self.live.typing_changed,
                on_presence=self.live.presence_changed,
                on_lag=self._metrics.histogram(REALTIME_LAG).observe,
            )
            session = self._backend.session
            if session is not None:
                await self._realtime.start(profile.id, session.access_token)
        self._unsubscribers.append(self._backend.subscribe_session(self._on_session))
        self.spawn(self._warm(), "warm-cache")

    async def _stop_user_services(self) -> None:
        for unsubscribe in self._unsubscribers[1:]:
            unsubscribe()
        del self._unsubscribers[1:]
        if self._realtime is not None:
            await self._realtime.stop()
            self._realtime = None
        if self._sender is not None:
            await self._sender.close()
            self._sender = None
        pending = {task for task in self._background if task is not asyncio.current_task()}
        while pending := {task for task in pending if not task.done()}:
            # Cancel again if a library swallowed the first cancellation: closing must never hang.
            for task in pending:
                task.cancel()
            await asyncio.wait(pending, timeout=1.0)
        await self.live.stop()
        self._user = None

    def _on_delivery(self, message: Message) -> None:
        if message.delivery is DeliveryState.SENT:
            self.backend_reached(True)  # a send went through: the server is there
        self.live.local_message(message)

    def _on_session(self, session: SessionInfo | None) -> None:
        if session is None:
            # The server ended the session (refresh token revoked): stop, keep the outbox for next time.
            self.spawn(self._stop_user_services(), "session-ended")
            self._set_status(connection=ConnectionState.OFFLINE, detail="Signed out by the server.")
            return
        if self._sender is not None:
            self._sender.resume()
        self.backend_reached(True)
        if self._realtime is not None and self._user is not None:
            if self._realtime.state is ConnectionState.OFFLINE:
                # The session was confirmed after an offline start: the link comes up now.
                self.spawn(self._realtime.start(self._user.id, session.access_token), "realtime-start")
            else:
                self._realtime.update_token(session.access_token)

    def close_with(self, *closers: Callable[[], Awaitable[None]]) -> None:
        """Have ``close`` also release these (the cache, outbox and client it was built with), in order."""
        self._closers.extend(closers)

    async def close(self) -> None:
        """Stop background work, then release what the store was built with. The outbox keeps unsent
        messages on disk for the next start."""
        await self._stop_user_services()
        for unsubscribe in self._unsubscribers:
            unsubscribe()
        self._unsubscribers.clear()
        closers, self._closers = self._closers, []
        for close in closers:
            try:
                await close()
            except Exception:  # keep closing the rest: a failure must not leave a redis-server behind
                log.exception("closing %s failed", getattr(close, "__qualname__", close))

    # ==============================================================================================
    # status
    # ==============================================================================================
    @property
    def status(self) -> StoreStatus:
        return self._status

    def subscribe_status(self, listener: StatusListener) -> Unsubscribe:
        self._status_listeners.append(listener)
        return lambda: self._status_listeners.remove(listener) if listener in self._status_listeners else None

    def _set_status(self, **changes: Any) -> None:
        from dataclasses import replace

        status = replace(self._status, **changes)
        if status != self._status:
            self._status = status
            for listener in list(self._status_listeners):
                listener(status)

    def _on_cache_status(self, status: CacheStatus, detail: str) -> None:
        self._set_status(cache=status)

    def _on_link_state(self, state: ConnectionState) -> None:
        self._set_status(connection=state)
        if state is ConnectionState.LIVE and self._sender is not None:
            self._sender.nudge()  # the server is back: send what waits without sitting out backoffs

    def backend_reached(self, ok: bool, detail: str = "") -> None:
        self._set_status(backend_reachable=ok, detail="" if ok else detail)
        if ok and self._realtime is not None and self._realtime.state is ConnectionState.RECONNECTING:
            self._realtime.nudge()  # REST works again, so the realtime link probably will too

    def metrics_snapshot(self) -> dict[str, Any]:
        snapshot: dict[str, Any] = {
            "status": {
                "connection": self._status.connection.value,
                "cache": self._status.cache.value,
                "outbox_depth": self._status.outbox_depth,
                "backend_reachable": self._status.backend_reachable,
            },
            "cache_detail": self._cache.detail,
            "metrics": self._metrics.snapshot(),
        }
        if self._realtime is not None:
            lag = self._metrics.histogram(REALTIME_LAG).quantile(0.5)
            snapshot["realtime"] = {
                "state": self._realtime.state.value,
                "reconnects": self._realtime.reconnects,
                "last_push_at": self._realtime.last_push_at,
                "lag_ms": round(lag * 1000, 1) if lag is not None else None,
            }
        return snapshot

    # ==============================================================================================
    # read-through
    # ==============================================================================================
    async def call_backend(self, operation: str, run: Callable[[], Awaitable[T]]) -> T:
        """Call Supabase, recording latency and reachability."""
        started = time.perf_counter()
        try:
            result = await run()
        except BackendUnavailable as error:
            self._observe(operation, started, ok=False)
            self.backend_reached(False, error.message)
            raise
        except Exception:
            self._observe(operation, started, ok=False)
            raise
        self._observe(operation, started, ok=True)
        self.backend_reached(True)
        return result

    def _observe(self, operation: str, started: float, *, ok: bool) -> None:
        self._metrics.histogram(SUPABASE_LATENCY, op=operation).observe(time.perf_counter() - started)
        if not ok:
            self._metrics.counter(ERRORS, kind=f"supabase.{operation}").inc()

    async def read_through(
        self,
        key: CacheKey,
        get: Callable[[], Awaitable[Cached[T] | None]],
        fetch: Callable[[], Awaitable[T]],
        put: Callable[[T, LoadToken], Awaitable[bool]],
    ) -> T:
        """The read path: a fresh hit returns; a stale hit returns and refreshes once in the background;
        a miss loads once (however many ask) and stores the result unless an event changed the key while
        it loaded (the cache's load token).
        """
        loads_before = self._flight.completed(key)
        hit = await get()
        if hit is not None:
            if not hit.fresh and key not in self._flight:
                self.spawn(self._refresh_quietly(key, fetch, put), f"refresh-{key.kind}")
            return hit.value
        # A load of this key that finished while our miss was on its way has just written the value:
        # look once more rather than ask Supabase again.
        recheck = get if self._flight.completed(key) != loads_before else None
        return await self._flight.run(key, lambda: self._load(key, fetch, put, recheck))  # type: ignore[no-any-return]

    async def _load(
        self,
        key: CacheKey,
        fetch: Callable[[], Awaitable[T]],
        put: Callable[[T, LoadToken], Awaitable[bool]],
        get: Callable[[], Awaitable[Cached[T] | None]] | None = None,
    ) -> T:
        if get is not None:
            hit = await get()
            if hit is not None and hit.fresh:
                return hit.value
        token = self._cache.begin_load(key)
        value = await self.call_backend(key.kind, fetch)
        await put(value, token)
        return value

    async def _refresh_quietly(
        self, key: CacheKey, fetch: Callable[[], Awaitable[T]], put: Callable[[T, LoadToken], Awaitable[bool]]
    ) -> None:
        with contextlib.suppress(BackendUnavailable):
            await self._flight.run(key, lambda: self._load(key, fetch, put))

    async def settle(self) -> None:
        """Wait until the background work started so far (warming, refreshes, write-through) is done."""
        while pending := [task for task in self._background if not task.done()]:
            await asyncio.gather(*pending, return_exceptions=True)

    def spawn(self, coroutine: Awaitable[Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coroutine)
        task.set_name(name)
        self._background.add(task)

        def done(finished: asyncio.Task[Any]) -> None:
            self._background.discard(finished)
            if not finished.cancelled() and (error := finished.exception()) is not None:
                if isinstance(error, (BackendUnavailable, NotSignedIn)):
                    log.info("%s did not finish: %s", name, error)
                else:
                    log.error("%s failed", name, exc_info=error)

        task.add_done_callback(done)
        return task

    # --- the three cached reads ---------------------------------------------------------------------
    async def recent_chats(self) -> list[ChatSummary]:
        user = self.require_user()
        limit = self._settings.cache_max_chats_per_user

        async def fetch() -> tuple[ChatSummary, ...]:
            return tuple(await self._backend.fetch_recent_chats(limit))

        chats: tuple[ChatSummary, ...] = await self.read_through(
            recent_key(user),
            lambda: self._cache.get_recent(user),
            fetch,
            lambda value, token: self._cache.set_recent(user, value, token=token),
        )
        return list(chats)

    async def chat_details(self, chat_id: ChatId) -> ChatDetails:
        user = self.require_user()

        async def fetch() -> ChatDetails:
            details = await self._backend.fetch_chat_details(chat_id)
            if details is None or details.chat.deleted:
                raise Rejected("This chat does not exist or you are no longer in it.")
            return details

        details: ChatDetails = await self.read_through(
            chat_key(user, chat_id),
            lambda: self._cache.get_chat(user, chat_id),
            fetch,
            lambda value, token: self._cache.set_chat(user, value, token=token),
        )
        return details

    async def message_window(self, chat_id: ChatId, newest: int | None = None) -> tuple[Message, ...]:
        """The newest messages of a chat (up to the cache's cap), ascending: cached, or loaded on a miss.

        ``newest``: only that many of the newest messages are wanted. A hit then reads and decrypts just
        those (the window holds up to ``cache_max_messages_per_chat``, four pages by default); a miss still
        loads and caches the whole window.
        """
        if newest is not None and newest < 1:
            raise InvalidInput("A page holds at least one message.")
        user = self.require_user()
        cap = self._settings.cache_max_messages_per_chat

        async def fetch() -> tuple[Message, ...]:
            page = await self._backend.fetch_messages(chat_id, None, cap)
            return page.messages

        window: tuple[Message, ...] = await self.read_through(
            msgs_key(user, chat_id),
            lambda: self._cache.get_messages(user, chat_id, newest),
            fetch,
            lambda value, token: self._cache.set_messages(user, chat_id, value, token=token),
        )
        if newest is not None and newest < len(window):
            return window[-newest:]
        return window

    async def messages(self, chat_id: ChatId, before_seq: int | None = None, limit: int = PAGE) -> MessagePage:
        """A page of confirmed messages (ascending). The newest pages come from the cached window."""
        if limit < 1:
            raise InvalidInput("A page holds at least one message.")
        # The newest page needs only the newest `limit` of the window: same answer, far less to decrypt.
        window = await self.message_window(chat_id, limit if before_seq is None else None)
        cached = [m for m in window if before_seq is None or (m.seq or 0) < before_seq]
        oldest_cached = window[0].seq if window else None
        covers = len(cached) >= limit or (oldest_cached is not None and oldest_cached <= 1) or not window
        if covers:
            chosen = cached[-limit:]
            first = chosen[0].seq if chosen else None
            return MessagePage(chat_id=chat_id, messages=tuple(chosen), has_more=bool(first and first > 1))
        # Older than the cached window: straight from Supabase (history pages are not cached).
        return await self.call_backend(
            "messages_page", lambda: self._backend.fetch_messages(chat_id, before_seq, limit)
        )

    async def _warm(self) -> None:
        """After sign-in: the recent list, then the newest page of the top chats, in the background."""
        ticket = self.live.begin_chat_list_load()
        chats = await self.recent_chats()
        self.live.show_chats(chats, ticket)
        for summary in chats[:WARM_CHATS]:
            with contextlib.suppress(BackendUnavailable, Rejected):
                await self.message_window(summary.chat.id)

    async def refresh_chats(self) -> None:
        ticket = self.live.begin_chat_list_load()
        chats = await self.recent_chats()
        self.live.show_chats(chats, ticket)

    # ==============================================================================================
    # views
    # ==============================================================================================
    def chat_list(self) -> ChatList:
        return self.live.chat_list

    async def open_chat(self, chat_id: ChatId) -> Timeline:
        return await self.live.open_timeline(chat_id)

    def close_chat(self, chat_id: ChatId) -> None:
        self.live.close_timeline(chat_id)

    def has_older(self, chat_id: ChatId) -> bool:
        return self.live.has_older(chat_id)

    async def load_older(self, chat_id: ChatId) -> int:
        return await self.live.load_older(chat_id)

    def subscribe_typing(self, listener: UsersListener) -> Unsubscribe:
        return self.live.subscribe_typing(listener)

    def subscribe_presence(self, listener: UsersListener) -> Unsubscribe:
        return self.live.subscribe_presence(listener)

    def subscribe_incoming(self, listener: MessageListener) -> Unsubscribe:
        return self.live.subscribe_incoming(listener)

    @property
    def realtime(self) -> RealtimeManager | None:
        return self._realtime

    # ==============================================================================================
    # writes
    # ==============================================================================================
    def _require_sender(self) -> Sender:
        if self._sender is None:
            raise NotSignedIn("You are not signed in.")
        return self._sender

    async def send(self, chat_id: ChatId, text: str) -> MessageId:
        user = self.require_user()
        sender = self._require_sender()
        validate_message_text(text)
        entry = await self._outbox.add(new_message_id(), self._backend.server, user, chat_id, text)
        self.live.show_local(entry.as_message())
        await sender.submit(entry)
        return entry.id

    async def retry(self, message_id: MessageId) -> None:
        if await self._require_sender().retry(message_id) is None:
            raise InvalidInput("That message is no longer waiting to be sent.")

    async def discard(self, message_id: MessageId) -> None:
        entry = await self._outbox.get(message_id)
        await self._require_sender().discard(message_id)
        if entry is not None:
            self.live.forget_local(entry.chat_id, message_id)

    async def edit_message(self, message_id: MessageId, text: str) -> None:
        self.require_user()
        validate_message_text(text)
        stored = await self.call_backend("edit_message", lambda: self._backend.edit_message(message_id, text))
        if stored is None:
            raise Rejected("Only the sender can edit a message, and not after deleting it.")
        await self.live.apply_now([MessageUpserted(message=stored)])

    async def delete_message(self, message_id: MessageId) -> None:
        self.require_user()
        stored = await self.call_backend("delete_message", lambda: self._backend.delete_message(message_id))
        if stored is None:
            raise Rejected("Only the sender can delete a message.")
        await self.live.apply_now([MessageUpserted(message=stored)])

    async def create_chat(self, title: str, member_emails: Sequence[str] = ()) -> ChatId:
        user = self.require_user()
        clean_title = validate_title(title)
        members: list[UserId] = []
        for email in dict.fromkeys(e.strip().lower() for e in member_emails if e.strip()):
            profile = await self.call_backend("find_profile", partial(self._backend.find_profile_by_email, email))
            if profile is None:
                raise InvalidInput(f"There is no account for {email}.")
            if profile.id != user:
                members.append(profile.id)
        chat_id = new_chat_id()
        await self.call_backend("create_chat", lambda: self._backend.create_chat(chat_id, clean_title))
        if members:
            await self.call_backend("add_members", lambda: self._backend.add_members(chat_id, members))
        await self._after_membership_change(chat_id)
        return chat_id

    async def rename_chat(self, chat_id: ChatId, title: str) -> None:
        self.require_user()
        clean = validate_title(title)
        updated = await self.call_backend("rename_chat", lambda: self._backend.update_chat(chat_id, {"title": clean}))
        if updated is None:
            raise Rejected("Only the chat's owners can rename it.")
        await self._after_membership_change(chat_id)

    async def delete_chat(self, chat_id: ChatId) -> None:
        self.require_user()
        updated = await self.call_backend(
            "delete_chat", lambda: self._backend.update_chat(chat_id, {"deleted_at": "now"})
        )
        if updated is None:
            raise Rejected("Only the chat's owners can delete it.")
        await self.live.drop_chat(chat_id)

    async def add_member(self, chat_id: ChatId, email: str) -> None:
        self.require_user()
        profile = await self.call_backend("find_profile", lambda: self._backend.find_profile_by_email(email))
        if profile is None:
            raise InvalidInput(f"There is no account for {email.strip()}.")
        await self.call_backend("add_members", lambda: self._backend.add_members(chat_id, [profile.id]))
        await self._after_membership_change(chat_id)

    async def remove_member(self, chat_id: ChatId, user_id: UserId) -> None:
        me = self.require_user()
        removed = await self.call_backend("remove_member", lambda: self._backend.remove_member(chat_id, user_id))
        if not removed:
            raise Rejected("Only the chat's owners can remove someone else.")
        if user_id == me:
            await self.live.drop_chat(chat_id)
        else:
            await self._after_membership_change(chat_id)

    async def leave_chat(self, chat_id: ChatId) -> None:
        await self.remove_member(chat_id, self.require_user())

    async def _after_membership_change(self, chat_id: ChatId) -> None:
        user = self.require_user()
        await self._cache.invalidate(user, KeyKind.CHAT, chat_id)
        # Straight from Supabase: a cached or in-flight load may predate the change.
        await self.live.reload_chats()

    async def mark_read(self, chat_id: ChatId, seq: int) -> None:
        user = self.require_user()
        if seq < 1:
            return
        if not self.live.mark_read_locally(chat_id, seq):
            return  # already read that far
        stored = await self.call_backend("mark_read", lambda: self._backend.mark_read(chat_id, user, seq))
        if stored is None:
            raise Rejected("You are no longer in this chat.")

    async def set_typing(self, chat_id: ChatId, typing: bool) -> None:
        if self._realtime is not None:
            await self._realtime.send_typing(chat_id, typing)

    async def clear_cache(self) -> None:
        await self._cache.wipe()
        self.live.clear_cursors()
