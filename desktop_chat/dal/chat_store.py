"""ChatStore: the one object the UI talks to (``ChatStoreAPI``).

It signs users in and out and hands every other call to the signed-in user's services (``SignedIn``):
reads to ``Reads``, views to ``LiveSync``, sends to the ``Sender``, edits to ``Edits``, chat administration
to ``ChatAdmin``. What outlives a user (the status, the presence listeners the UI subscribed once) is the
data layer's, built by the composition root and handed in.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from desktop_chat.backend.auth import SessionInfo
from desktop_chat.backend.client import SupabaseBackend
from desktop_chat.backend.session_state import SessionState
from desktop_chat.cache import TieredCache, recent_key
from desktop_chat.cache.policy import DAY
from desktop_chat.dal.api import (
    CacheUsage,
    ChatList,
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
)
from desktop_chat.dal.live_list import Unsubscribe
from desktop_chat.dal.presence import Presence
from desktop_chat.dal.reads import CHAT_PAGE, PAGE
from desktop_chat.dal.signed_in import SignedIn
from desktop_chat.dal.status import StatusBoard
from desktop_chat.dal.tasks import TaskGroup
from desktop_chat.errors import BackendUnavailable, DesktopChatError, InvalidInput, NotSignedIn
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
    ShownReaction,
    UserId,
    validate_display_name,
    validate_search_text,
)
from desktop_chat.realtime.state import ConnectionState

log = logging.getLogger(__name__)

OpenSignedIn = Callable[[Profile], Awaitable[SignedIn]]


def hold_long_lived() -> None:
    """Take everything alive now out of the cyclic garbage collector's full collections (``gc.freeze``).

    Why: a full collection stops the event loop while it walks every tracked object. Once a session is open
    that is 90,000-135,000 objects (the imported libraries, the clients, the signed-in user's services),
    50-130 ms of CPU on the shared 2 cores and more in wall time under load: the whole tail of the cached
    chat switch at 100 ms RTT (docs/architecture.md section 10). These objects live as long as the session,
    so walking them again and again frees nothing. Frozen, a full collection walks only what was made after
    (the session's views and cached pages). Nothing is collected first: that would be a full collection on
    the way to the first paint; the garbage frozen with them is freed after the session ends.
    """
    gc.freeze()


def release_long_lived() -> None:
    """Give the collector back what ``hold_long_lived`` took: a session's objects, and the garbage frozen
    with them, are freed after it ends.

    The generations are the process's: where one process holds several stores (tests), a sign-out hands back
    the other sessions' objects too, until their next open. That changes only how long a full collection
    takes, never what it frees.
    """
    gc.unfreeze()


class ChatStore:
    """Implements ``desktop_chat.dal.api.ChatStoreAPI``.

    Args:
        backend: Supabase (already started); signs users in and out.
        cache: The typed cache (a user's entries are purged at sign-out).
        status: The status the UI sees.
        presence: Typing, presence and incoming-message listeners (the UI subscribes once).
        open_signed_in: Builds and starts everything of a user's after sign-in (the composition root's).
        chat_page: Chat-list rows per page (the first page is read during a sign-in).
    """

    def __init__(
        self,
        backend: SupabaseBackend,
        cache: TieredCache,
        status: StatusBoard,
        presence: Presence,
        open_signed_in: OpenSignedIn,
        *,
        chat_page: int = CHAT_PAGE,
    ) -> None:
        self._backend = backend
        self._chat_page = chat_page
        self._cache = cache
        self._status = status
        self._presence = presence
        self._open_signed_in = open_signed_in
        self._signed_in: SignedIn | None = None
        self._signed_out_list: ChatList = new_chat_list()
        self._tasks = TaskGroup()
        self._ended_listeners: list[SessionEndedListener] = []
        self._unsubscribe_auth = backend.subscribe_session(self._on_auth)

    # ==============================================================================================
    # signing in and out
    # ==============================================================================================
    @property
    def current_user(self) -> Profile | None:
        return self._signed_in.profile if self._signed_in is not None else None

    @property
    def signed_in(self) -> SignedIn:
        """Everything of the signed-in user's (``NotSignedIn`` when no one is)."""
        if self._signed_in is None:
            raise NotSignedIn("You are not signed in.")
        return self._signed_in

    async def restore_session(self) -> Profile | None:
        profile = await self._backend.restore_session()
        if profile is not None:
            await self._open(profile)
            if self._backend.auth.state is SessionState.SIGNED_OUT:
                # The saved session was refused while the user's parts were being built.
                self._session_refused()
        return profile

    def first_frame_painted(self) -> None:
        self._backend.release_client()

    async def sign_in(self, email: str, password: str) -> Profile:
        if not email.strip() or not password:
            raise InvalidInput("Enter your email address and password.")
        profile = await self._backend.sign_in(email, password, alongside=self._prefetch_chats)
        await self._open(profile)
        return profile

    async def _prefetch_chats(self, session: SessionInfo) -> None:
        """The chat list's first page, asked for while the profile loads, into the cache: the list shown
        after a sign-in is then a cache hit instead of a third round trip."""
        user = session.user_id
        token = self._cache.begin_load(recent_key(user))  # an event for the key meanwhile wins over this
        try:
            rows = await self._backend.fetch_chat_list(self._chat_page)
            await self._cache.set_recent(user, rows, token=token)
        except DesktopChatError as error:  # the list is then loaded after the sign-in, as without this
            log.info("The chat list could not be read during the sign-in: %s", error.message)

    async def sign_up(self, email: str, password: str, display_name: str) -> Profile:
        name = validate_display_name(display_name)
        profile = await self._backend.sign_up(email, password, name)
        await self._open(profile)
        return profile

    async def sign_out(self) -> None:
        user = self.current_user
        await self._end()
        if user is not None:
            await self._cache.purge_user(user.id)
        await self._backend.sign_out()
        self._status.update(connection=ConnectionState.OFFLINE, outbox_depth=0, backend_reachable=True, detail="")

    async def _open(self, profile: Profile) -> None:
        await self._end()
        self._signed_in = await self._open_signed_in(profile)
        hold_long_lived()  # everything the session lives on exists now

    async def _end(self) -> None:
        signed_in, self._signed_in = self._signed_in, None
        if signed_in is not None:
            await signed_in.close()
            release_long_lived()

    def subscribe_session_ended(self, listener: SessionEndedListener) -> Unsubscribe:
        self._ended_listeners.append(listener)
        return lambda: self._ended_listeners.remove(listener) if listener in self._ended_listeners else None

    def _on_auth(self, session: SessionInfo | None) -> None:
        signed_in = self._signed_in
        if signed_in is None:
            return
        if session is None:
            self._session_refused()
        elif session.user_id == signed_in.profile.id:
            signed_in.session_renewed(session)

    def _session_refused(self) -> None:
        """The server ended the session (refresh token revoked, account deleted; also a saved session refused
        after it was shown): stop, keep the outbox and the cache for next time, and tell the UI."""
        signed_in, self._signed_in = self._signed_in, None  # signed out now, before the UI hears of it
        if signed_in is not None:
            self._tasks.spawn(signed_in.close(), "session-ended")
            release_long_lived()
        self._status.update(connection=ConnectionState.OFFLINE, detail="Signed out by the server.")
        for listener in list(self._ended_listeners):
            listener("Your session has ended. Please sign in again.")

    async def settle(self) -> None:
        """Wait until the background work started so far (warming, refreshes, write-through) is done."""
        await self._tasks.settle()
        if self._signed_in is not None:
            await self._signed_in.tasks.settle()

    async def close(self) -> None:
        """End the signed-in user's session (unsent messages stay in the outbox) and stop listening."""
        await self._end()
        await self._tasks.close()
        self._unsubscribe_auth()

    # ==============================================================================================
    # status
    # ==============================================================================================
    @property
    def status(self) -> StoreStatus:
        return self._status.status

    def subscribe_status(self, listener: StatusListener) -> Unsubscribe:
        return self._status.subscribe(listener)

    def metrics_snapshot(self) -> dict[str, Any]:
        snapshot = self._status.snapshot(self._signed_in.realtime if self._signed_in is not None else None)
        trips = self._backend.round_trips.snapshot()
        snapshot["round_trips"] = {"total": trips.total, "by_call": dict(trips.by_call)}
        return snapshot

    # ==============================================================================================
    # reads and views
    # ==============================================================================================
    def chat_list(self) -> ChatList:
        return self._signed_in.live.chat_list if self._signed_in is not None else self._signed_out_list

    async def refresh_chats(self) -> None:
        await self.signed_in.live.refresh_chats()

    async def recent_chats(self) -> list[ChatSummary]:
        return await self.signed_in.reads.recent_chats()

    def has_more_chats(self) -> bool:
        return self._signed_in is not None and self._signed_in.live.has_more_chats()

    async def load_more_chats(self) -> int:
        return await self.signed_in.live.load_more_chats()

    async def search_chats(self, text: str, after: ChatListKey | None = None) -> list[ChatSummary]:
        return await self.signed_in.live.search_chats(text, after)

    async def chat_details(self, chat_id: ChatId) -> ChatDetails:
        return await self.signed_in.reads.chat_details(chat_id)

    async def chat_members(self, chat_id: ChatId, after: ChatMember | None = None, limit: int = 100) -> MemberPage:
        return await self.signed_in.reads.chat_members(chat_id, after, limit)

    async def messages(self, chat_id: ChatId, before_seq: int | None = None, limit: int = PAGE) -> MessagePage:
        return await self.signed_in.reads.messages(chat_id, before_seq, limit)

    async def open_chat(self, chat_id: ChatId) -> Timeline:
        signed_in = self.signed_in
        timeline = await signed_in.live.open_timeline(chat_id)
        signed_in.reactions.watch(chat_id, timeline)
        signed_in.receipts.watch(chat_id)
        return timeline

    def close_chat(self, chat_id: ChatId) -> None:
        if self._signed_in is not None:
            self._signed_in.live.close_timeline(chat_id)
            self._signed_in.reactions.unwatch(chat_id)
            self._signed_in.receipts.unwatch(chat_id)

    def catch_up(self) -> None:
        if self._signed_in is not None and self._signed_in.probe is not None:
            self._signed_in.probe.poke()

    def has_older(self, chat_id: ChatId) -> bool:
        return self._signed_in is not None and self._signed_in.live.has_older(chat_id)

    async def load_older(self, chat_id: ChatId) -> int:
        return await self.signed_in.live.load_older(chat_id)

    async def open_at(self, chat_id: ChatId, seq: int) -> Timeline:
        signed_in = self.signed_in
        timeline = await signed_in.live.open_timeline_at(chat_id, seq)
        # A chat may be opened by a jump alone (a search result): it shows reactions and receipts too. A jump
        # within a chat already followed (a quote) keeps what is loaded: no second load of either.
        if not signed_in.reactions.watches(chat_id):
            signed_in.reactions.watch(chat_id, timeline)
        if not signed_in.receipts.watches(chat_id):
            signed_in.receipts.watch(chat_id)
        return timeline

    def has_newer(self, chat_id: ChatId) -> bool:
        return self._signed_in is not None and self._signed_in.live.has_newer(chat_id)

    async def load_newer(self, chat_id: ChatId) -> int:
        return await self.signed_in.live.load_newer(chat_id)

    async def search_messages(
        self, text: str, chat_id: ChatId | None = None, cursor: SearchCursor | None = None
    ) -> MessageSearch:
        reads = self.signed_in.reads
        validate_search_text(text)
        if self._status.status.backend_reachable:
            try:
                page = await reads.search_messages(text, chat_id, cursor)
                return MessageSearch(page.hits, page.next_cursor, local=False)
            except BackendUnavailable:
                pass  # offline: what this computer has cached is still searchable
        if cursor is not None:
            return MessageSearch(local=True)  # the local search answers in one page
        page = await reads.search_cached(text, chat_id)
        return MessageSearch(page.hits, None, local=True)

    # ==============================================================================================
    # writes
    # ==============================================================================================
    async def send(self, chat_id: ChatId, text: str, reply_to: MessageId | None = None) -> MessageId:
        return await self.signed_in.sender.send(chat_id, text, reply_to)

    async def find_message(self, chat_id: ChatId, message_id: MessageId) -> Message | None:
        return await self.signed_in.reads.find_message(chat_id, message_id)

    async def toggle_reaction(self, chat_id: ChatId, message_id: MessageId, emoji: str) -> bool:
        return await self.signed_in.reactions.toggle(chat_id, message_id, emoji)

    def reactions(self, chat_id: ChatId) -> Mapping[MessageId, tuple[ShownReaction, ...]]:
        return self._signed_in.reactions.shown(chat_id) if self._signed_in is not None else {}

    def subscribe_reactions(self, listener: ReactionsListener) -> Unsubscribe:
        return self._presence.subscribe_reactions(listener)

    def read_state(self, chat_id: ChatId) -> ReadState | None:
        return self._signed_in.receipts.state(chat_id) if self._signed_in is not None else None

    def subscribe_reads(self, listener: ReadsListener) -> Unsubscribe:
        return self._presence.subscribe_reads(listener)

    async def retry(self, message_id: MessageId) -> None:
        if await self.signed_in.sender.retry(message_id) is None:
            raise InvalidInput("That message is no longer waiting to be sent.")

    async def discard(self, message_id: MessageId) -> None:
        await self.signed_in.sender.discard(message_id)

    async def edit_message(self, message_id: MessageId, text: str) -> None:
        await self.signed_in.edits.edit_message(message_id, text)

    async def delete_message(self, message_id: MessageId) -> None:
        await self.signed_in.edits.delete_message(message_id)

    async def mark_read(self, chat_id: ChatId, seq: int) -> None:
        await self.signed_in.edits.mark_read(chat_id, seq)

    # --- chat administration -------------------------------------------------------------------------
    async def create_chat(self, title: str, member_emails: Sequence[str] = ()) -> ChatId:
        return await self.signed_in.chats.create_chat(title, member_emails)

    async def rename_chat(self, chat_id: ChatId, title: str) -> None:
        await self.signed_in.chats.rename_chat(chat_id, title)

    async def delete_chat(self, chat_id: ChatId) -> None:
        await self.signed_in.chats.delete_chat(chat_id)

    async def add_member(self, chat_id: ChatId, email: str) -> None:
        await self.signed_in.chats.add_member(chat_id, email)

    async def remove_member(self, chat_id: ChatId, user_id: UserId) -> None:
        await self.signed_in.chats.remove_member(chat_id, user_id)

    async def leave_chat(self, chat_id: ChatId) -> None:
        await self.signed_in.chats.leave_chat(chat_id)

    # ==============================================================================================
    # ephemeral
    # ==============================================================================================
    async def set_typing(self, chat_id: ChatId, typing: bool) -> None:
        realtime = self._signed_in.realtime if self._signed_in is not None else None
        if realtime is not None:
            await realtime.send_typing(chat_id, typing)

    def subscribe_typing(self, listener: UsersListener) -> Unsubscribe:
        return self._presence.subscribe_typing(listener)

    def subscribe_presence(self, listener: UsersListener) -> Unsubscribe:
        return self._presence.subscribe_presence(listener)

    def subscribe_incoming(self, listener: MessageListener) -> Unsubscribe:
        return self._presence.subscribe_incoming(listener)

    # ==============================================================================================
    # housekeeping
    # ==============================================================================================
    async def clear_cache(self) -> None:
        await self._cache.wipe()
        if self._signed_in is not None:
            self._signed_in.live.clear_cursors()

    async def cache_usage(self) -> CacheUsage:
        figures = await self._cache.poll_memory()
        memory = figures.get("redis_used_memory")
        if memory is None:
            memory = figures.get("memory_tier_bytes")
        return CacheUsage(
            disk_bytes=self._cache.disk_bytes(),
            memory_bytes=memory,
            keep_days=self._cache.policy.stale_grace / DAY,
        )
