"""``Reads``: one signed-in user's reads, through the cache.

Read-through: a fresh hit returns; a stale hit returns and refreshes once in the background; a miss loads
once (however many ask) and stores the result unless an event changed the key while it loaded (the
cache's load token); such a load is made again, a bounded number of times, so the key is not left empty.
What only the server can answer (history older than the cached window, the chat list after a membership
change, the back-fill) goes straight to it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from functools import partial
from typing import Any, TypeVar

from desktop_chat.backend.client import MAX_CHATS_PER_CALL, SupabaseBackend
from desktop_chat.cache import CacheKey, LoadToken, TieredCache, chat_key, msgs_key, recent_key
from desktop_chat.cache.tiered import Cached
from desktop_chat.config import Settings
from desktop_chat.dal.calls import BackendCalls
from desktop_chat.dal.local_search import search_cached
from desktop_chat.dal.readthrough import SingleFlight
from desktop_chat.dal.tasks import TaskGroup
from desktop_chat.errors import BackendUnavailable, InvalidInput, Rejected
from desktop_chat.models import (
    ChatChanges,
    ChatDetails,
    ChatId,
    ChatListKey,
    ChatMember,
    ChatSummary,
    MemberPage,
    Message,
    MessageId,
    MessagePage,
    SearchCursor,
    SearchPage,
    UserId,
    validate_search_text,
)

T = TypeVar("T")

log = logging.getLogger(__name__)

PAGE = 50
CHAT_PAGE = 100  # chat-list rows per page (a screen shows some 20); the first page is cached
MEMBER_PAGE = 100  # members per page in the members dialog
SEARCH_HITS = 30  # message search results per page
RELOADS = 2  # a load overtaken by a change is made again at most this often (a busy chat keeps changing)


class Reads:
    """The cached reads of one user.

    Args:
        user: Whose cache entries these are.
        settings: Caps (chats per user, messages per chat).
        backend: Supabase.
        cache: The typed cache.
        calls: The timed way to Supabase.
        tasks: Where background refreshes run.
        chat_page: Chat-list rows per page (the first page is what the cache fills on a miss).
    """

    def __init__(
        self,
        user: UserId,
        settings: Settings,
        backend: SupabaseBackend,
        cache: TieredCache,
        calls: BackendCalls,
        tasks: TaskGroup,
        *,
        chat_page: int = CHAT_PAGE,
    ) -> None:
        self._user = user
        self._chat_page = chat_page
        self._settings = settings
        self._backend = backend
        self._cache = cache
        self._calls = calls
        self._tasks = tasks
        self._flight: SingleFlight[CacheKey, Any] = SingleFlight()

    # --- the three cached reads --------------------------------------------------------------------
    async def recent_chats(self) -> list[ChatSummary]:
        """The chat list as cached (the rows loaded so far), or its first page from Supabase."""
        user = self._user

        async def fetch() -> tuple[ChatSummary, ...]:
            return tuple(await self._backend.fetch_chat_list(self._chat_page))

        chats: tuple[ChatSummary, ...] = await self._read_through(
            recent_key(user),
            lambda: self._cache.get_recent(user),
            fetch,
            lambda value, token: self._cache.set_recent(user, value, token=token),
        )
        return list(chats)

    async def chat_details(self, chat_id: ChatId) -> ChatDetails:
        user = self._user

        async def fetch() -> ChatDetails:
            details = await self._backend.fetch_chat_details(chat_id)
            if details is None or details.chat.deleted:
                raise Rejected("This chat does not exist or you are no longer in it.")
            return details

        details: ChatDetails = await self._read_through(
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
        user = self._user
        cap = self._settings.cache_max_messages_per_chat

        async def fetch() -> tuple[Message, ...]:
            page = await self._backend.fetch_messages(chat_id, None, cap)
            return page.messages

        window: tuple[Message, ...] = await self._read_through(
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
        return await self._calls.call("messages_page", lambda: self._backend.fetch_messages(chat_id, before_seq, limit))

    async def find_message(self, chat_id: ChatId, message_id: MessageId) -> Message | None:
        """One message (a reply's original): from the cached window when it is there, else from Supabase.

        None when the user cannot see it (RLS answers "nothing"). Offline and not cached: ``BackendUnavailable``.
        """
        cached = await self._cache.get_messages(self._user, chat_id)
        if cached is not None:
            found = next((m for m in cached.value if m.id == message_id), None)
            if found is not None:
                return found
        return await self._calls.call("message", lambda: self._backend.fetch_message(message_id, chat_id))

    async def messages_after(self, chat_id: ChatId, after_seq: int, limit: int = PAGE) -> MessagePage:
        """Up to ``limit`` confirmed messages newer than ``after_seq``, ascending (a detached window growing
        downwards); ``has_more``: newer ones exist still.

        The cached newest window answers when it reaches down to ``after_seq + 1``: being contiguous up to
        the newest message, it then holds everything asked for. Otherwise Supabase does; such a page is
        not the newest and is never written to the cache.
        """
        if limit < 1:
            raise InvalidInput("A page holds at least one message.")
        cached = await self._cache.get_messages(self._user, chat_id)
        window = cached.value if cached is not None else ()
        if window and window[0].seq is not None and window[0].seq <= after_seq + 1:
            newer = [m for m in window if (m.seq or 0) > after_seq]
            return MessagePage(chat_id=chat_id, messages=tuple(newer[:limit]), has_more=len(newer) > limit)
        return await self._calls.call(
            "messages_after", lambda: self._backend.fetch_messages_after(chat_id, after_seq, limit)
        )

    async def cached_newest_seqs(self, chat_id: ChatId) -> tuple[int | None, int | None]:
        """The first and last ``seq`` of the chat's cached newest window, (None, None) when none is cached."""
        cached = await self._cache.get_messages(self._user, chat_id)
        seqs = [m.seq for m in cached.value if m.seq is not None] if cached is not None else []
        return (seqs[0], seqs[-1]) if seqs else (None, None)

    async def search_messages(
        self, text: str, chat_id: ChatId | None = None, cursor: SearchCursor | None = None, limit: int = SEARCH_HITS
    ) -> SearchPage:
        """The server's full-text search over every message the user may see (``search_messages``)."""
        return await self._calls.call(
            "search_messages", lambda: self._backend.search_messages(text, chat_id, cursor, limit)
        )

    async def search_cached(self, text: str, chat_id: ChatId | None = None, limit: int = SEARCH_HITS) -> SearchPage:
        """The same search over the messages this computer has cached (offline): the newest window of each
        cached chat, or of ``chat_id`` alone."""
        validate_search_text(text)
        chats = [chat_id] if chat_id is not None else await self._cache.cached_chats(self._user)
        found: list[Message] = []
        for chat in chats:
            cached = await self._cache.get_messages(self._user, chat)
            if cached is not None:
                found += cached.value
        return SearchPage(hits=tuple(search_cached(found, text, limit)))

    # --- straight from the server ------------------------------------------------------------------
    async def load_chat_list(self, limit: int = CHAT_PAGE, after: ChatListKey | None = None) -> list[ChatSummary]:
        """A page of the chat list from Supabase, not the cache: the first, or the one below ``after``."""
        return await self._calls.call("chat_list", lambda: self._backend.fetch_chat_list(limit, after=after))

    async def search_chats(
        self, text: str, limit: int = CHAT_PAGE, after: ChatListKey | None = None
    ) -> list[ChatSummary]:
        """The user's chats whose title contains ``text`` (any case), out of all of them, newest first."""
        return await self._calls.call(
            "search_chats", lambda: self._backend.fetch_chat_list(limit, after=after, search=text)
        )

    async def chats_by_id(self, chat_ids: Sequence[ChatId]) -> list[ChatSummary]:
        """The rows of these chats that the user can still see, wherever they are in the list."""
        ids = list(dict.fromkeys(chat_ids))
        parts = [ids[start : start + MAX_CHATS_PER_CALL] for start in range(0, len(ids), MAX_CHATS_PER_CALL)]
        rows: list[ChatSummary] = []
        for part in parts:
            rows += await self._calls.call("chat_list", partial(self._backend.fetch_chat_list, ids=part))
        return rows

    async def chat_members(
        self, chat_id: ChatId, after: ChatMember | None = None, limit: int = MEMBER_PAGE
    ) -> MemberPage:
        """A page of the chat's members in joining order (not cached: the dialog that pages them is brief)."""
        if limit < 1:
            raise InvalidInput("A page holds at least one member.")
        page = await self._calls.call("chat_members", lambda: self._backend.fetch_members_page(chat_id, after, limit))
        if after is None and not page.members:
            # A member is on the first page at least; nothing means row level security said no.
            raise Rejected("This chat does not exist or you are no longer in it.")
        return page

    async def changes_since(self, chat_id: ChatId, after_rev: int, limit: int) -> list[Message]:
        """The chat's messages whose ``rev`` is above ``after_rev``, by rev (the back-fill)."""
        return await self._calls.call(
            "messages_since", lambda: self._backend.fetch_messages_since(chat_id, after_rev, limit)
        )

    async def changes_since_many(self, cursors: Mapping[ChatId, int], limit: int) -> list[ChatChanges]:
        """The back-fill of many chats in one round trip: the chats whose newest rev is above their cursor
        (with up to ``limit`` messages in all) and those the user can no longer see."""
        return await self._calls.call("changes_since", lambda: self._backend.fetch_changes_since(cursors, limit))

    # --- read-through ------------------------------------------------------------------------------
    async def _read_through(
        self,
        key: CacheKey,
        get: Callable[[], Awaitable[Cached[T] | None]],
        fetch: Callable[[], Awaitable[T]],
        put: Callable[[T, LoadToken], Awaitable[bool]],
    ) -> T:
        loads_before = self._flight.completed(key)
        hit = await get()
        if hit is not None:
            if not hit.fresh and key not in self._flight:
                self._tasks.spawn(self._refresh_quietly(key, get, fetch, put), f"refresh-{key.kind}")
            return hit.value
        # The caller waits on Supabase for what the cache cannot give (at start-up, a cold cache's chat list):
        # a server client held back for the first paint would only delay it now.
        self._backend.release_client()
        # A load of this key that finished while our miss was on its way has just written the value:
        # look once more rather than ask Supabase again.
        recheck = self._flight.completed(key) != loads_before
        return await self._flight.run(key, lambda: self._load(key, get, fetch, put, recheck=recheck))  # type: ignore[no-any-return]

    async def _load(
        self,
        key: CacheKey,
        get: Callable[[], Awaitable[Cached[T] | None]],
        fetch: Callable[[], Awaitable[T]],
        put: Callable[[T, LoadToken], Awaitable[bool]],
        *,
        recheck: bool = False,
    ) -> T:
        if recheck:
            hit = await get()
            if hit is not None and hit.fresh:
                return hit.value
        attempt = 0
        while True:
            token = self._cache.begin_load(key)
            value = await self._calls.call(key.kind, fetch)
            if await put(value, token) or attempt == RELOADS:
                return value
            # The key changed while this loaded (a push that found no window to go into, a gap, another
            # writer), so the value may predate the change and was not written. Left at that, the chat
            # would stay out of the cache (offline it would be missing) until it is read again: another
            # writer may have filled it meanwhile, otherwise load once more, now after the change.
            attempt += 1
            log.debug("a %s load was overtaken by a change; loading it again", key.kind)
            hit = await get()
            if hit is not None and hit.fresh:
                return hit.value

    async def _refresh_quietly(
        self,
        key: CacheKey,
        get: Callable[[], Awaitable[Cached[T] | None]],
        fetch: Callable[[], Awaitable[T]],
        put: Callable[[T, LoadToken], Awaitable[bool]],
    ) -> None:
        with contextlib.suppress(BackendUnavailable):
            await self._flight.run(key, lambda: self._load(key, get, fetch, put))
