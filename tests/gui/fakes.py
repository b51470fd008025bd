"""``FakeChatStore``: an in-memory ``ChatStoreAPI`` for widget tests, screenshots and GUI benchmarks.

``tests/contract/test_chat_store.py`` holds it to the real store's behaviour and wording: whatever the
contract checks, the fake does as ``desktop_chat.dal.chat_store.ChatStore`` does over the real stack.

It keeps what a server would keep (accounts, chats, members, numbered history) and what the real store
shows the UI (the recent-chats ``LiveList``, one timeline per opened chat, the status), and lets a test
script everything the network would decide: when a pending message is delivered or refused, what the
next call fails with, when a call is allowed to finish, who is typing, what arrives from others.

History can be synthetic: a chat made with ``history=100_000`` produces its messages on demand from their
``seq``, so a benchmark chat costs memory only for the pages actually loaded.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from desktop_chat.dal.api import (
    SEARCH_PAGE,
    CacheStatus,
    CacheUsage,
    ChatList,
    ConnectionState,
    MessageListener,
    MessageSearch,
    ReactionsListener,
    ReadsListener,
    SessionEndedListener,
    StatusListener,
    StoreStatus,
    Timeline,
    UsersListener,
    new_chat_list,
    new_timeline,
)
from desktop_chat.dal.live_list import Unsubscribe
from desktop_chat.dal.local_search import search_cached
from desktop_chat.errors import DesktopChatError, InvalidInput, NotSignedIn, Rejected, Unauthorized
from desktop_chat.models import (
    Chat,
    ChatDetails,
    ChatId,
    ChatListKey,
    ChatMember,
    ChatSummary,
    DeliveryState,
    MemberPage,
    MemberRole,
    Message,
    MessageId,
    MessagePage,
    MessageReactions,
    Profile,
    ReactionCount,
    ReactionDetail,
    Reactor,
    ReadState,
    SearchCursor,
    ShownReaction,
    UserId,
    new_chat_id,
    new_message_id,
    shown_reactions,
    validate_display_name,
    validate_emoji,
    validate_message_text,
    validate_search_text,
    validate_title,
)

PASSWORD = "password123"

_SENTENCES = (
    "Morning! Did the build go green overnight?",
    "Yes, all three pipelines passed.",
    "I pushed the migration for the read markers, can someone review it today?",
    "Looking now.",
    "The cache hit rate after the warm-up is around 94 %, better than I expected.",
    "Nice. What happens when Redis goes away in the middle of a burst?",
    "Reads fall back to the in-process tier and the status bar says memory only; nothing else changes.",
    "Lunch at 12:30?",
    "Sounds good, see you there.",
    "Heads-up: the staging database restarts at 17:00 for the upgrade, writes will queue for a few minutes "
    "and go out afterwards, nothing to do on your side.",
    "+1",
    "Could you send me the numbers from yesterday's benchmark run when you get a moment? I want to put them in "
    "the weekly summary next to the ones from last month so we can see whether the outbox change helped.",
    "On it.",
    "Thanks!",
)


def stable_id(*parts: object) -> UUID:
    """A UUID derived from ``parts``, so fixtures and screenshots look the same on every run."""
    return uuid5(NAMESPACE_URL, "desktop-chat-fake:" + "/".join(str(part) for part in parts))


@dataclass
class _Account:
    profile: Profile
    email: str
    password: str


@dataclass
class _Chat:
    session: Chat
    members: dict[UserId, ChatMember]
    explicit: dict[int, Message] = field(default_factory=dict)  # seq -> message, overrides synthetic ones
    synthetic: int = 0  # messages 1..synthetic exist without being stored
    synthetic_senders: tuple[UserId, ...] = ()
    # message -> emoji -> who reacted, in the order of first use (what message_reactions would hold)
    reactions: dict[MessageId, dict[str, list[UserId]]] = field(default_factory=dict)


class FakeChatStore:
    """An in-memory ``ChatStoreAPI``; see the module docstring.

    Args:
        auto_deliver: Deliver each sent (or retried) message on the next loop iteration, like a healthy
            network. Off by default so that tests decide with ``deliver`` and ``reject``.
        now: The clock for new messages (UTC).
        page_size: Messages per page for ``open_chat`` and ``load_older``.
        chat_page: Chat-list rows per page (``refresh_chats`` shows the first, ``load_more_chats`` the next).
    """

    def __init__(
        self,
        *,
        auto_deliver: bool = False,
        now: Callable[[], datetime] | None = None,
        page_size: int = 50,
        chat_page: int = 100,
    ) -> None:
        self.auto_deliver = auto_deliver
        self.page_size = page_size
        self.chat_page = chat_page
        self._now = now or (lambda: datetime.now(UTC))
        self._accounts: dict[str, _Account] = {}
        self._current: Profile | None = None
        self.saved_session: Profile | None = None  # what restore_session finds "in the keyring"
        self._status = StoreStatus(connection=ConnectionState.LIVE, cache=CacheStatus.ONLINE)
        self._status_listeners: list[StatusListener] = []
        self._ended_listeners: list[SessionEndedListener] = []
        self._typing_listeners: list[UsersListener] = []
        self._presence_listeners: list[UsersListener] = []
        self._incoming_listeners: list[MessageListener] = []
        self._reaction_listeners: list[ReactionsListener] = []
        self._read_listeners: list[ReadsListener] = []
        # Reaction toggles not delivered yet: (chat, message, emoji) -> wanted; the last toggle wins.
        self._reaction_ops: dict[tuple[ChatId, MessageId, str], bool] = {}
        self.reaction_requests: list[tuple[str, MessageId, str]] = []  # what reached the "server"
        self._chat_list: ChatList = new_chat_list()
        self._list_frontier: ChatListKey | None = None  # the last row of the last page shown
        self._list_done = False
        self._chats: dict[ChatId, _Chat] = {}
        self._timelines: dict[ChatId, Timeline] = {}
        self._lowest_loaded: dict[ChatId, int] = {}
        self._newest_loaded: dict[ChatId, int] = {}  # chats whose timeline is a detached window
        self.jump_context = 25  # messages on each side of a message ``open_at`` jumps to
        self.search_scan = 5000  # the newest messages of each chat the search scans (synthetic ones abound)
        self._outbox: dict[MessageId, Message] = {}
        self._failures: dict[str, list[DesktopChatError]] = {}
        self._gates: dict[str, asyncio.Event] = {}
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.first_frames_painted = 0
        self.closed = False
        self.disk_bytes = 2_600_000  # what cache_usage reports for the snapshot on disk
        self.cache_cleared = 0
        self._random = random.Random(7)
        self._samples = itertools.count()

    # --- scripting -----------------------------------------------------------------------------------
    def add_user(self, email: str, display_name: str, password: str = PASSWORD) -> Profile:
        profile = Profile(id=UserId(stable_id("user", email)), display_name=display_name)
        self._accounts[email.lower()] = _Account(profile, email.lower(), password)
        return profile

    def user(self, email: str) -> Profile:
        return self._accounts[email.lower()].profile

    def add_chat(
        self,
        title: str,
        members: Sequence[Profile],
        *,
        owner: Profile | None = None,
        history: int = 0,
        last_activity: datetime | None = None,
    ) -> ChatId:
        """Create a chat; ``history`` synthetic messages from its members, oldest first, one every 37 s."""
        owner = owner or members[0]
        created = (last_activity or self._now()) - timedelta(seconds=37 * (history + 1))
        chat_id = ChatId(stable_id("chat", title, len(self._chats)))
        session = Chat(
            id=chat_id,
            title=title,
            created_by=owner.id,
            created_at=created,
            updated_at=created,
            last_message_at=created + timedelta(seconds=37 * history) if history else None,
            last_seq=history,
            last_rev=history,
        )
        chat = _Chat(session=session, members={}, synthetic=history)
        for profile in members:
            chat.members[profile.id] = ChatMember(
                chat_id=chat_id,
                user_id=profile.id,
                role=MemberRole.OWNER if profile.id == owner.id else MemberRole.MEMBER,
                joined_at=created,
                last_read_seq=history,
                display_name=profile.display_name,
            )
        chat.synthetic_senders = tuple(profile.id for profile in members)
        self._chats[chat_id] = chat
        self._publish_summary(chat_id)
        return chat_id

    def add_message(self, chat_id: ChatId, sender: Profile, text: str, *, at: datetime | None = None) -> Message:
        """Store a confirmed message as if the server had it already (no listeners are told)."""
        chat = self._chats[chat_id]
        return self._store_confirmed(chat, sender.id, text, at or self._now())

    def set_read_position(self, chat_id: ChatId, reader: Profile, seq: int) -> None:
        """Where ``reader`` has read ``chat_id`` up to, as if it had been so on the server all along."""
        chat = self._chats[chat_id]
        chat.members[reader.id] = chat.members[reader.id].model_copy(update={"last_read_seq": seq})
        self._publish_summary(chat_id)

    def read_up_to(self, chat_id: ChatId, reader: Profile, seq: int) -> None:
        """``reader`` read ``chat_id`` up to ``seq`` on another device: the open chat hears it live."""
        self.set_read_position(chat_id, reader, seq)
        if chat_id in self._timelines:
            state = self.read_state(chat_id)
            if state is not None:
                for listener in list(self._read_listeners):
                    listener(state)

    def react(self, chat_id: ChatId, message_id: MessageId, who: Profile, emoji: str, on: bool = True) -> None:
        """``who`` adds (or takes back) a reaction; the message takes a new rev, as on the server."""
        chat = self._chats[chat_id]
        emojis = chat.reactions.setdefault(message_id, {})
        users = emojis.setdefault(emoji, [])
        if on and who.id not in users:
            users.append(who.id)
        elif not on and who.id in users:
            users.remove(who.id)
        if not users:
            del emojis[emoji]
        message = next(m for m in chat.explicit.values() if m.id == message_id)
        counts = tuple(ReactionCount(emoji=e, count=len(u)) for e, u in emojis.items() if u)
        self._replace(chat, message.model_copy(update={"reactions": counts}))
        self._announce_reactions(chat_id, [message_id])

    def deliver_reactions(self) -> None:
        """The server takes every waiting reaction toggle (each once: the last one of each key)."""
        ops, self._reaction_ops = self._reaction_ops, {}
        me = self._me()
        for (chat_id, message_id, emoji), wanted in ops.items():
            self.reaction_requests.append(("add" if wanted else "remove", message_id, emoji))
            chat = self._readable_chat(chat_id)
            message = None if chat is None else next((m for m in chat.explicit.values() if m.id == message_id), None)
            if chat is None or message is None or message.deleted:
                self._announce_reactions(chat_id, [message_id])  # refused: the wish is gone
                continue
            self.react(chat_id, message_id, me, emoji, wanted)

    def find_last(self, chat_id: ChatId) -> Message:
        """The chat's newest stored message, as it is now."""
        chat = self._chats[chat_id]
        message = self._message(chat, chat.session.last_seq)
        assert message is not None
        return message

    def chat_id(self, title: str) -> ChatId:
        """The id of the (first) chat called ``title``."""
        return next(chat_id for chat_id, chat in self._chats.items() if chat.session.title == title)

    def fail_next(self, operation: str, error: DesktopChatError) -> None:
        """Make the next call of ``operation`` (a method name) raise ``error``."""
        self._failures.setdefault(operation, []).append(error)

    def hold(self, operation: str) -> None:
        """Keep calls of ``operation`` waiting until ``release(operation)``."""
        self._gates[operation] = asyncio.Event()

    def release(self, operation: str) -> None:
        gate = self._gates.pop(operation)
        gate.set()

    def set_status(self, status: StoreStatus) -> None:
        self._status = status
        for listener in list(self._status_listeners):
            listener(status)

    def pending(self) -> list[Message]:
        """Messages in the outbox (pending or failed), in send order."""
        return list(self._outbox.values())

    def deliver(self, message_id: MessageId) -> Message:
        """The server stored a pending message: it gets its ``seq`` and becomes ``sent``."""
        queued = self._outbox.pop(message_id)
        chat = self._chats[queued.chat_id]
        sent = self._store_confirmed(
            chat, queued.sender_id, queued.content, self._now(), message_id=message_id, reply_to=queued.reply_to
        )
        self._show(sent)
        self._publish_summary(queued.chat_id)
        self._update_outbox_depth()
        return sent

    def reject(self, message_id: MessageId, reason: str) -> Message:
        """The server refused a pending message for good."""
        failed = self._outbox[message_id].model_copy(update={"delivery": DeliveryState.FAILED, "error": reason})
        self._outbox[message_id] = failed
        self._show(failed)
        self._publish_summary(failed.chat_id)
        return failed

    def receive(self, chat_id: ChatId, sender: Profile, text: str, *, reply_to: MessageId | None = None) -> Message:
        """Someone else's message arrives live."""
        chat = self._chats[chat_id]
        message = self._store_confirmed(chat, sender.id, text, self._now(), reply_to=reply_to)
        self._show(message)
        self._publish_summary(chat_id)
        for listener in list(self._incoming_listeners):
            listener(message)
        return message

    def someone_typing(self, chat_id: ChatId, users: Sequence[Profile]) -> None:
        for listener in list(self._typing_listeners):
            listener(chat_id, frozenset(profile.id for profile in users))

    def presence(self, chat_id: ChatId, users: Sequence[Profile]) -> None:
        for listener in list(self._presence_listeners):
            listener(chat_id, frozenset(profile.id for profile in users))

    def timeline(self, chat_id: ChatId) -> Timeline:
        """The timeline ``open_chat`` handed out (KeyError if it was never opened)."""
        return self._timelines[chat_id]

    def call_names(self) -> list[str]:
        return [name for name, _ in self.calls]

    # --- session -------------------------------------------------------------------------------------
    @property
    def current_user(self) -> Profile | None:
        return self._current

    async def restore_session(self) -> Profile | None:
        await self._enter("restore_session")
        if self.saved_session is not None:
            self._begin_session(self.saved_session)
        return self._current

    def first_frame_painted(self) -> None:
        self.first_frames_painted += 1  # not in ``calls``: tests compare those lists exactly

    async def sign_in(self, email: str, password: str) -> Profile:
        await self._enter("sign_in", email)
        if not email.strip() or not password:
            raise InvalidInput("Enter your email address and password.")
        account = self._accounts.get(email.strip().lower())
        if account is None or account.password != password:
            raise Unauthorized("Wrong email or password.", code="invalid_credentials")
        self._begin_session(account.profile)
        return account.profile

    async def sign_up(self, email: str, password: str, display_name: str) -> Profile:
        await self._enter("sign_up", email, display_name)
        name = validate_display_name(display_name)
        if email.strip().lower() in self._accounts:
            raise Rejected("An account with this email address already exists.", code="user_already_exists")
        if len(password) < 6:
            raise InvalidInput("That password is too weak (length); use at least 6 characters.", code="weak_password")
        profile = self.add_user(email.strip(), name, password)
        self._begin_session(profile)
        return profile

    def _begin_session(self, profile: Profile) -> None:
        """As the real store: a session has a chat list of its own (the previous one is left as it was)."""
        if self._current != profile:
            self._chat_list = new_chat_list()
            self._list_frontier = None
            self._list_done = False
        self._current = profile
        self.saved_session = profile

    async def sign_out(self) -> None:
        await self._enter("sign_out")
        self._current = None
        self.saved_session = None
        # As the real store: each session has its own chat list; the signed-out one is empty.
        self._chat_list = new_chat_list()
        self._list_frontier = None
        self._list_done = False
        self._timelines.clear()
        self.cache_cleared += 1

    def subscribe_session_ended(self, listener: SessionEndedListener) -> Unsubscribe:
        return _subscribe(self._ended_listeners, listener)

    def end_session(self, message: str) -> None:
        """As the real store when the server refuses the session: signed out, listeners told why."""
        self._current = None
        self.saved_session = None
        self._chat_list = new_chat_list()
        for listener in list(self._ended_listeners):
            listener(message)

    # --- status --------------------------------------------------------------------------------------
    @property
    def status(self) -> StoreStatus:
        return self._status

    def subscribe_status(self, listener: StatusListener) -> Unsubscribe:
        return _subscribe(self._status_listeners, listener)

    def metrics_snapshot(self) -> dict[str, Any]:
        step = next(self._samples)
        hits = 940 + step * 9
        misses = 60 + step
        return {
            "cache": {
                "tier": self._status.cache.value,
                "hits": hits,
                "misses": misses,
                "hit_rate": hits / (hits + misses),
                "redis_memory_bytes": 3_400_000 + 12_000 * step,
            },
            "latency_ms": {
                "cache": {"p50": 0.4 + 0.05 * math.sin(step / 3), "p95": 1.3 + 0.3 * math.sin(step / 5)},
                "supabase": {"p50": 38.0 + 4 * math.sin(step / 4), "p95": 112.0 + 20 * math.sin(step / 6)},
            },
            "realtime": {"lag_ms": 60 + 25 * math.sin(step / 2) + self._random.random() * 15, "reconnects": 1},
            "outbox": {"depth": self._status.outbox_depth},
            "errors": {"backend_unavailable": 2, "cache_unavailable": 0, "rejected": 1},
        }

    # --- reads ---------------------------------------------------------------------------------------
    def chat_list(self) -> ChatList:
        return self._chat_list

    async def refresh_chats(self) -> None:
        await self._enter("refresh_chats")
        page = self._page_after(None)
        self._chat_list.reset(page)
        self._after_page(page)

    async def recent_chats(self) -> list[ChatSummary]:
        await self.refresh_chats()
        return list(self._chat_list.rows)

    def has_more_chats(self) -> bool:
        return self._current is not None and not self._list_done

    async def load_more_chats(self) -> int:
        await self._enter("load_more_chats")
        self._me()
        if self._list_done:
            return 0
        page = self._page_after(self._list_frontier)
        self._chat_list.upsert_many(page)
        self._after_page(page)
        return len(page)

    async def search_chats(self, text: str, after: ChatListKey | None = None) -> list[ChatSummary]:
        await self._enter("search_chats", text, after)
        self._me()
        needle = text.strip().casefold()
        if not needle:
            return []
        found = [
            row
            for row in self._listed()
            if needle in row.chat.title.casefold() and (after is None or (key := row.list_key) is None or key < after)
        ][:SEARCH_PAGE]
        self._chat_list.upsert_many(found)
        return found

    async def chat_details(self, chat_id: ChatId) -> ChatDetails:
        await self._enter("chat_details", chat_id)
        chat = self._member_chat(chat_id)
        return ChatDetails(chat=chat.session, members=tuple(chat.members.values()), member_count=len(chat.members))

    async def chat_members(self, chat_id: ChatId, after: ChatMember | None = None, limit: int = 100) -> MemberPage:
        await self._enter("chat_members", chat_id, after, limit)
        if limit < 1:
            raise InvalidInput("A page holds at least one member.")
        chat = self._member_chat(chat_id)
        ordered = sorted(chat.members.values(), key=lambda m: (m.joined_at, str(m.user_id)))
        if after is not None:
            ordered = [m for m in ordered if (m.joined_at, str(m.user_id)) > (after.joined_at, str(after.user_id))]
        return MemberPage(
            chat_id=chat_id,
            members=tuple(ordered[:limit]),
            member_count=len(chat.members) if after is None else None,
            has_more=len(ordered) > limit,
        )

    def _listed(self) -> list[ChatSummary]:
        """Every chat of the signed-in user's that the server lists, newest activity first, with its place."""
        me = self._me()
        rows = [
            self._summary(chat_id)
            for chat_id, chat in self._chats.items()
            if me.id in chat.members and not chat.session.deleted
        ]
        return sorted(rows, key=lambda row: (row.last_activity, str(row.chat.id)), reverse=True)

    def _page_after(self, frontier: ChatListKey | None) -> list[ChatSummary]:
        rows = [row for row in self._listed() if frontier is None or (key := row.list_key) is None or key < frontier]
        return rows[: self.chat_page]

    def _after_page(self, page: Sequence[ChatSummary]) -> None:
        keys = [key for row in page if (key := row.list_key) is not None]
        if keys:
            self._list_frontier = min(keys)
        self._list_done = len(page) < self.chat_page

    async def messages(self, chat_id: ChatId, before_seq: int | None = None, limit: int = 50) -> MessagePage:
        await self._enter("messages", chat_id, before_seq, limit)
        if limit < 1:
            raise InvalidInput("A page holds at least one message.")
        chat = self._readable_chat(chat_id)
        if chat is None:
            return MessagePage(chat_id=chat_id)  # row level security: nothing to read
        top = (before_seq - 1) if before_seq is not None else chat.session.last_seq
        low = max(1, top - limit + 1)
        rows = tuple(message for seq in range(low, top + 1) if (message := self._message(chat, seq)) is not None)
        return MessagePage(chat_id=chat_id, messages=rows, has_more=low > 1)

    async def open_chat(self, chat_id: ChatId) -> Timeline:
        await self._enter("open_chat", chat_id)
        chat = self._readable_chat(chat_id)
        timeline = self._timelines.get(chat_id)
        if timeline is None or self._newest_loaded.pop(chat_id, None) is not None:
            timeline = timeline if timeline is not None else new_timeline()
            top = chat.session.last_seq if chat is not None else 0  # not a member: nothing to read
            low = max(1, top - self.page_size + 1)
            rows = [message for seq in range(low, top + 1) if (message := self._message(chat, seq)) is not None]
            rows += [message for message in self._outbox.values() if message.chat_id == chat_id]
            timeline.reset(rows)
            self._timelines[chat_id] = timeline
            self._lowest_loaded[chat_id] = low if top else 1
        return timeline

    async def open_at(self, chat_id: ChatId, seq: int) -> Timeline:
        await self._enter("open_at", chat_id, seq)
        if seq < 1:
            raise InvalidInput("Messages are numbered from 1.")
        chat = self._readable_chat(chat_id)
        timeline = self._timelines.get(chat_id)
        if timeline is None:
            timeline = self._timelines[chat_id] = new_timeline()
        top = chat.session.last_seq if chat is not None else 0
        context = self.jump_context
        low = max(1, seq - context)
        high = min(top, seq + context)
        rows = [message for n in range(low, high + 1) if (message := self._message(chat, n)) is not None]
        if chat is not None and high >= top:
            self._newest_loaded.pop(chat_id, None)  # it reaches the newest message: the live end
            rows += [message for message in self._outbox.values() if message.chat_id == chat_id]
        elif chat is not None:
            self._newest_loaded[chat_id] = high
        self._lowest_loaded[chat_id] = low
        timeline.reset(rows)
        return timeline

    def has_newer(self, chat_id: ChatId) -> bool:
        return chat_id in self._newest_loaded

    async def load_newer(self, chat_id: ChatId) -> int:
        await self._enter("load_newer", chat_id)
        newest = self._newest_loaded.get(chat_id)
        if newest is None:
            return 0
        chat = self._member_chat(chat_id)
        top = chat.session.last_seq
        high = min(top, newest + self.page_size)
        rows = [message for n in range(newest + 1, high + 1) if (message := self._message(chat, n)) is not None]
        timeline = self._timelines[chat_id]
        if high >= top:
            del self._newest_loaded[chat_id]
            rows += [message for message in self._outbox.values() if message.chat_id == chat_id]
        else:
            self._newest_loaded[chat_id] = high
        timeline.upsert_many(rows)
        return len([row for row in rows if row.seq is not None])

    async def search_messages(
        self, text: str, chat_id: ChatId | None = None, cursor: SearchCursor | None = None
    ) -> MessageSearch:
        await self._enter("search_messages", text, chat_id, cursor)
        self._me()
        validate_search_text(text)
        local = not self._status.backend_reachable
        if cursor is not None and local:
            return MessageSearch(local=True)
        chats = [chat_id] if chat_id is not None else list(self._chats)
        found: list[Message] = []
        for each in chats:
            chat = self._readable_chat(each)
            if chat is None or chat.session.deleted:
                continue
            top = chat.session.last_seq
            found += [m for n in range(max(1, top - self.search_scan + 1), top + 1) if (m := self._message(chat, n))]
        hits = search_cached(found, text, limit=10_000)
        if cursor is not None:
            hits = [hit for hit in hits if (hit.created_at, str(hit.id)) < (cursor.before_at, str(cursor.before_id))]
        page, rest = hits[:30], hits[30:]
        return MessageSearch(tuple(page), page[-1].cursor if rest and not local else None, local=local)

    def close_chat(self, chat_id: ChatId) -> None:
        self.calls.append(("close_chat", (chat_id,)))

    def catch_up(self) -> None:
        self.calls.append(("catch_up", ()))

    def has_older(self, chat_id: ChatId) -> bool:
        return self._lowest_loaded.get(chat_id, 1) > 1

    async def load_older(self, chat_id: ChatId) -> int:
        await self._enter("load_older", chat_id)
        chat = self._member_chat(chat_id)
        lowest = self._lowest_loaded.get(chat_id, 1)
        low = max(1, lowest - self.page_size)
        rows = [message for seq in range(low, lowest) if (message := self._message(chat, seq)) is not None]
        self._lowest_loaded[chat_id] = low
        self._timelines[chat_id].upsert_many(rows)
        return len(rows)

    # --- writes --------------------------------------------------------------------------------------
    async def send(self, chat_id: ChatId, text: str, reply_to: MessageId | None = None) -> MessageId:
        await self._enter("send", chat_id, text)
        me = self._me()
        validate_message_text(text)
        message = Message(
            id=new_message_id(),
            chat_id=chat_id,
            sender_id=me.id,
            content=text,
            created_at=self._now(),
            delivery=DeliveryState.PENDING,
            reply_to=reply_to,
        )
        self._outbox[message.id] = message
        self._show(message)
        self._publish_summary(chat_id)
        self._update_outbox_depth()
        if self.auto_deliver:
            asyncio.get_running_loop().call_soon(self._deliver_if_pending, message.id)
        return message.id

    async def find_message(self, chat_id: ChatId, message_id: MessageId) -> Message | None:
        await self._enter("find_message", chat_id, message_id)
        chat = self._readable_chat(chat_id)
        if chat is None:
            return None  # row level security: nothing
        return self._in_chat(chat, message_id)

    async def toggle_reaction(self, chat_id: ChatId, message_id: MessageId, emoji: str) -> bool:
        await self._enter("toggle_reaction", chat_id, message_id, emoji)
        validate_emoji(emoji)
        self._me()
        wanted = not any(r.emoji == emoji and r.mine for r in self._shown_of(chat_id, message_id))
        self._reaction_ops[(chat_id, message_id, emoji)] = wanted
        self._announce_reactions(chat_id, [message_id])
        if self.auto_deliver:
            asyncio.get_running_loop().call_soon(self.deliver_reactions)
        return wanted

    def reactions(self, chat_id: ChatId) -> Mapping[MessageId, tuple[ShownReaction, ...]]:
        timeline = self._timelines.get(chat_id)
        if timeline is None or self._current is None:
            return {}
        shown = {message.id: self._shown_of(chat_id, message.id) for message in timeline.rows}
        return {message_id: reactions for message_id, reactions in shown.items() if reactions}

    def subscribe_reactions(self, listener: ReactionsListener) -> Unsubscribe:
        return _subscribe(self._reaction_listeners, listener)

    def read_state(self, chat_id: ChatId) -> ReadState | None:
        chat = self._chats.get(chat_id)
        if chat is None or self._current is None or self._current.id not in chat.members:
            return None
        return ReadState(
            chat_id=chat_id,
            positions={user: member.last_read_seq for user, member in chat.members.items()},
            member_count=len(chat.members),
        )

    def subscribe_reads(self, listener: ReadsListener) -> Unsubscribe:
        return _subscribe(self._read_listeners, listener)

    async def retry(self, message_id: MessageId) -> None:
        await self._enter("retry", message_id)
        self._me()
        queued = self._outbox.get(message_id)
        if queued is None:
            raise InvalidInput("That message is no longer waiting to be sent.")
        if queued.delivery is DeliveryState.PENDING:
            return  # already on its way
        pending = queued.model_copy(update={"delivery": DeliveryState.PENDING, "error": None})
        self._outbox[message_id] = pending
        self._show(pending)
        self._publish_summary(pending.chat_id)
        if self.auto_deliver:
            asyncio.get_running_loop().call_soon(self._deliver_if_pending, message_id)

    async def discard(self, message_id: MessageId) -> None:
        await self._enter("discard", message_id)
        self._me()
        queued = self._outbox.pop(message_id, None)
        if queued is None:
            return  # sent or discarded already
        timeline = self._timelines.get(queued.chat_id)
        if timeline is not None:
            timeline.remove(message_id)
        self._publish_summary(queued.chat_id)
        self._update_outbox_depth()

    async def edit_message(self, message_id: MessageId, text: str) -> None:
        await self._enter("edit_message", message_id, text)
        self._me()
        validate_message_text(text)
        chat, message = self._own_confirmed(
            message_id, "Only the sender can edit a message, and not after deleting it."
        )
        self._replace(chat, message.model_copy(update={"content": text, "edited_at": self._now()}))

    async def delete_message(self, message_id: MessageId) -> None:
        await self._enter("delete_message", message_id)
        chat, message = self._own_confirmed(message_id, "Only the sender can delete a message.")
        self._replace(chat, message.model_copy(update={"content": "", "deleted_at": self._now()}))

    async def create_chat(self, title: str, member_emails: Sequence[str] = ()) -> ChatId:
        await self._enter("create_chat", title, tuple(member_emails))
        me = self._me()
        title = validate_title(title)
        others = []
        for email in dict.fromkeys(e.strip().lower() for e in member_emails if e.strip()):
            account = self._accounts.get(email)
            if account is None:
                raise InvalidInput(f"There is no account for {email}.")
            others.append(account.profile)
        now = self._now()
        chat_id = new_chat_id()
        session = Chat(id=chat_id, title=title, created_by=me.id, created_at=now, updated_at=now)
        chat = _Chat(session=session, members={})
        added = self._now()  # the others are added after the chat exists, as the real store adds them
        for profile in [me, *others]:
            chat.members[profile.id] = ChatMember(
                chat_id=chat_id,
                user_id=profile.id,
                role=MemberRole.OWNER if profile.id == me.id else MemberRole.MEMBER,
                joined_at=now if profile.id == me.id else added,
                display_name=profile.display_name,
            )
        self._chats[chat_id] = chat
        self._publish_summary(chat_id)
        return chat_id

    async def rename_chat(self, chat_id: ChatId, title: str) -> None:
        await self._enter("rename_chat", chat_id, title)
        self._me()
        clean = validate_title(title)
        chat = self._owned_chat(chat_id, "Only the chat's owners can rename it.")
        chat.session = chat.session.model_copy(update={"title": clean, "updated_at": self._now()})
        self._publish_summary(chat_id)

    async def add_member(self, chat_id: ChatId, email: str) -> None:
        await self._enter("add_member", chat_id, email)
        self._me()
        account = self._accounts.get(email.strip().lower())
        if account is None:
            raise InvalidInput(f"There is no account for {email.strip()}.")
        # Row level security refuses the insert (42501), which the backend words like this.
        chat = self._owned_chat(chat_id, "You are not allowed to do that (you may have been removed from the chat).")
        chat.members[account.profile.id] = ChatMember(
            chat_id=chat_id,
            user_id=account.profile.id,
            joined_at=self._now(),
            display_name=account.profile.display_name,
        )

    async def remove_member(self, chat_id: ChatId, user_id: UserId) -> None:
        await self._enter("remove_member", chat_id, user_id)
        if user_id == self._me().id:
            await self._leave(chat_id)
            return
        chat = self._owned_chat(chat_id, "Only the chat's owners can remove someone else.")
        chat.members.pop(user_id, None)

    async def leave_chat(self, chat_id: ChatId) -> None:
        await self._enter("leave_chat", chat_id)
        await self._leave(chat_id)

    async def _leave(self, chat_id: ChatId) -> None:
        chat = self._member_chat(chat_id)
        del chat.members[self._me().id]
        self._chat_list.remove(chat_id)

    async def delete_chat(self, chat_id: ChatId) -> None:
        await self._enter("delete_chat", chat_id)
        self._me()
        chat = self._owned_chat(chat_id, "Only the chat's owners can delete it.")
        chat.session = chat.session.model_copy(update={"deleted_at": self._now()})
        self._chat_list.remove(chat_id)

    async def mark_read(self, chat_id: ChatId, seq: int) -> None:
        await self._enter("mark_read", chat_id, seq)
        chat = self._member_chat(chat_id)
        me = self._me().id
        member = chat.members[me]
        clamped = min(max(member.last_read_seq, seq), chat.session.last_seq)
        chat.members[me] = member.model_copy(update={"last_read_seq": clamped})
        self._publish_summary(chat_id)
        state = self.read_state(chat_id)
        if chat_id in self._timelines and state is not None and clamped != member.last_read_seq:
            for listener in list(self._read_listeners):
                listener(state)

    # --- ephemeral -----------------------------------------------------------------------------------
    async def set_typing(self, chat_id: ChatId, typing: bool) -> None:
        await self._enter("set_typing", chat_id, typing)

    def subscribe_typing(self, listener: UsersListener) -> Unsubscribe:
        return _subscribe(self._typing_listeners, listener)

    def subscribe_presence(self, listener: UsersListener) -> Unsubscribe:
        return _subscribe(self._presence_listeners, listener)

    def subscribe_incoming(self, listener: MessageListener) -> Unsubscribe:
        return _subscribe(self._incoming_listeners, listener)

    # --- housekeeping --------------------------------------------------------------------------------
    async def clear_cache(self) -> None:
        await self._enter("clear_cache")
        self.cache_cleared += 1
        self.disk_bytes = 0

    async def cache_usage(self) -> CacheUsage:
        await self._enter("cache_usage")
        return CacheUsage(disk_bytes=self.disk_bytes, memory_bytes=3_400_000, keep_days=30)

    async def close(self) -> None:
        await self._enter("close")
        self.closed = True

    # --- internals -----------------------------------------------------------------------------------
    async def _enter(self, operation: str, *args: Any) -> None:
        self.calls.append((operation, args))
        gate = self._gates.get(operation)
        if gate is not None:
            await gate.wait()
        queued = self._failures.get(operation)
        if queued:
            raise queued.pop(0)

    def _me(self) -> Profile:
        if self._current is None:
            raise NotSignedIn("You are not signed in.")
        return self._current

    def _readable_chat(self, chat_id: ChatId) -> _Chat | None:
        """The chat, if row level security lets the signed-in user read it."""
        chat = self._chats.get(chat_id)
        if chat is None or self._me().id not in chat.members:
            return None
        return chat

    def _member_chat(self, chat_id: ChatId) -> _Chat:
        chat = self._readable_chat(chat_id)
        if chat is None or chat.session.deleted:
            raise Rejected("This chat does not exist or you are no longer in it.")
        return chat

    def _owned_chat(self, chat_id: ChatId, refusal: str) -> _Chat:
        chat = self._member_chat(chat_id)
        if chat.members[self._me().id].role is not MemberRole.OWNER:
            raise Rejected(refusal)
        return chat

    def _own_confirmed(self, message_id: MessageId, refusal: str) -> tuple[_Chat, Message]:
        """A sent message of the signed-in user's; else the server changes no row (``refusal``)."""
        me = self._me().id
        for chat in self._chats.values():
            for message in chat.explicit.values():
                if message.id == message_id and message.sender_id == me:
                    if message.deleted:
                        # The database's trigger refuses it (a check violation, worded by the backend).
                        raise Rejected("The server refused the data: a deleted message cannot be edited", code="23514")
                    return chat, message
        raise Rejected(refusal)

    def _replace(self, chat: _Chat, message: Message) -> None:
        chat.session = chat.session.model_copy(update={"last_rev": chat.session.last_rev + 1})
        updated = message.model_copy(update={"rev": chat.session.last_rev})
        assert updated.seq is not None
        chat.explicit[updated.seq] = updated
        self._show(updated)
        self._publish_summary(chat.session.id)

    def _message(self, chat: _Chat, seq: int) -> Message | None:
        explicit = chat.explicit.get(seq)
        if explicit is not None:
            return explicit
        if seq > chat.synthetic:
            return None
        senders = chat.synthetic_senders or (None,)
        # Runs of two or three messages per sender read more like a real conversation than alternation.
        sender = senders[(seq // 3 + seq // 7) % len(senders)]
        text = _SENTENCES[(seq * 5) % len(_SENTENCES)]  # 5 is coprime with 14: every sentence comes round
        return Message(
            id=MessageId(stable_id("message", chat.session.id, seq)),
            chat_id=chat.session.id,
            sender_id=sender,
            content=text,
            created_at=chat.session.created_at + timedelta(seconds=37 * seq),
            seq=seq,
            rev=seq,
        )

    def _store_confirmed(
        self,
        chat: _Chat,
        sender: UserId | None,
        text: str,
        at: datetime,
        *,
        message_id: MessageId | None = None,
        reply_to: MessageId | None = None,
    ) -> Message:
        seq = chat.session.last_seq + 1
        rev = chat.session.last_rev + 1
        message = Message(
            id=message_id or new_message_id(),
            chat_id=chat.session.id,
            sender_id=sender,
            content=text,
            created_at=at,
            seq=seq,
            rev=rev,
            reply_to=reply_to,
        )
        chat.explicit[seq] = message
        chat.session = chat.session.model_copy(
            update={"last_seq": seq, "last_rev": rev, "last_message_at": at, "updated_at": at}
        )
        if sender is not None and sender in chat.members:
            member = chat.members[sender]
            chat.members[sender] = member.model_copy(update={"last_read_seq": seq})
        return message

    def _in_chat(self, chat: _Chat, message_id: MessageId) -> Message | None:
        found = next((m for m in chat.explicit.values() if m.id == message_id), None)
        if found is None and chat.synthetic:
            found = next(
                (m for seq in range(1, chat.synthetic + 1) if (m := self._message(chat, seq)) and m.id == message_id),
                None,
            )
        return found

    def _shown_of(self, chat_id: ChatId, message_id: MessageId) -> tuple[ShownReaction, ...]:
        me = self._me()
        chat = self._chats.get(chat_id)
        message = None if chat is None else next((m for m in chat.explicit.values() if m.id == message_id), None)
        if chat is None or (message is not None and message.deleted):
            return ()
        names = {account.profile.id: account.profile.display_name for account in self._accounts.values()}
        emojis = chat.reactions.get(message_id, {})
        detail = MessageReactions(
            message_id=message_id,
            rev=message.rev or 0 if message is not None else 0,
            items=tuple(
                ReactionDetail(
                    message_id=message_id,
                    seq=message.seq or 1 if message is not None else 1,
                    emoji=emoji,
                    count=len(users),
                    mine=me.id in users,
                    users=tuple(Reactor(user_id=user, display_name=names.get(user)) for user in users),
                )
                for emoji, users in emojis.items()
                if users
            ),
        )
        pending = {e: wanted for (c, m, e), wanted in self._reaction_ops.items() if c == chat_id and m == message_id}
        return shown_reactions([], message.rev if message is not None else None, detail, pending, me.display_name)

    def _announce_reactions(self, chat_id: ChatId, message_ids: Sequence[MessageId]) -> None:
        if chat_id not in self._timelines or self._current is None:
            return
        shown = {message_id: self._shown_of(chat_id, message_id) for message_id in message_ids}
        for listener in list(self._reaction_listeners):
            listener(chat_id, shown)

    def _show(self, message: Message) -> None:
        timeline = self._timelines.get(message.chat_id)
        newest = self._newest_loaded.get(message.chat_id)
        beyond = newest is not None and (message.seq is None or message.seq > newest)
        if timeline is not None and not (beyond and timeline.get(message.id) is None):
            timeline.upsert(message)

    def _summary(self, chat_id: ChatId) -> ChatSummary:
        chat = self._chats[chat_id]
        me = self._me().id
        member = chat.members[me]
        last = self._message(chat, chat.session.last_seq) if chat.session.last_seq else None
        waiting = [message for message in self._outbox.values() if message.chat_id == chat_id]
        return ChatSummary(
            chat=chat.session,
            role=member.role,
            last_read_seq=member.last_read_seq,
            unread_count=max(0, chat.session.last_seq - member.last_read_seq),
            last_message=last,
            activity_at=chat.session.last_message_at or chat.session.created_at,
            waiting=max(waiting, key=lambda message: message.created_at) if waiting else None,
        )

    def _publish_summary(self, chat_id: ChatId) -> None:
        if self._current is None or self._current.id not in self._chats[chat_id].members:
            return
        if self._chat_list.get(chat_id) is not None or not self._chats[chat_id].session.deleted:
            self._chat_list.upsert(self._summary(chat_id))

    def _update_outbox_depth(self) -> None:
        status = self._status
        self.set_status(
            StoreStatus(
                connection=status.connection,
                cache=status.cache,
                outbox_depth=len(self._outbox),
                backend_reachable=status.backend_reachable,
                detail=status.detail,
            )
        )

    def _deliver_if_pending(self, message_id: MessageId) -> None:
        queued = self._outbox.get(message_id)
        if queued is None or queued.delivery is not DeliveryState.PENDING:
            return
        chat = self._chats.get(queued.chat_id)
        if chat is None or chat.session.deleted:
            self.reject(message_id, "This chat no longer exists.")
        elif queued.sender_id not in chat.members:
            self.reject(message_id, "You can no longer post in this chat.")
        elif queued.reply_to is not None and self._in_chat(chat, queued.reply_to) is None:
            self.reject(message_id, "The message you replied to is not in this chat.")
        else:
            self.deliver(message_id)


def _subscribe(listeners: list[Any], listener: Any) -> Unsubscribe:
    listeners.append(listener)

    def unsubscribe() -> None:
        if listener in listeners:
            listeners.remove(listener)

    return unsubscribe


@dataclass(frozen=True)
class Cast:
    """The people of the standard fixture: alice (signed in), bob, carol, dave."""

    alice: Profile
    bob: Profile
    carol: Profile
    dave: Profile


def populated_store(
    *,
    signed_in: bool = True,
    auto_deliver: bool = False,
    history: int = 0,
    now: datetime | None = None,
    history_ends: datetime | None = None,
) -> tuple[FakeChatStore, Cast]:
    """A store with four people and four chats (the largest, "Team", with ``history`` messages).

    Args:
        signed_in: Alice is signed in (and her session is "in the keyring").
        auto_deliver: See ``FakeChatStore``.
        history: Synthetic messages in "Team".
        now: The store's clock starts here (UTC).
        history_ends: When Team's synthetic history ends (default: ``now``).
    """
    clock_base = now or datetime(2026, 11, 26, 14, 30, tzinfo=UTC)
    ticks = itertools.count()
    # A fixed clock that advances a little with every message, so ordering never depends on wall time.
    store = FakeChatStore(auto_deliver=auto_deliver, now=lambda: clock_base + timedelta(seconds=next(ticks)))
    cast = Cast(
        alice=store.add_user("alice@example.com", "Alice Martin"),
        bob=store.add_user("bob@example.com", "Bob Chen"),
        carol=store.add_user("carol@example.com", "Carol Diaz"),
        dave=store.add_user("dave@example.com", "Dave Okafor"),
    )
    store.add_chat(
        "Team",
        [cast.alice, cast.bob, cast.carol],
        owner=cast.alice,
        history=history,
        last_activity=history_ends or clock_base,
    )
    store.add_chat(
        "Design review", [cast.alice, cast.carol], owner=cast.carol, last_activity=clock_base - timedelta(hours=3)
    )
    store.add_chat("Bob", [cast.alice, cast.bob], last_activity=clock_base - timedelta(days=1))
    store.add_chat(
        "Release 0.2", [cast.alice, cast.bob, cast.dave], owner=cast.dave, last_activity=clock_base - timedelta(days=9)
    )
    if signed_in:
        store.saved_session = cast.alice
        store._current = cast.alice
    return store, cast
