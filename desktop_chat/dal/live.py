"""LiveSync: keeps one user's views and cache in step with the server as changes arrive.

Changes come from realtime pushes and from back-fill; what each one means is the change-type table's
business (``desktop_chat.dal.changes``). Pushes are a fast path that may lose something; the back-fill by
``rev`` is the truth: after every (re)subscribe (``backfill_all``) and whenever the consistency probe finds
a chat whose newest ``rev`` on the server is beyond this client's cursor (``check_consistency``).
Changes are applied in batches: **cache first**, then the views, so a burst of a thousand messages
becomes one cache write per chat and one row operation per view.
Realtime changes are applied at most once a frame: the first after a quiet frame goes out on the next
loop turn (a lone message does not wait), the ones that follow within the frame are collected until it
ends. This user's own pending messages are the sender's; live sync shows what the sender announces
(``on_pending``) and tells it when the change stream brought one back (``PendingRows.confirm``).

LiveSync depends on narrow interfaces only: ``Spawner`` (runs background work), the cache, ``LiveReads``
(the cached window, older pages, the server's own answers) and ``PendingRows``.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from typing import Any, Protocol

from desktop_chat.cache import TieredCache
from desktop_chat.dal.api import SEARCH_PAGE, ChatList, MessageListener, Timeline, new_chat_list, new_timeline
from desktop_chat.dal.changes import ChangeBatch, reduce, write_cache
from desktop_chat.dal.cursor import RevCursor
from desktop_chat.dal.reads import CHAT_PAGE
from desktop_chat.dal.reducers import (
    max_rev,
    newer_message,
    summary_from_server,
    summary_read_up_to,
    summary_with_message,
    unread_after,
)
from desktop_chat.dal.window import TimelineWindow, newest_window_holds, window_around
from desktop_chat.errors import BackendUnavailable, InvalidInput
from desktop_chat.models import (
    ChangeEvent,
    ChatChanges,
    ChatId,
    ChatListKey,
    ChatSummary,
    Message,
    MessageId,
    MessagePage,
    MessageUpserted,
    UserId,
)
from desktop_chat.realtime.plan import HOT_CHATS, choose_hot_chats
from desktop_chat.sync.lifecycle import Discarded, Failed, PendingEvent, Retried, Sent, Submitted

PAGE = 50
JUMP_CONTEXT = 25  # messages loaded on each side of a message jumped to
RELOAD_PAGE = 500  # rows per call when the whole loaded list is read again
BACKFILL_CHATS = 1000  # chats per back-fill call (the server's limit)
FRAME_INTERVAL = 0.016  # seconds live changes are collected before the views hear of them (a 60 Hz frame)
BACKFILL_BATCH = 500
APPLY_SLICE = 50  # changes reduced, written through and shown together before the event loop is given back
GAP_GRACE = 1.0  # seconds to let realtime close a gap by itself before back-filling
RECENT_KEPT = 20  # chats remembered as recently opened


class Spawner(Protocol):
    """Runs background work (the signed-in user's ``TaskGroup``)."""

    def spawn(self, coroutine: Awaitable[Any], name: str) -> asyncio.Task[Any]: ...


class LiveReads(Protocol):
    """What live sync reads (``Reads``)."""

    async def recent_chats(self) -> list[ChatSummary]: ...

    async def message_window(self, chat_id: ChatId, newest: int | None = None) -> tuple[Message, ...]: ...

    async def messages(self, chat_id: ChatId, before_seq: int | None = None, limit: int = PAGE) -> MessagePage: ...

    async def messages_after(self, chat_id: ChatId, after_seq: int, limit: int = PAGE) -> MessagePage: ...

    async def load_chat_list(self, limit: int = CHAT_PAGE, after: ChatListKey | None = None) -> list[ChatSummary]: ...

    async def search_chats(
        self, text: str, limit: int = CHAT_PAGE, after: ChatListKey | None = None
    ) -> list[ChatSummary]: ...

    async def chats_by_id(self, chat_ids: Sequence[ChatId]) -> list[ChatSummary]: ...

    async def changes_since_many(self, cursors: Mapping[ChatId, int], limit: int) -> list[ChatChanges]: ...


class PendingRows(Protocol):
    """This user's messages not yet confirmed (the ``Sender``, their one owner)."""

    def unsent(self, chat_id: ChatId) -> Sequence[Message]: ...

    def confirm(self, messages: Iterable[Message]) -> None: ...


WatchChats = Callable[[Sequence[ChatId], Sequence[ChatId]], None]  # (open chats, other hot chats)


class LiveSync:
    """The live chat list and timelines of one signed-in user.

    Args:
        me: The signed-in user.
        cache: The typed cache (changes are written there first).
        reads: Windows, pages and the server's answers.
        tasks: Where background work runs.
        pending: This user's unconfirmed messages.
        on_incoming: Told of each message from someone else as it arrives live.
        watch_chats: Holds the realtime topics of these chats: the open ones, then recent ones (None
            without realtime).
        frame_interval: How long live changes are collected before the views hear of them.
        chat_page: Chat-list rows per page.
    """

    def __init__(
        self,
        me: UserId,
        *,
        cache: TieredCache,
        reads: LiveReads,
        tasks: Spawner,
        pending: PendingRows,
        on_incoming: MessageListener,
        watch_chats: WatchChats | None = None,
        holds_chat: Callable[[ChatId], bool] | None = None,
        frame_interval: float = FRAME_INTERVAL,
        chat_page: int = CHAT_PAGE,
    ) -> None:
        self._me = me
        self._chat_page = chat_page
        self._cache = cache
        self._reads = reads
        self._tasks = tasks
        self._pending = pending
        self._on_incoming = on_incoming
        self._watch_chats = watch_chats
        self._holds_chat = holds_chat
        # Which chats a back-fill made complete on the current realtime link (``is_current``): a chat whose
        # topics are held stays complete from there on, as its every change is pushed.
        self._link_epoch = 0  # bumped whenever the link comes up or goes down
        self._link_live = False
        self._checked: dict[ChatId, int] = {}  # chat -> the link epoch its last complete back-fill ran in
        self._frame = frame_interval
        self.chat_list: ChatList = new_chat_list()
        self._timelines: dict[ChatId, Timeline] = {}
        # What each open timeline holds (``dal/window.py``): the newest messages down to some seq, or a
        # detached range around a message jumped to.
        self._windows: dict[ChatId, TimelineWindow] = {}
        self._has_older: dict[ChatId, bool] = {}
        self._cursors: dict[ChatId, RevCursor] = {}
        self._inbox: list[ChangeEvent] = []
        self._flush_handle: asyncio.TimerHandle | None = None
        self._last_flush = -math.inf  # loop time of the last batch of realtime changes
        self._apply_lock = asyncio.Lock()
        self._applying: set[asyncio.Task[Any]] = set()  # "apply-changes" batches spawned and not done yet
        self._gap_chats: set[ChatId] = set()
        self._gap_task: asyncio.Task[None] | None = None
        self._list_tickets = 0
        self._shown_ticket = 0
        # The chat list is loaded a page at a time: the rows down to ``_frontier`` (the server's place of the
        # last row of the last page) are all there; below it only rows a search or a live change brought.
        self._frontier: ChatListKey | None = None
        self._list_complete = False  # the last page came back short: there is nothing below the frontier
        self._more_lock = asyncio.Lock()
        self._recent_dirty = False
        self._recent_writer: asyncio.Task[None] | None = None
        self._recently_opened: list[ChatId] = []  # most recent first
        # Read positions set here that the server has not confirmed yet (in flight, or kept while offline):
        # a chat list loaded meanwhile still has the old position, and must not bring the badge back.
        self._read_floor: dict[ChatId, int] = {}

    # --- lifecycle ---------------------------------------------------------------------------------
    @property
    def held_changes(self) -> Sequence[ChangeEvent]:
        """Realtime changes received and held for the current frame (not applied yet)."""
        return tuple(self._inbox)

    async def apply_held(self) -> None:
        """Apply, in order, the realtime changes already received: the batches under way and what is held
        for the current frame, then write the chat list through. For closing: what arrived just before a
        quit must reach the cache, or the next (offline) start shows older data. The caller bounds it."""
        if self._flush_handle is not None:
            self._flush_handle.cancel()
        self._flush()  # behind the batches already spawned: they take the apply lock in order
        while self._applying:
            await asyncio.gather(*self._applying, return_exceptions=True)
        writer = self._recent_writer
        if writer is not None and not writer.done():
            await asyncio.gather(writer, return_exceptions=True)

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
        self._checked.clear()

    def link_changed(self, live: bool) -> None:
        """The realtime link came up or went down: what a back-fill found on an earlier link no longer says
        that a chat is complete."""
        self._link_epoch += 1
        self._link_live = live

    def is_current(self, chat_id: ChatId) -> bool:
        """Whether this client has every change of the chat without asking: a back-fill on the current live
        link brought its cursor up to date, its topics are held (every change since was pushed), no gap is
        open, and its chat-list row (kept live by the notices on ``user:<me>``) shows no newer ``rev``."""
        cursor = self._cursors.get(chat_id)
        if cursor is None or cursor.has_gap or not self._link_live or self._holds_chat is None:
            return False
        if self._checked.get(chat_id) != self._link_epoch or not self._holds_chat(chat_id):
            return False
        row = self.chat_list.get(chat_id)
        return row is not None and row.chat.last_rev <= cursor.value

    def cursor_of(self, chat_id: ChatId) -> int | None:
        """The chat's back-fill cursor (the rev every change up to which is applied), if it has one."""
        cursor = self._cursors.get(chat_id)
        return cursor.value if cursor is not None else None

    # --- what reducers may look at (changes.ViewState) ----------------------------------------------
    def row(self, chat_id: ChatId) -> ChatSummary | None:
        return self.chat_list.get(chat_id)

    def open_chats(self) -> Collection[ChatId]:
        return self._timelines.keys()

    def loaded(self, chat_id: ChatId) -> tuple[Sequence[Message], int | None] | None:
        """The open timeline's rows and oldest seq, when it holds the newest messages (a detached window
        cannot tell what lies beyond it)."""
        timeline = self._timelines.get(chat_id)
        window = self._windows.get(chat_id, TimelineWindow())
        if timeline is None or not window.at_live_end:
            return None
        return timeline.rows, window.oldest

    # --- the chat list -----------------------------------------------------------------------------
    def begin_chat_list_load(self) -> int:
        """A ticket taken before a chat-list load starts; ``show_chats`` drops a result older than one
        already shown (a slow load that began before a chat was created must not hide it)."""
        self._list_tickets += 1
        return self._list_tickets

    def show_chats(self, chats: Sequence[ChatSummary], ticket: int | None = None, *, complete: bool = False) -> None:
        """Replace the chat list with a fresh load (its first pages, newest first), keeping rows' newer live
        state. ``complete``: the load read the list to its end."""
        if ticket is None:
            ticket = self.begin_chat_list_load()
        if ticket < self._shown_ticket:
            return
        first_load = not self._shown_ticket
        self._shown_ticket = ticket
        self.chat_list.reset(self._merged(chats))
        self._frontier = min((key for row in chats if (key := row.list_key) is not None), default=None)
        self._list_complete = complete
        if not self._recently_opened:
            # Before the user opens anything, the most active chats stand in for the recent ones.
            self._recently_opened = [row.chat.id for row in self.chat_list.rows[:HOT_CHATS]]
        self._update_watch()
        if first_load and self._recent_dirty:
            self._write_recent()  # what changed before the list was loaded, now with the loaded rows

    def _update_watch(self) -> None:
        """Tell realtime which chats' topics to hold (it joins and leaves only what changed)."""
        if self._watch_chats is None:
            return
        opened = [chat_id for chat_id in self._recently_opened if chat_id in self._timelines]
        opened += [chat_id for chat_id in self._timelines if chat_id not in opened]
        hot, others = choose_hot_chats(opened, self._recently_opened, lambda c: self.chat_list.get(c) is not None)
        self._watch_chats(hot, others)

    def _merged(self, chats: Iterable[ChatSummary]) -> list[ChatSummary]:
        """Rows read from the server, each replaced by the listed row where a live update is newer, with
        this user's read position and unsent messages as this client knows them."""
        merged = []
        for summary in chats:
            current = self.chat_list.get(summary.chat.id)
            if current is not None and current.chat.last_rev > summary.chat.last_rev:
                summary = current.model_copy(update={"activity_at": summary.activity_at})
            merged.append(self._with_waiting(self._with_read_floor(summary)))
        return merged

    def _upsert_rows(self, chats: Sequence[ChatSummary]) -> None:
        with self.chat_list.batch():
            for row in self._merged(chats):
                self.chat_list.upsert(row)

    async def refresh_chats(self) -> list[ChatSummary]:
        """Show the chat list (cached, or its first page loaded once)."""
        ticket = self.begin_chat_list_load()
        chats = await self._reads.recent_chats()
        # A cached list was written complete or not; only the server can say, so "load more" asks once.
        self.show_chats(chats, ticket)
        return chats

    async def reload_chats(self) -> list[ChatSummary]:
        """Read every loaded row of the chat list again from Supabase (not the cache: a chat appeared or went
        away, or the link was down), show it and write it through. The pages down to the frontier come
        again, in calls of up to ``RELOAD_PAGE`` rows; rows below it (search results) by id. A row that does
        not come back is gone."""
        ticket = self.begin_chat_list_load()
        frontier = self._frontier
        loaded = [row for row in self.chat_list.rows if self._above_frontier(row, frontier)]
        extras = [row.chat.id for row in self.chat_list.rows if not self._above_frontier(row, frontier)]
        want = max(self._chat_page, len(loaded))
        chats: list[ChatSummary] = []
        after: ChatListKey | None = None
        complete = False
        while True:
            limit = min(RELOAD_PAGE, max(want - len(chats), self._chat_page))
            page = await self._reads.load_chat_list(limit, after)
            chats += page
            if len(page) < limit:
                complete = True
                break
            after = page[-1].list_key
            if frontier is None or after is None or not frontier < after:
                break  # down to the old frontier (or a first load): every loaded page came again
        listed = {row.chat.id for row in chats}
        missing = [chat_id for chat_id in extras if chat_id not in listed]
        found = await self._reads.chats_by_id(missing) if missing else []
        if ticket < self._shown_ticket:
            return chats
        self.show_chats(chats, ticket, complete=complete)
        self._upsert_rows(found)
        self._write_recent()
        return chats

    @staticmethod
    def _above_frontier(row: ChatSummary, frontier: ChatListKey | None) -> bool:
        """Whether the row lies within the loaded pages (rows without a server place are new, at the top)."""
        key = row.list_key
        return key is None or frontier is None or not key < frontier

    def has_more_chats(self) -> bool:
        """Whether the chat list may have rows below the loaded pages."""
        return not self._list_complete

    async def load_more_chats(self) -> int:
        """Add the next page of the chat list below the loaded ones; returns how many rows came (0 at the end).

        One page at a time: a call made while another loads waits for it and then loads the page after.
        """
        async with self._more_lock:
            if self._list_complete:
                return 0
            frontier = self._frontier
            ticket = self._list_tickets
            page = await self._reads.load_chat_list(self._chat_page, frontier)
            if ticket != self._list_tickets:
                return 0  # the list was loaded again meanwhile: its frontier is another one
            self._upsert_rows(page)
            keys = [key for row in page if (key := row.list_key) is not None]
            if keys:
                self._frontier = min(keys)
            self._list_complete = len(page) < self._chat_page
            self._write_recent()
            return len(page)

    async def search_chats(self, text: str, after: ChatListKey | None = None) -> list[ChatSummary]:
        """The user's chats whose title contains ``text`` (any case), out of all of them, newest first, below
        ``after``; they also go into the chat list (where a filter shows them), wherever they are in it."""
        text = text.strip()
        if not text:
            return []
        found = await self._reads.search_chats(text, SEARCH_PAGE, after)
        self._upsert_rows(found)
        return found

    def _write_recent(self) -> None:
        """Write the chat list through to the cache; one writer, always the latest rows.

        Not before the list has been loaded in this session (``show_chats``): until then it holds only the
        rows that changes brought, and writing those would replace the saved list (which the next start,
        maybe offline, shows) with a few rows or none. The write then follows the first load.
        """
        self._recent_dirty = True
        if not self._shown_ticket:
            return
        if self._recent_writer is None or self._recent_writer.done():
            self._recent_writer = self._tasks.spawn(self._recent_writer_loop(), "write-recent")

    async def _recent_writer_loop(self) -> None:
        while self._recent_dirty:
            self._recent_dirty = False
            # The loaded pages only: rows below the frontier (search results) would leave a hole that the next
            # start, which pages on from the cached rows, could never fill.
            frontier = self._frontier
            rows = [row for row in self.chat_list.rows if self._above_frontier(row, frontier)]
            await self._cache.set_recent(self._me, rows)

    # --- timelines ---------------------------------------------------------------------------------
    async def open_timeline(self, chat_id: ChatId) -> Timeline:
        timeline = self._timelines.get(chat_id)
        if timeline is None:
            timeline = new_timeline()
            self._timelines[chat_id] = timeline
        self._watch_opened(chat_id)
        # Live changes go into the timeline from now on (a detached window shown until now joins the live
        # end): whatever arrives while the newest page loads is kept by the merge below.
        self._windows[chat_id] = TimelineWindow()
        # The view shows one page. The whole window is read only to start the chat's cursor (its newest rev
        # may be on an older message that was edited); once the cursor exists, the page is enough.
        known = chat_id in self._cursors
        window = await self._reads.message_window(chat_id, PAGE if known else None)
        self._ensure_cursor(chat_id, window)
        self._show_newest(chat_id, timeline, window[-PAGE:])
        self._backfill_unless_current(chat_id)
        return timeline

    def _watch_opened(self, chat_id: ChatId) -> None:
        """The chat is opened: its topics are held from now on (the most recently opened first)."""
        self._recently_opened = [chat_id, *(c for c in self._recently_opened if c != chat_id)][:RECENT_KEPT]
        self._update_watch()

    def _backfill_unless_current(self, chat_id: ChatId) -> None:
        # The window may come from a cache written in an earlier run, or the chat may have changed while its
        # topics were not held: catch up on what changed since, unless the chat is known to be complete.
        if not self.is_current(chat_id):
            self._tasks.spawn(self.backfill_chat(chat_id), "backfill-on-open")

    def _show_newest(self, chat_id: ChatId, timeline: Timeline, page: Sequence[Message]) -> None:
        """Show ``page`` (the newest messages, ascending) and this user's unsent ones: the live end."""
        oldest = page[0].seq if page else None
        self._windows[chat_id] = TimelineWindow(oldest, None)
        self._has_older[chat_id] = bool(oldest and oldest > 1)
        rows: dict[MessageId, Message] = {m.id: m for m in page}
        for local in self._pending.unsent(chat_id):
            rows.setdefault(local.id, local)
        # Keep rows a live change already brought in that are newer than the window's copy.
        for existing in timeline.rows:
            kept = newer_message(rows.get(existing.id), existing)
            if kept is not None and (oldest is None or (existing.seq or 0) >= oldest or existing.seq is None):
                rows[existing.id] = kept
        timeline.reset(rows.values())

    async def open_timeline_at(self, chat_id: ChatId, seq: int) -> Timeline:
        """Make the chat's timeline hold the message ``seq`` with ``JUMP_CONTEXT`` messages on each side.

        When the cached newest window holds it, the timeline is the live end shown down to it. Otherwise it
        is a *detached* window read from Supabase: never cached, never the cursor's start (that is always
        the newest window, read here too), not given live messages beyond its newest (``load_newer`` pages
        down to them, ``open_timeline`` jumps to them).
        """
        if seq < 1:
            raise InvalidInput("Messages are numbered from 1.")
        timeline = self._timelines.get(chat_id)
        if timeline is None:
            timeline = new_timeline()
            self._timelines[chat_id] = timeline
        self._watch_opened(chat_id)
        newest = await self._reads.message_window(chat_id)
        self._ensure_cursor(chat_id, newest)
        seqs = [m.seq for m in newest if m.seq is not None]
        if newest_window_holds(seq, seqs[0] if seqs else None, seqs[-1] if seqs else None):
            self._windows[chat_id] = TimelineWindow()
            self._show_newest(chat_id, timeline, [m for m in newest if (m.seq or 0) >= seq - JUMP_CONTEXT])
        else:
            # Live changes wait while the window loads: should it reach the newest message after all, what
            # arrived meanwhile goes into it next, not into a window that was still detached.
            async with self._apply_lock:
                # Both halves at once: two round trips in the time of one.
                older, newer = await asyncio.gather(
                    self._reads.messages(chat_id, before_seq=seq + 1, limit=JUMP_CONTEXT + 1),
                    self._reads.messages_after(chat_id, seq, JUMP_CONTEXT),
                )
                if self._timelines.get(chat_id) is not timeline:
                    return timeline  # closed meanwhile
                window = window_around(
                    seq,
                    tuple(m.seq for m in older.messages if m.seq is not None),
                    tuple(m.seq for m in newer.messages if m.seq is not None),
                    newer_has_more=newer.has_more,
                )
                rows = [*older.messages, *newer.messages]
                if window.at_live_end:
                    rows += [m for m in self._pending.unsent(chat_id) if all(r.id != m.id for r in rows)]
                self._windows[chat_id] = window
                self._has_older[chat_id] = older.has_more
                timeline.reset(rows)
        self._backfill_unless_current(chat_id)
        return timeline

    def has_newer(self, chat_id: ChatId) -> bool:
        """Whether the timeline is a detached window: newer messages exist beyond its last row."""
        window = self._windows.get(chat_id)
        return window is not None and not window.at_live_end

    async def load_newer(self, chat_id: ChatId) -> int:
        """Append the next newer page to a detached window; returns how many rows came. The page that
        reaches the newest message puts the window back at the live end (with this user's unsent messages).
        """
        timeline = self._timelines.get(chat_id)
        window = self._windows.get(chat_id)
        if timeline is None or window is None or window.newest is None:
            return 0
        # Live changes wait while the page loads, so none falls between the page and the window joining.
        async with self._apply_lock:
            page = await self._reads.messages_after(chat_id, window.newest, PAGE)
            if self._timelines.get(chat_id) is not timeline or self._windows.get(chat_id) != window:
                return 0  # closed, or jumped elsewhere, meanwhile
            last = page.messages[-1].seq if page.messages else None
            joined = window.after_newer_page(last, page.has_more)
            self._windows[chat_id] = joined
            with timeline.batch():
                for message in page.messages:
                    kept = newer_message(timeline.get(message.id), message)
                    if kept is not None:
                        timeline.upsert(kept)
                if joined.at_live_end:
                    for local in self._pending.unsent(chat_id):
                        if timeline.get(local.id) is None:
                            timeline.upsert(local)
            return len(page.messages)

    def close_timeline(self, chat_id: ChatId) -> None:
        if self._timelines.pop(chat_id, None) is not None:
            self._update_watch()
        self._windows.pop(chat_id, None)
        self._has_older.pop(chat_id, None)

    def has_older(self, chat_id: ChatId) -> bool:
        return self._has_older.get(chat_id, False)

    async def load_older(self, chat_id: ChatId) -> int:
        timeline = self._timelines.get(chat_id)
        window = self._windows.get(chat_id)
        oldest = window.oldest if window is not None else None
        if timeline is None or not oldest or oldest <= 1:
            return 0
        page = await self._reads.messages(chat_id, before_seq=oldest, limit=PAGE)
        if self._timelines.get(chat_id) is not timeline:
            return 0  # closed meanwhile
        timeline.upsert_many(page.messages)
        current = self._windows.get(chat_id, TimelineWindow())
        self._windows[chat_id] = current.after_older_page(page.messages[0].seq if page.messages else None)
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

    # --- this user's pending messages (the sender's lifecycle events) -------------------------------
    def on_pending(self, event: PendingEvent) -> None:
        """Show what the sender announces. The server's answer to a send goes to the views, and into the
        cache only when it is next in rev order (``_write_sent``): the cache takes changes in rev order, and
        the answer may be ahead of changes realtime has not delivered yet (then the realtime echo of this
        very row, or a back-fill, brings it there)."""
        match event:
            case Submitted(message) | Retried(message) | Failed(message):
                self._show_local(message)
                self._show_waiting(message.chat_id)
            case Sent(message):
                self._show_messages({message.chat_id: [message]}, from_stream=False)
                self._write_recent()
                self._tasks.spawn(self._write_sent(message), "write-sent")
            case Discarded(message):
                self._forget_local(message.chat_id, message.id)
                self._show_waiting(message.chat_id)
            case _:
                pass  # Sending and Confirmed change nothing on screen

    async def _write_sent(self, message: Message) -> None:
        """Write our sent message through to the cache when it is the chat's next change: its ``rev`` follows
        the cursor, with no gap, so every earlier change is in the cache already and nothing can lie between.

        Otherwise only the change stream may write it (in rev order). Without this, a message sent just
        before the app closes, whose echo had not arrived yet, would be missing from the history that the
        next start shows from the cache (offline, until a back-fill).
        """
        async with self._apply_lock:  # after the changes being applied now, which may move the cursor
            cursor = self._cursors.get(message.chat_id)
            if cursor is None or cursor.has_gap or message.seq is None or message.rev != cursor.value + 1:
                return
            # The cursor stays: the echo still moves it (and confirms the row); appending it again is a no-op.
            await self._cache.append_messages(self._me, message.chat_id, [message])

    def _show_waiting(self, chat_id: ChatId) -> None:
        row = self.chat_list.get(chat_id)
        if row is not None:
            updated = self._with_waiting(row)
            if updated is not row:
                self.chat_list.upsert(updated)

    def _with_waiting(self, row: ChatSummary) -> ChatSummary:
        """The row with this user's newest message that is not on the server yet, if any (the list shows it
        as its preview, and the chat moves up as it would once the message is sent)."""
        unsent = self._pending.unsent(row.chat.id)
        waiting = max(unsent, key=lambda message: message.created_at) if unsent else None
        if waiting == row.waiting:
            return row
        return row.model_copy(update={"waiting": waiting})

    def _show_local(self, message: Message) -> None:
        """A pending or failed row of ours: shown until the confirmed row replaces it."""
        timeline = self._timelines.get(message.chat_id)
        if timeline is not None and self._windows.get(message.chat_id, TimelineWindow()).at_live_end:
            current = timeline.get(message.id)
            if current is None or current.rev is None:
                timeline.upsert(message)

    def _forget_local(self, chat_id: ChatId, message_id: MessageId) -> None:
        timeline = self._timelines.get(chat_id)
        if timeline is not None:
            current = timeline.get(message_id)
            if current is not None and current.rev is None:
                timeline.remove(message_id)

    # --- reading position --------------------------------------------------------------------------
    def mark_read_locally(self, chat_id: ChatId, seq: int) -> bool:
        row = self.chat_list.get(chat_id)
        if row is None or seq <= row.last_read_seq:
            return False
        self._read_floor[chat_id] = max(seq, self._read_floor.get(chat_id, 0))
        self.chat_list.upsert(summary_read_up_to(row, seq, self._unread_after(row, seq)))
        self._write_recent()
        return True

    def read_confirmed(self, chat_id: ChatId, seq: int) -> None:
        """The server has the read position ``seq`` (or refused it): loads may show their own again."""
        if self._read_floor.get(chat_id, 0) <= seq:
            self._read_floor.pop(chat_id, None)

    def _unread_after(self, row: ChatSummary, seq: int) -> int:
        timeline = self._timelines.get(row.chat.id)
        if seq >= row.chat.last_seq:
            return 0
        if timeline is not None and self._windows.get(row.chat.id, TimelineWindow()).at_live_end:
            return unread_after(timeline.rows, seq, self._me)
        # Without the messages, at most what lies beyond the new position (some may be our own).
        return min(row.unread_count, row.chat.last_seq - seq)

    def _with_read_floor(self, summary: ChatSummary) -> ChatSummary:
        floor = self._read_floor.get(summary.chat.id)
        if floor is None:
            return summary
        if summary.last_read_seq >= floor:
            self._read_floor.pop(summary.chat.id, None)  # the server caught up
            return summary
        return summary_read_up_to(summary, floor, self._unread_after(summary, floor))

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
            task = self._tasks.spawn(self.apply_now(events), "apply-changes")
            self._applying.add(task)
            task.add_done_callback(self._applying.discard)

    async def apply_now(self, events: Sequence[ChangeEvent]) -> None:
        """Apply changes now, as realtime brings them (in commit order)."""
        async with self._apply_lock:
            await self._apply(events, realtime=True)

    async def _apply(self, events: Sequence[ChangeEvent], *, realtime: bool) -> None:
        """Apply ``events`` in order, ``APPLY_SLICE`` at a time, giving the event loop back between slices.

        A back-fill page (up to ``BACKFILL_BATCH`` messages) or the pushes that piled up while the process
        waited for a core, applied at once, keep the loop busy for tens of milliseconds: reducing them,
        sealing each message for the cache and updating the views. In slices, a paint or a keystroke waits
        for one slice at most. The caller holds ``_apply_lock``, so nothing else is applied in between and the
        slices land in order, each change once, exactly as if the frame had cut the stream there.
        """
        for start in range(0, len(events), APPLY_SLICE):
            if start:
                await asyncio.sleep(0)
            await self._apply_slice(events[start : start + APPLY_SLICE], realtime=realtime)

    async def _apply_slice(self, events: Sequence[ChangeEvent], *, realtime: bool) -> None:
        batch = reduce(events, ChangeBatch(self._me, self, self._cursors, realtime=realtime))
        # The chat-list rows go in at once: they were reduced from the list as it is now, and the list may
        # change while the cache is written (the answer to a send, say), which they must not overwrite.
        if batch.rows:
            with self.chat_list.batch():
                for row in batch.rows.values():
                    self.chat_list.upsert(row)
        await write_cache(batch, self._cache)
        self._show(batch)

    def _show(self, batch: ChangeBatch) -> None:
        self._show_messages(batch.messages, from_stream=True)
        for message in batch.notify:
            self._on_incoming(message)
        for chat_id in batch.drop:
            self._drop_views(chat_id)
        if batch.messages or batch.forget_details or batch.rows:
            self._write_recent()
        if batch.reload_list:
            self._tasks.spawn(self.reload_chats(), "reload-chats")
        if batch.gaps:
            self._gap_chats.update(batch.gaps)
            if self._gap_task is None or self._gap_task.done():
                self._gap_task = asyncio.get_running_loop().create_task(self._close_gaps())

    def _show_messages(self, by_chat: Mapping[ChatId, Sequence[Message]], *, from_stream: bool) -> None:
        """Messages into the open timelines and the chat list; ``from_stream``: they came through the
        ordered change stream, which confirms this user's sent ones."""
        me = self._me
        with self.chat_list.batch():
            for chat_id, incoming in by_chat.items():
                row = self.chat_list.get(chat_id)
                timeline = self._timelines.get(chat_id)
                window = self._windows.get(chat_id, TimelineWindow())
                if timeline is not None:
                    with timeline.batch():
                        for message in incoming:
                            if not window.holds(message.seq) and timeline.get(message.id) is None:
                                # Older than what the view has loaded, or beyond a detached window (it is in
                                # the cache and the chat list; paging down or Ctrl+End brings it).
                                continue
                            kept = newer_message(timeline.get(message.id), message)
                            if kept is not None:
                                timeline.upsert(kept)
                if from_stream:
                    self._pending.confirm(incoming)
                if row is None:
                    continue
                for message in sorted(incoming, key=lambda m: m.seq or 0):
                    # New to this row: beyond the newest message it showed. (Not beyond chat.last_seq: the
                    # chat row's update, which moves that counter, is pushed before the message itself.)
                    known = row.last_message.seq if row.last_message is not None else None
                    row = summary_with_message(row, message, me)
                    if (
                        message.seq is not None
                        and message.seq > (known or 0)
                        and message.sender_id != me
                        and not message.deleted
                    ):
                        self._on_incoming(message)
                self.chat_list.upsert(self._with_waiting(row))

    async def drop_chat(self, chat_id: ChatId) -> None:
        """The chat is gone for this user (left, removed, deleted): out of every view and the cache."""
        await self._cache.invalidate_chat(self._me, chat_id)
        self._drop_views(chat_id)

    def _drop_views(self, chat_id: ChatId) -> None:
        self.chat_list.remove(chat_id)
        timeline = self._timelines.get(chat_id)
        if timeline is not None:
            timeline.reset([])
        self.close_timeline(chat_id)
        self._cursors.pop(chat_id, None)
        self._checked.pop(chat_id, None)
        self._recently_opened = [c for c in self._recently_opened if c != chat_id]
        self._write_recent()
        self._update_watch()

    # --- back-fill and the consistency probe -------------------------------------------------------
    async def _close_gaps(self) -> None:
        await asyncio.sleep(GAP_GRACE)  # realtime usually closes the gap by itself within this time
        while self._gap_chats:
            chats = [chat_id for chat_id in self._gap_chats if (c := self._cursors.get(chat_id)) and c.has_gap]
            self._gap_chats.clear()
            with contextlib.suppress(BackendUnavailable):
                await self.backfill_chats(chats)

    async def backfill_all(self) -> None:
        """After every subscribe: read the loaded chat list again, and fetch the changes of every chat with a
        cursor in one call (the server skips chats that did not move, and names those that went)."""
        await self.reload_chats()
        # Chats whose window is cached (maybe by an earlier run) get a cursor, so they catch up too.
        for chat_id in await self._cache.cached_chats(self._me):
            if chat_id not in self._cursors:
                cached = await self._cache.get_messages(self._me, chat_id)
                if cached is not None:
                    self._ensure_cursor(chat_id, cached.value)
        await self.backfill_chats(list(self._cursors), drop_gone=True)

    async def check_consistency(self) -> int:
        """Compare the newest ``rev`` of every chat on the chat list's first page (one read) with this
        client's, and repair what differs: rows that changed are shown, chats whose cursor is behind are
        back-filled, and so are chats with a cursor that are not on that page (the back-fill call skips the
        ones that did not move, and names those the user can no longer see, which go). When the first page
        is the whole list, a listed chat missing from it is gone. Returns how many changes the back-fill
        brought."""
        ticket = self._list_tickets
        rows = await self._reads.load_chat_list(self._chat_page)
        complete = len(rows) < self._chat_page
        changed = False
        with self.chat_list.batch():
            for server in rows:
                current = self.chat_list.get(server.chat.id)
                row = summary_from_server(current, server)
                if row is not None:
                    row = self._with_waiting(self._with_read_floor(row))
                if row is not None and row != current:
                    self.chat_list.upsert(row)
                    changed = True
        if complete and ticket == self._list_tickets:  # no load began meanwhile (a chat just created)
            listed = {row.chat.id for row in rows}
            for gone in [row.chat.id for row in self.chat_list.rows if row.chat.id not in listed]:
                await self.drop_chat(gone)
        if changed:
            self._write_recent()
            self._update_watch()
        return await self.backfill_chats(self._behind(rows, complete), drop_gone=True)

    def _behind(self, rows: Iterable[ChatSummary], complete: bool) -> list[ChatId]:
        """The chats with a cursor that the server's rows show newer changes for, or that the rows do not
        show (unless they are the whole list: then those chats are gone, and were dropped)."""
        newest = {row.chat.id: row.chat.last_rev for row in rows}
        behind = []
        for chat_id, cursor in self._cursors.items():
            rev = newest.get(chat_id)
            if (rev is None and not complete) or (rev is not None and rev > cursor.value):
                behind.append(chat_id)
        return behind

    async def backfill_chat(self, chat_id: ChatId) -> int:
        """Apply every change of the chat above its cursor. Returns how many rows came."""
        return await self.backfill_chats([chat_id])

    async def backfill_chats(self, chat_ids: Iterable[ChatId], *, drop_gone: bool = False) -> int:
        """Apply every change above the cursors of these chats, asked for all at once (``changes_since``:
        one round trip for up to ``BACKFILL_CHATS`` chats and ``BACKFILL_BATCH`` messages; chats with more
        are asked again). ``drop_gone``: chats the user can no longer see leave the views and the cache.
        Returns how many rows came."""
        total = 0
        todo = list(dict.fromkeys(chat_id for chat_id in chat_ids if chat_id in self._cursors))
        asked = list(todo)
        epoch = self._link_epoch if self._link_live else None  # a back-fill begun on a live link
        while todo:
            batch, todo = todo[:BACKFILL_CHATS], todo[BACKFILL_CHATS:]
            cursors = {chat_id: cursor.value for chat_id in batch if (cursor := self._cursors.get(chat_id)) is not None}
            if not cursors:
                continue
            changes = await self._reads.changes_since_many(cursors, BACKFILL_BATCH)
            # In seq order within each chat: the cache appends each slice of ``_apply`` on its own, and a slice
            # holding seq 12 before the one holding an edited seq 11 would look like a gap to it.
            rows = [m for change in changes for m in sorted(change.messages, key=lambda m: m.seq or 0)]
            if rows:
                async with self._apply_lock:
                    await self._apply([MessageUpserted(message=m) for m in rows], realtime=False)
            again = []
            for change in changes:
                cursor = self._cursors.get(change.chat_id)
                if change.gone:
                    if drop_gone:
                        await self.drop_chat(change.chat_id)
                    continue
                if change.messages and cursor is not None:
                    cursor.backfilled(max(m.rev or 0 for m in change.messages))
                if change.more:
                    again.append(change.chat_id)
            total += len(rows)
            todo = again + todo
        if epoch is not None and epoch == self._link_epoch:
            for chat_id in asked:
                if chat_id in self._cursors:
                    self._checked[chat_id] = epoch
        return total
