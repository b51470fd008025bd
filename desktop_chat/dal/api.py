"""The contract between the UI and the data layer: ``ChatStoreAPI`` and the status it reports.

The UI sees only this: async methods for reads and writes, ``LiveList`` views that announce row
operations, and listeners for status, typing, presence and incoming messages. Listeners are plain
callables called on the event loop's thread; the Qt bridge turns them into signals.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from desktop_chat.cache import CacheStatus
from desktop_chat.dal.live_list import LiveList, Unsubscribe
from desktop_chat.models import (
    ChatDetails,
    ChatId,
    ChatListKey,
    ChatMember,
    ChatSummary,
    MemberPage,
    Message,
    MessageId,
    MessagePage,
    Profile,
    ReadState,
    SearchCursor,
    SearchHit,
    ShownReaction,
    UserId,
)
from desktop_chat.realtime.state import ConnectionState

__all__ = [
    "SEARCH_PAGE",
    "CacheStatus",
    "CacheUsage",
    "ChatList",
    "ChatStoreAPI",
    "ConnectionState",
    "MessageListener",
    "MessageSearch",
    "ReactionsListener",
    "ReadsListener",
    "SessionEndedListener",
    "StatusListener",
    "StoreStatus",
    "Timeline",
    "UsersListener",
    "chat_list_sort_key",
    "new_chat_list",
    "new_timeline",
    "timeline_sort_key",
]

SEARCH_PAGE = 50  # matches per ``search_chats`` call; fewer means there are no more

ChatList = LiveList[ChatSummary, ChatId]
Timeline = LiveList[Message, MessageId]


def chat_list_sort_key(summary: ChatSummary) -> tuple[float, str]:
    """Most recent activity first; ties by id so the order is stable."""
    return (-summary.last_activity.timestamp(), str(summary.chat.id))


def timeline_sort_key(message: Message) -> tuple[int, float, str]:
    """Confirmed messages by server ``seq``; then pending and failed ones in local send order."""
    if message.seq is not None:
        return (0, float(message.seq), "")
    return (1, message.created_at.timestamp(), str(message.id))


def new_chat_list() -> ChatList:
    return LiveList(key=lambda summary: summary.chat.id, sort_key=chat_list_sort_key)


def new_timeline() -> Timeline:
    return LiveList(key=lambda message: message.id, sort_key=timeline_sort_key)


@dataclass(frozen=True, slots=True)
class StoreStatus:
    connection: ConnectionState = ConnectionState.OFFLINE
    cache: CacheStatus = CacheStatus.DISABLED
    outbox_depth: int = 0
    backend_reachable: bool = True  # False: what is shown comes from the cache and may be stale
    detail: str = ""  # one plain sentence on what is wrong, if anything


@dataclass(frozen=True, slots=True)
class CacheUsage:
    """What the cache takes on this computer (the settings dialog and diagnostics show it)."""

    disk_bytes: int = 0  # the snapshot the app's own Redis keeps between runs (0: none)
    memory_bytes: int | None = None  # Redis's used memory, or the in-process tier's when Redis is not used
    keep_days: float = 0  # how long an entry stays usable (offline too) after its TTL


@dataclass(frozen=True, slots=True)
class MessageSearch:
    """One page of a message search (``ChatStoreAPI.search_messages``).

    Attributes:
        hits: Newest first; each ``snippet`` marks its matches with ``SNIPPET_START``/``SNIPPET_END``.
        next_cursor: Pass it back for the next page (None: this was the last).
        local: The server could not be reached, so this searched only the messages cached on this
            computer (the newest ones of recently opened chats); the UI says so.
    """

    hits: tuple[SearchHit, ...] = ()
    next_cursor: SearchCursor | None = None
    local: bool = False


StatusListener = Callable[[StoreStatus], None]
UsersListener = Callable[[ChatId, frozenset[UserId]], None]
MessageListener = Callable[[Message], None]
# A chat's messages whose reactions changed, each with what to show now (an empty tuple: none).
ReactionsListener = Callable[[ChatId, Mapping[MessageId, tuple[ShownReaction, ...]]], None]
ReadsListener = Callable[[ReadState], None]


SessionEndedListener = Callable[[str], None]


class ChatStoreAPI(Protocol):
    """Everything the UI may ask of the data layer.

    Signed out, reads and writes raise ``NotSignedIn``; ``chat_list`` is empty, ``has_older`` and
    ``has_more_chats`` are False, ``close_chat``, ``catch_up`` and ``set_typing`` do nothing. Refusals are
    ``InvalidInput`` (before anything is sent) or ``Rejected`` (the server said no), in plain words;
    ``tests/contract/test_chat_store.py`` pins them. The UI never closes the store: whoever built it does.
    """

    # --- signing in and out -------------------------------------------------------------------------
    @property
    def current_user(self) -> Profile | None: ...

    async def restore_session(self) -> Profile | None:
        """Sign in again from the refresh token in the keyring, if there is one."""
        ...

    def first_frame_painted(self) -> None:
        """The UI has painted its first window: what was held back for it (building the server client and
        importing its libraries) may go ahead now. Idempotent."""
        ...

    async def sign_in(self, email: str, password: str) -> Profile: ...

    async def sign_up(self, email: str, password: str, display_name: str) -> Profile: ...

    async def sign_out(self) -> None:
        """End the session and clear this user's cache (the outbox keeps unsent messages)."""
        ...

    def subscribe_session_ended(self, listener: SessionEndedListener) -> Unsubscribe:
        """Call ``listener`` with a sentence for the sign-in window when the server ends the session by
        itself (the saved session was refused after the window showed it, or a refresh was refused). The
        store is signed out by then; the outbox and the cache are kept."""
        ...

    # --- status ------------------------------------------------------------------------------------
    @property
    def status(self) -> StoreStatus: ...

    def subscribe_status(self, listener: StatusListener) -> Unsubscribe: ...

    def metrics_snapshot(self) -> dict[str, Any]:
        """Current figures for the diagnostics window and ``desktop-chat doctor``, as nested dicts.

        Any keys may be added; the diagnostics window lists them all. Its headline figures come from the
        telemetry registry's snapshot under ``"metrics"`` (``cache.hits``/``cache.misses`` counters,
        ``cache.latency_seconds`` and ``supabase.latency_seconds`` histograms,
        ``cache.redis.used_memory_bytes`` gauge, ``errors`` counters), ``status.outbox_depth``,
        ``realtime.reconnects`` and ``realtime.lag_ms``; or from the plain keys ``cache.hit_rate`` (0..1),
        ``latency_ms.{cache,supabase}.{p50,p95}``, ``cache.redis_memory_bytes``, ``outbox.depth``,
        ``errors`` (counts by kind). Missing figures show as "—".
        """
        ...

    # --- reads -------------------------------------------------------------------------------------
    def chat_list(self) -> ChatList:
        """The live chat list, newest activity first: its first page by ``refresh_chats``, the next ones by
        ``load_more_chats``, search results by ``search_chats``; kept current by events."""
        ...

    async def refresh_chats(self) -> None: ...

    async def recent_chats(self) -> list[ChatSummary]:
        """The chat list's rows as loaded so far (the first page, or what the cache holds)."""
        ...

    def has_more_chats(self) -> bool:
        """Whether the chat list may hold chats below its last page (``load_more_chats`` brings them)."""
        ...

    async def load_more_chats(self) -> int:
        """Add the next page of chats below the loaded ones to ``chat_list``; returns how many came (0 at the
        end of the list)."""
        ...

    async def search_chats(self, text: str, after: ChatListKey | None = None) -> list[ChatSummary]:
        """The user's chats whose title contains ``text`` (any case), out of *all* of them, not only the
        loaded ones; newest activity first, ``SEARCH_PAGE`` at most, below ``after`` (the last match of the
        page before). They are also put into ``chat_list``, so that a filter over it shows them and they
        open like any listed chat."""
        ...

    async def chat_details(self, chat_id: ChatId) -> ChatDetails:
        """The chat, its member count and the members its view names (all of them in a small chat; the
        first ones and the recent senders in a big one)."""
        ...

    async def chat_members(self, chat_id: ChatId, after: ChatMember | None = None, limit: int = 100) -> MemberPage:
        """The chat's members in joining order, ``limit`` after ``after`` (the last of the page before);
        the first page also counts them."""
        ...

    async def messages(self, chat_id: ChatId, before_seq: int | None = None, limit: int = 50) -> MessagePage: ...

    async def open_chat(self, chat_id: ChatId) -> Timeline:
        """Make ``chat_id`` the active chat and return its live timeline, newest page loaded."""
        ...

    def close_chat(self, chat_id: ChatId) -> None: ...

    def catch_up(self) -> None:
        """Check with the server now that nothing was missed (the window came back to the front), rather
        than at the next round of the periodic check. Returns at once."""
        ...

    def has_older(self, chat_id: ChatId) -> bool:
        """Whether messages older than the timeline's first row exist."""
        ...

    async def load_older(self, chat_id: ChatId) -> int:
        """Prepend the next older page to the timeline; returns how many rows came."""
        ...

    async def open_at(self, chat_id: ChatId, seq: int) -> Timeline:
        """Make ``chat_id`` the active chat with its timeline holding message ``seq`` and some messages on
        each side, however old it is (a search result, a quoted reply). The same ``Timeline`` object as
        ``open_chat``'s. Unless the newest messages are near it, the timeline is then a *detached window*:
        ``has_newer`` is True, live messages beyond it wait (they are not lost: ``load_newer`` pages down
        to them and ``open_chat`` jumps to the newest), and the window is never cached as the newest."""
        ...

    def has_newer(self, chat_id: ChatId) -> bool:
        """Whether the timeline is a detached window with newer messages beyond its last row."""
        ...

    async def load_newer(self, chat_id: ChatId) -> int:
        """Append the next newer page to a detached window; returns how many rows came. When the page
        reaches the newest message the window joins the live end (``has_newer`` turns False, live messages
        and this user's unsent ones come into it again)."""
        ...

    async def search_messages(
        self, text: str, chat_id: ChatId | None = None, cursor: SearchCursor | None = None
    ) -> MessageSearch:
        """Messages containing every word of ``text`` (each as a prefix; see the search migration), newest
        first, in ``chat_id`` or in all of the user's chats; ``cursor`` asks for the next page. Text over
        ``MAX_SEARCH_CHARS`` is ``InvalidInput``; blank text finds nothing. When the server cannot be
        reached, the messages cached on this computer are searched instead (``MessageSearch.local``)."""
        ...

    # --- writes ------------------------------------------------------------------------------------
    async def send(self, chat_id: ChatId, text: str, reply_to: MessageId | None = None) -> MessageId:
        """Validate, persist to the outbox, show as pending; delivery continues in the background.

        ``reply_to``: the message of the same chat this one answers (kept in the outbox with the text, so
        a reply written offline goes out as one). The server refuses another chat's message or none:
        the message then fails with that reason.
        """
        ...

    async def find_message(self, chat_id: ChatId, message_id: MessageId) -> Message | None:
        """One message of a chat, for a reply's quote when the original is not loaded (None: not visible)."""
        ...

    async def toggle_reaction(self, chat_id: ChatId, message_id: MessageId, emoji: str) -> bool:
        """Add the user's ``emoji`` to the message, or take it back if it is there; returns whether it is on now.

        Shown at once (``subscribe_reactions``); kept in the outbox and delivered when the server can be
        reached, the last toggle of a (message, emoji) winning and going out once. ``InvalidInput`` for
        something that is not an emoji.
        """
        ...

    def reactions(self, chat_id: ChatId) -> Mapping[MessageId, tuple[ShownReaction, ...]]:
        """What to show under each loaded message of an open chat that has reactions."""
        ...

    def subscribe_reactions(self, listener: ReactionsListener) -> Unsubscribe:
        """Hear which messages' reactions changed (a toggle, someone else's reaction, a load), and to what."""
        ...

    def read_state(self, chat_id: ChatId) -> ReadState | None:
        """Where the members of an open chat have read to (None: not known yet)."""
        ...

    def subscribe_reads(self, listener: ReadsListener) -> Unsubscribe:
        """Hear an open chat's read positions whenever one moves (live) or they are loaded."""
        ...

    async def retry(self, message_id: MessageId) -> None: ...

    async def discard(self, message_id: MessageId) -> None: ...

    async def edit_message(self, message_id: MessageId, text: str) -> None: ...

    async def delete_message(self, message_id: MessageId) -> None: ...

    async def create_chat(self, title: str, member_emails: Sequence[str] = ()) -> ChatId: ...

    async def rename_chat(self, chat_id: ChatId, title: str) -> None: ...

    async def add_member(self, chat_id: ChatId, email: str) -> None: ...

    async def remove_member(self, chat_id: ChatId, user_id: UserId) -> None: ...

    async def leave_chat(self, chat_id: ChatId) -> None: ...

    async def delete_chat(self, chat_id: ChatId) -> None: ...

    async def mark_read(self, chat_id: ChatId, seq: int) -> None: ...

    # --- ephemeral ---------------------------------------------------------------------------------
    async def set_typing(self, chat_id: ChatId, typing: bool) -> None: ...

    def subscribe_typing(self, listener: UsersListener) -> Unsubscribe: ...

    def subscribe_presence(self, listener: UsersListener) -> Unsubscribe: ...

    def subscribe_incoming(self, listener: MessageListener) -> Unsubscribe:
        """Messages from other people as they arrive live (for notifications)."""
        ...

    # --- housekeeping ------------------------------------------------------------------------------
    async def clear_cache(self) -> None: ...

    async def cache_usage(self) -> CacheUsage:
        """How much the cache takes now, on disk and in memory (also refreshes the memory gauges that
        ``metrics_snapshot`` reports). Works signed out too."""
        ...
