"""LiveSync: keeps the views and the cache in step with the server as changes arrive.

Changes come from realtime pushes, from the sender (a send confirmed or failed) and from back-fill.
They are applied in batches: **cache first**, then the views, so a burst of a thousand messages becomes
one cache write per chat and one row operation per view. Realtime changes are applied at most once a
frame: the first after a quiet frame goes out on the next loop turn (a lone message does not wait), the
ones that follow within the frame are collected until it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from functools import partial
from typing import TYPE_CHECKING

from desktop_chat.cache import AppendResult, KeyKind
from desktop_chat.dal.api import ChatList, MessageListener, Timeline, UsersListener, new_chat_list, new_timeline
from desktop_chat.dal.cursor import RevCursor
from desktop_chat.dal.live_list import Unsubscribe
from desktop_chat.dal.reducers import (
    details_changed,
    max_rev,
    newer_message,
    summary_read_up_to,
    summary_with_chat,
    summary_with_message,
    unread_after,
)
from desktop_chat.errors import BackendUnavailable, NotSignedIn
from desktop_chat.models import (
    ChangeEvent,
    ChatId,
    ChatMember,
    ChatRemoved,
    ChatSummary,
    ChatUpserted,
    DeliveryState,
    MemberRemoved,
    MemberUpserted,
    Message,
    MessageId,
    MessageUpserted,
    ProfileUpserted,
    UserId,
)
from desktop_chat.sync.outbox import OutboxEntry

if TYPE_CHECKING:
    from desktop_chat.dal.chat_store import ChatStore

log = logging.getLogger(__name__)

PAGE = 50
FRAME_INTERVAL = 0.016  # seconds live changes are collected before the views hear of them (a 60 Hz frame)
BACKFILL_BATCH = 500
GAP_GRACE = 1.0  # seconds to let realtime close a gap by itself before back-filling
WATCHED_CHATS = 20  # chats whose typing and presence are followed


def _listeners_call(listeners: Iterable[object], *args: object) -> None:
    for listener in list(listeners):
        try:
            listener(*args)  # type: ignore[operator]
        except Exception:  # a view's bug must not stop the data layer
            log.exception("listener failed")


class LiveSync:
    def __init__(self, store: ChatStore, *, frame_interval: float) -> None:
        self._store = store
        self._frame = frame_interval
        self.chat_list: ChatList = new_chat_list()
        self._me: UserId | None = None
        self._timelines: dict[ChatId, Timeline] = {}
        self._oldest_loaded: dict[ChatId, int | None] = {}
        self._has_older: dict[ChatId, bool] = {}
        self._cursors: dict[ChatId, RevCursor] = {}
        self._unsent: dict[ChatId, dict[MessageId, Message]] = defaultdict(dict)
        self._inbox: list[ChangeEvent] = []
        self._flush_handle: asyncio.TimerHandle | None = None
        self._last_flush = -math.inf  # loop time of the last batch of realtime changes
        self._apply_lock = asyncio.Lock()
        self._gap_chats: set[ChatId] = set()
        self._gap_task: asyncio.Task[None] | None = None
        self._list_tickets = 0
        self._shown_ticket = 0
        self._recent_dirty = False
        self._recent_writer: asyncio.Task[None] | None = None
        self._typing_listeners: list[UsersListener] = []
        self._presence_listeners: list[UsersListener] = []
        self._incoming_listeners: list[MessageListener] = []
        self._typing: dict[ChatId, frozenset[UserId]] = {}
        self._online: dict[ChatId, frozenset[UserId]] = {}

    # --- lifecycle ---------------------------------------------------------------------------------
    def reset_for_user(self, user: UserId) -> None:
        self._me = user
        self.chat_list.reset([])
        for timeline in self._timelines.values():
            timeline.reset([])
        self._timelines.clear()
        self._oldest_loaded.clear()
        self._has_older.clear()
        self._cursors.clear()
        self._unsent.clear()
        self._inbox.clear()
        self._gap_chats.clear()
        self._typing.clear()
        self._online.clear()

    async def stop(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        if self._gap_task is not None:
            self._gap_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._gap_task
            self._gap_task = None
        self._inbox.clear()

    def clear_cursors(self) -> None:
        self._cursors.clear()

    def _user(self) -> UserId:
        if self._me is None:
            raise NotSignedIn("You are not signed in.")
        return self._me

    # --- listeners ---------------------------------------------------------------------------------
    def subscribe_typing(self, listener: UsersListener) -> Unsubscribe:
        """Who types where; a new listener first hears the current state of every chat."""
        self._typing_listeners.append(listener)
        for chat_id, users in list(self._typing.items()):
            listener(chat_id, users)
        return lambda: self._typing_listeners.remove(listener) if listener in self._typing_listeners else None

    def subscribe_presence(self, listener: UsersListener) -> Unsubscribe:
        """Who is online where; a new listener first hears the current state of every chat."""
        self._presence_listeners.append(listener)
        for chat_id, users in list(self._online.items()):
            listener(chat_id, users)
        return lambda: self._presence_listeners.remove(listener) if listener in self._presence_listeners else None

    def subscribe_incoming(self, listener: MessageListener) -> Unsubscribe:
        self._incoming_listeners.append(listener)
        return lambda: self._incoming_listeners.remove(listener) if listener in self._incoming_listeners else None

    def typing_changed(self, chat_id: ChatId, users: frozenset[UserId]) -> None:
        others = users - {self._me} if self._me else users
        self._typing[chat_id] = others
        _listeners_call(self._typing_listeners, chat_id, others)

    def presence_changed(self, chat_id: ChatId, users: frozenset[UserId]) -> None:
        self._online[chat_id] = users
        _listeners_call(self._presence_listeners, chat_id, users)

    # --- the chat list -----------------------------------------------------------------------------
    def begin_chat_list_load(self) -> int:
        """A ticket taken before a chat-list load starts; ``show_chats`` drops a result older than one
        already shown (a slow load that began before a chat was created must not hide it)."""
        self._list_tickets += 1
        return self._list_tickets

    def show_chats(self, chats: Sequence[ChatSummary], ticket: int | None = None) -> None:
        """Replace the chat list with a fresh load, keeping rows' newer live state."""
        if ticket is None:
            ticket = self.begin_chat_list_load()
        if ticket < self._shown_ticket:
            return
        self._shown_ticket = ticket
        merged = []
        for summary in chats:
            current = self.chat_list.get(summary.chat.id)
            if current is not None and current.chat.last_rev > summary.chat.last_rev:
                summary = current  # a live update is newer than what the load read
            merged.append(summary)
        self.chat_list.reset(merged)
        realtime = self._store.realtime
        if realtime is not None:
            watched = [row.chat.id for row in self.chat_list.rows[:WATCHED_CHATS]]
            self._store.spawn(realtime.watch_chats(watched), "watch-chats")

    # --- timelines ---------------------------------------------------------------------------------
    async def open_timeline(self, chat_id: ChatId) -> Timeline:
        timeline = self._timelines.get(chat_id)
        if timeline is None:
            timeline = new_timeline()
            self._timelines[chat_id] = timeline
        # The view shows one page. The whole window is read only to start the chat's cursor (its newest rev
        # may be on an older message that was edited); once the cursor exists, the page is enough.
        known = chat_id in self._cursors
        window = await self._store.message_window(chat_id, PAGE if known else None)
        self._ensure_cursor(chat_id, window)
        page = window[-PAGE:]
        oldest = page[0].seq if page else None
        self._oldest_loaded[chat_id] = oldest
        self._has_older[chat_id] = bool(oldest and oldest > 1)
        rows: dict[MessageId, Message] = {m.id: m for m in page}
        for local in self._unsent.get(chat_id, {}).values():
            rows.setdefault(local.id, local)
        # Keep rows a live change already brought in that are newer than the window's copy.
        for existing in timeline.rows:
            kept = newer_message(rows.get(existing.id), existing)
            if kept is not None and (oldest is None or (existing.seq or 0) >= oldest or existing.seq is None):
                rows[existing.id] = kept
        timeline.reset(rows.values())
        # The window may come from a cache written in an earlier run: catch up on what changed since.
        self._store.spawn(self.backfill_chat(chat_id), "backfill-on-open")
        return timeline

    def close_timeline(self, chat_id: ChatId) -> None:
        self._timelines.pop(chat_id, None)
        self._oldest_loaded.pop(chat_id, None)
        self._has_older.pop(chat_id, None)

    def has_older(self, chat_id: ChatId) -> bool:
        return self._has_older.get(chat_id, False)

    async def load_older(self, chat_id: ChatId) -> int:
        timeline = self._timelines.get(chat_id)
        oldest = self._oldest_loaded.get(chat_id)
        if timeline is None or not oldest or oldest <= 1:
            return 0
        page = await self._store.messages(chat_id, before_seq=oldest, limit=PAGE)
        if self._timelines.get(chat_id) is not timeline:
            return 0  # closed meanwhile
        timeline.upsert_many(page.messages)
        if page.messages:
            self._oldest_loaded[chat_id] = page.messages[0].seq
        self._has_older[chat_id] = page.has_more
        return len(page.messages)

    def _ensure_cursor(self, chat_id: ChatId, window: Sequence[Message]) -> RevCursor:
        """The chat's cursor, starting from the window's newest rev.

        That is safe because the cached window is only ever loaded whole from Supabase or extended by
        changes that arrived in rev order; changes with revs between the window's newest and the chat's
        newest can only touch messages older than the window, which the cache does not hold.
        """
        cursor = self._cursors.get(chat_id)
        if cursor is None:
            cursor = RevCursor(max_rev(window))
            self._cursors[chat_id] = cursor
        return cursor

    # --- local (outbox) rows -----------------------------------------------------------------------
    def remember_unsent(self, entries: Sequence[OutboxEntry]) -> None:
        for entry in entries:
            self._unsent[entry.chat_id][entry.id] = entry.as_message()

    def show_local(self, message: Message) -> None:
        """A pending or failed row of ours: shown until the confirmed row replaces it."""
        self._unsent[message.chat_id][message.id] = message
        timeline = self._timelines.get(message.chat_id)
        if timeline is not None:
            current = timeline.get(message.id)
            if current is None or current.rev is None:
                timeline.upsert(message)

    def local_message(self, message: Message) -> None:
        """The sender's word on one of our messages.

        A confirmation goes to the views at once but not into the cache: its rev may be ahead of changes
        realtime has not delivered yet, and the cache only takes changes in rev order (the realtime echo
        of this very row brings it there).
        """
        if message.delivery is DeliveryState.SENT:
            self._unsent[message.chat_id].pop(message.id, None)
            self._store.spawn(self.apply_now([MessageUpserted(message=message)], source="local"), "apply-sent")
        else:
            self.show_local(message)

    def forget_local(self, chat_id: ChatId, message_id: MessageId) -> None:
        self._unsent[chat_id].pop(message_id, None)
        timeline = self._timelines.get(chat_id)
        if timeline is not None:
            current = timeline.get(message_id)
            if current is not None and current.rev is None:
                timeline.remove(message_id)

    def _own_membership(self, row: ChatSummary, member: ChatMember) -> ChatSummary | None:
        """The chat's row after our membership row changed; None when only a reload can tell."""
        updates: dict[str, object] = {}
        if member.role != row.role:
            updates["role"] = member.role
        if member.last_read_seq > row.last_read_seq:
            timeline = self._timelines.get(row.chat.id)
            oldest = self._oldest_loaded.get(row.chat.id)
            if member.last_read_seq >= row.chat.last_seq:
                unread = 0
            elif timeline is not None and oldest is not None and oldest <= member.last_read_seq + 1:
                unread = unread_after(timeline.rows, member.last_read_seq, self._user())
            else:
                return None
            updates["last_read_seq"] = member.last_read_seq
            updates["unread_count"] = unread
        return row.model_copy(update=updates) if updates else row

    # --- reading position --------------------------------------------------------------------------
    def mark_read_locally(self, chat_id: ChatId, seq: int) -> bool:
        row = self.chat_list.get(chat_id)
        if row is None or seq <= row.last_read_seq:
            return False
        timeline = self._timelines.get(chat_id)
        if timeline is not None:
            remaining = unread_after(timeline.rows, seq, self._user())
        else:
            remaining = 0 if seq >= row.chat.last_seq else row.unread_count
        self.chat_list.upsert(summary_read_up_to(row, seq, remaining))
        self._write_recent()
        return True

    # --- applying changes --------------------------------------------------------------------------
    def enqueue(self, events: Sequence[ChangeEvent]) -> None:
        """Collect changes. Applied on the next loop turn if the last batch went out a frame or more ago,
        else together with everything else that arrives until the frame since that batch ends."""
        self._inbox.extend(events)
        if self._flush_handle is None:
            loop = asyncio.get_running_loop()
            delay = max(0.0, self._last_flush + self._frame - loop.time())
            self._flush_handle = loop.call_later(delay, self._flush)

    def _flush(self) -> None:
        self._flush_handle = None
        self._last_flush = asyncio.get_running_loop().time()
        events, self._inbox = self._inbox, []
        if events:
            self._store.spawn(self.apply_now(events), "apply-changes")

    async def apply_now(self, events: Sequence[ChangeEvent], *, source: str = "realtime") -> None:
        """Apply changes now. ``source`` is "realtime" (in commit order), "backfill" (everything above
        a cursor, authoritative) or "local" (an answer to our own request: views only)."""
        async with self._apply_lock:
            await self._apply(events, source=source)

    async def _apply(self, events: Sequence[ChangeEvent], *, source: str) -> None:
        me = self._user()
        messages: dict[ChatId, list[Message]] = defaultdict(list)
        drop: set[ChatId] = set()
        forget_details: set[ChatId] = set()
        reload_list = False
        for event in events:
            if isinstance(event, MessageUpserted):
                messages[event.message.chat_id].append(event.message)
            elif isinstance(event, ChatUpserted):
                session = event.chat
                row = self.chat_list.get(session.id)
                if session.deleted:
                    drop.add(session.id)
                elif row is None:
                    reload_list = True  # a chat we did not know: we were just added to it
                else:
                    if details_changed(row.chat, session):
                        forget_details.add(session.id)
                    self.chat_list.upsert(summary_with_chat(row, session))
            elif isinstance(event, ChatRemoved):
                drop.add(event.chat_id)
            elif isinstance(event, MemberUpserted):
                member = event.member
                row = self.chat_list.get(member.chat_id)
                if member.user_id == me and row is None:
                    reload_list = True
                elif member.user_id == me and row is not None:
                    # Our own membership changed: read on another device, or made owner.
                    updated = self._own_membership(row, member)
                    if updated is None:
                        reload_list = True  # cannot work out the unread count here: ask Supabase
                    elif updated != row:
                        self.chat_list.upsert(updated)
                        forget_details.add(member.chat_id)
                else:
                    forget_details.add(member.chat_id)
            elif isinstance(event, MemberRemoved):
                if event.user_id == me:
                    drop.add(event.chat_id)
                else:
                    forget_details.add(event.chat_id)
            elif isinstance(event, ProfileUpserted):
                forget_details.update(self._timelines)

        gaps = await self._apply_messages(messages, me, source=source)
        for chat_id in forget_details - drop:
            await self._forget_details(chat_id)
        for chat_id in drop:
            await self.drop_chat(chat_id)
        if messages or forget_details:
            self._write_recent()
        if reload_list:
            self._store.spawn(self.reload_chats(), "reload-chats")
        if gaps:
            self._gap_chats.update(gaps)
            if self._gap_task is None or self._gap_task.done():
                self._gap_task = asyncio.get_running_loop().create_task(self._close_gaps())

    async def _apply_messages(self, by_chat: dict[ChatId, list[Message]], me: UserId, *, source: str) -> set[ChatId]:
        gaps: set[ChatId] = set()
        cache = self._store.cache
        # 1. The cache, one atomic append per chat, and only from changes known to be in rev order.
        for chat_id, incoming in by_chat.items():
            incoming.sort(key=lambda m: m.rev or 0)
            if source == "local":
                continue
            cursor = self._cursors.get(chat_id)
            gap = False
            if cursor is not None and source == "realtime":
                for message in incoming:
                    if message.rev is not None and cursor.observe(message.rev):
                        gap = True
            confirmed = [m for m in incoming if m.seq is not None]
            if gap:
                # Something was missed: the cached window can no longer be trusted until a back-fill.
                gaps.add(chat_id)
                await cache.invalidate(me, KeyKind.MSGS, chat_id)
            elif confirmed and await cache.append_messages(me, chat_id, confirmed) is AppendResult.GAP:
                gaps.add(chat_id)
        # 2. The views.
        with self.chat_list.batch():
            for chat_id, incoming in by_chat.items():
                row = self.chat_list.get(chat_id)
                timeline = self._timelines.get(chat_id)
                oldest = self._oldest_loaded.get(chat_id)
                if timeline is not None:
                    with timeline.batch():
                        for message in incoming:
                            if message.seq is not None and oldest is not None and message.seq < oldest:
                                continue  # older than what the view has loaded
                            kept = newer_message(timeline.get(message.id), message)
                            if kept is not None:
                                timeline.upsert(kept)
                for message in incoming:
                    self._unsent[chat_id].pop(message.id, None)
                if row is None:
                    continue
                for message in sorted(incoming, key=lambda m: m.seq or 0):
                    before = row.chat.last_seq
                    row = summary_with_message(row, message, me)
                    if (
                        message.seq is not None
                        and message.seq > before
                        and message.sender_id != me
                        and not message.deleted
                    ):
                        _listeners_call(self._incoming_listeners, message)
                self.chat_list.upsert(row)
        return gaps

    def _write_recent(self) -> None:
        """Write the chat list through to the cache; one writer, always the latest rows."""
        if self._me is None:
            return
        self._recent_dirty = True
        if self._recent_writer is None or self._recent_writer.done():
            self._recent_writer = self._store.spawn(self._recent_writer_loop(), "write-recent")

    async def _recent_writer_loop(self) -> None:
        while self._recent_dirty and self._me is not None:
            self._recent_dirty = False
            await self._store.cache.set_recent(self._me, list(self.chat_list.rows))

    async def _forget_details(self, chat_id: ChatId) -> None:
        await self._store.cache.invalidate(self._user(), KeyKind.CHAT, chat_id)

    async def drop_chat(self, chat_id: ChatId) -> None:
        """The chat is gone for this user (left, removed, deleted): out of every view and the cache."""
        await self._store.cache.invalidate_chat(self._user(), chat_id)
        self.chat_list.remove(chat_id)
        timeline = self._timelines.get(chat_id)
        if timeline is not None:
            timeline.reset([])
        self.close_timeline(chat_id)
        self._cursors.pop(chat_id, None)
        self._write_recent()

    # --- back-fill ---------------------------------------------------------------------------------
    async def _close_gaps(self) -> None:
        await asyncio.sleep(GAP_GRACE)  # realtime usually closes the gap by itself within this time
        while self._gap_chats:
            chat_id = self._gap_chats.pop()
            cursor = self._cursors.get(chat_id)
            if cursor is not None and cursor.has_gap:
                with contextlib.suppress(BackendUnavailable):
                    await self.backfill_chat(chat_id)

    async def reload_chats(self) -> list[ChatSummary]:
        """Load the chat list from Supabase (not the cache: a chat appeared or went away), show it and
        write it through."""
        store = self._store
        ticket = self.begin_chat_list_load()
        chats = await store.call_backend(
            "recent_chats", lambda: store.backend.fetch_recent_chats(store.settings.cache_max_chats_per_user)
        )
        self.show_chats(chats, ticket)
        self._write_recent()
        return chats

    async def backfill_all(self) -> None:
        """After every subscribe: reload the chat list, and fetch every known chat's changes since its cursor."""
        me = self._user()
        store = self._store
        chats = await self.reload_chats()
        visible = {summary.chat.id for summary in chats}
        for chat_id in list(self._cursors):
            if chat_id not in visible:
                await self.drop_chat(chat_id)
        # Chats whose window is cached (maybe by an earlier run) get a cursor, so they catch up too.
        for chat_id in await store.cache.cached_chats(me):
            if chat_id in visible and chat_id not in self._cursors:
                cached = await store.cache.get_messages(me, chat_id)
                if cached is not None:
                    self._ensure_cursor(chat_id, cached.value)
        for chat_id in list(self._cursors):
            await self.backfill_chat(chat_id)

    async def backfill_chat(self, chat_id: ChatId) -> int:
        """Apply every change of the chat above its cursor. Returns how many rows came."""
        cursor = self._cursors.get(chat_id)
        if cursor is None:
            return 0
        total = 0
        while True:
            after = cursor.value
            rows = await self._store.call_backend(
                "messages_since", partial(self._store.backend.fetch_messages_since, chat_id, after, BACKFILL_BATCH)
            )
            if rows:
                await self.apply_now([MessageUpserted(message=m) for m in rows], source="backfill")
                cursor.backfilled(max(m.rev or 0 for m in rows))
                total += len(rows)
            if len(rows) < BACKFILL_BATCH:
                return total
