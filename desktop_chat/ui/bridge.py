"""The one door from widgets to the data layer: ``StoreBridge``, a QObject with qasync async slots.

Widgets never await anything. They call a slot (or connect a signal to it); the slot runs the store's
coroutine on the qasync loop and reports the outcome with signals: a named signal for the result
(``signed_in``, ``chat_opened``...) and, for every operation, ``started`` / ``failed`` / ``finished``
so that busy states and inline errors need no bookkeeping of their own. Expected failures (the
``DesktopChatError`` tree) become ``failed`` with a sentence in plain words; anything else (``Bug``
included) is a bug and goes to ``sys.excepthook`` (the crash dialog).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ParamSpec, cast

import qasync
from PySide6.QtCore import QObject, Signal

from desktop_chat.dal.api import ChatList, ChatStoreAPI, MessageSearch, StoreStatus
from desktop_chat.dal.live_list import Unsubscribe
from desktop_chat.errors import (
    BackendUnavailable,
    DesktopChatError,
    InvalidInput,
    LocalStorageError,
    NotSignedIn,
    Rejected,
    Unauthorized,
)
from desktop_chat.models import (
    ChatId,
    ChatListKey,
    ChatMember,
    Message,
    MessageId,
    Profile,
    ReadState,
    SearchCursor,
    ShownReaction,
    UserId,
)

_log = logging.getLogger(__name__)
P = ParamSpec("P")


def async_slot(
    *types: type,
) -> Callable[[Callable[P, Coroutine[Any, Any, None]]], Callable[P, asyncio.Task[None]]]:
    """``qasync.asyncSlot`` with types: the decorated coroutine method becomes a slot returning its task."""
    return cast(
        "Callable[[Callable[P, Coroutine[Any, Any, None]]], Callable[P, asyncio.Task[None]]]",
        qasync.asyncSlot(*types),
    )


class Operation(StrEnum):
    """What the bridge was asked to do; the first argument of ``started``/``failed``/``finished``."""

    RESTORE_SESSION = "restore_session"
    SIGN_IN = "sign_in"
    SIGN_UP = "sign_up"
    SIGN_OUT = "sign_out"
    REFRESH_CHATS = "refresh_chats"
    LOAD_MORE_CHATS = "load_more_chats"
    SEARCH_CHATS = "search_chats"
    OPEN_CHAT = "open_chat"
    CHAT_DETAILS = "chat_details"
    CHAT_MEMBERS = "chat_members"
    LOAD_OLDER = "load_older"
    OPEN_AT = "open_at"
    LOAD_NEWER = "load_newer"
    SEARCH_MESSAGES = "search_messages"
    SEND = "send"
    FIND_MESSAGE = "find_message"
    TOGGLE_REACTION = "toggle_reaction"
    RETRY = "retry"
    DISCARD = "discard"
    EDIT_MESSAGE = "edit_message"
    DELETE_MESSAGE = "delete_message"
    CREATE_CHAT = "create_chat"
    RENAME_CHAT = "rename_chat"
    ADD_MEMBER = "add_member"
    REMOVE_MEMBER = "remove_member"
    LEAVE_CHAT = "leave_chat"
    DELETE_CHAT = "delete_chat"
    MARK_READ = "mark_read"
    SET_TYPING = "set_typing"
    CLEAR_CACHE = "clear_cache"
    CACHE_USAGE = "cache_usage"


# The context of a failed sign-in (or sign-up, or restore) whose cause is the server's address or key.
SERVER_PROBLEM = "server"
INVALID_API_KEY = "invalid_api_key"
_SIGNING_IN = frozenset({"restore_session", "sign_in", "sign_up"})

# Operations whose failure the user did not directly ask for; they go to the status line, not a dialog.
BACKGROUND_OPERATIONS = frozenset(
    {
        Operation.MARK_READ,
        Operation.SET_TYPING,
        Operation.REFRESH_CHATS,
        Operation.CACHE_USAGE,
        Operation.LOAD_MORE_CHATS,
        Operation.SEARCH_CHATS,
        Operation.FIND_MESSAGE,
        Operation.SEARCH_MESSAGES,
    }
)


@dataclass(frozen=True, slots=True)
class MessageQuery:
    """What a message search asks: the text, in one chat or all (``chat_id`` None), from ``cursor`` on."""

    text: str
    chat_id: ChatId | None = None
    cursor: SearchCursor | None = None


def describe_error(error: DesktopChatError, operation: Operation, server_url: str) -> str:
    """One sentence in plain words for an expected failure of ``operation``."""
    if isinstance(error, Unauthorized):
        if error.code == INVALID_API_KEY:
            return (
                f"The server at {server_url} does not accept this project key. "
                "Check the key: the project's anon or publishable key, from its API settings."
            )
        if operation in (Operation.SIGN_IN, Operation.SIGN_UP):
            return "Wrong email or password."
        return "Your session has expired. Please sign in again."
    if isinstance(error, NotSignedIn):
        return "You are signed out. Please sign in again."
    if isinstance(error, BackendUnavailable):
        if "did not understand" in error.message and operation.value in _SIGNING_IN:
            # Something answered, but not a Supabase project: the address is wrong, not the connection.
            return f"There is no Supabase project at {server_url}. Check the server address."
        return f"Cannot reach the server at {server_url}. Check your connection and try again."
    if isinstance(error, LocalStorageError):
        return error.message
    if isinstance(error, InvalidInput | Rejected):
        return error.message
    return error.message or "Something went wrong."


class StoreBridge(QObject):
    """Runs ``ChatStoreAPI`` calls for the widgets and reports back with signals.

    Args:
        store: The data layer (the real ``ChatStore`` or a test double).
        server_url: Shown in "cannot reach" messages.
        parent: Qt parent.

    Signals:
        started(str, object): An operation (``Operation`` value) began; the object is its context
            (a chat or message id, or None).
        failed(str, str, object): An operation failed expectedly: operation, a sentence for the user,
            context. For ``send`` the context is ``(session_id, text)`` so the text can be given back.
        finished(str, object): An operation ended, either way (after ``failed`` or the result signal).
        session_checked(object): ``restore_session`` finished: the ``Profile``, or None for no session.
        signed_in(object): A ``Profile`` signed in (sign-in, sign-up or a restored session).
        signed_out(): The session ended (asked for, or expired).
        session_expired(str): The session ended by itself; a sentence for the sign-in window.
        status_changed(object): A new ``StoreStatus``.
        typing_changed(object, object): ``(ChatId, frozenset[UserId])`` who types in a chat now.
        presence_changed(object, object): ``(ChatId, frozenset[UserId])`` who is in a chat now.
        incoming_received(object): Someone else's ``Message`` arrived live.
        chat_opened(object, object): ``(ChatId, Timeline)`` of a chat that is now the active one.
        more_chats_loaded(int): The next page of the chat list came (how many rows; 0 at its end or after
            a failure).
        chats_found(str, object, object): ``(text, after, list[ChatSummary])``: the server's matches for a
            search (below ``after``); empty after a failure. The chat list holds them too.
        chat_details_loaded(object): ``ChatDetails`` (title, member count, named members) of a chat.
        members_loaded(object, object, object): ``(ChatId, after, MemberPage)`` a page of a chat's members
            after ``after`` (None: the first page).
        older_loaded(object, int): ``(ChatId, rows)`` an older page was prepended (0: none came).
        message_found(object, object, object): ``find_message`` answered: chat, message id, the message or
            None (not visible).
        reactions_changed(object, object): A chat's messages whose reactions changed: ``(ChatId,
            {MessageId: tuple[ShownReaction, ...]})``.
        reads_changed(object): An open chat's read positions moved (a ``ReadState``).
        chat_opened_at(object, object, int): ``(ChatId, Timeline, seq)``: the chat is the active one, its
            timeline holding message ``seq`` (``open_at``).
        newer_loaded(object, int): ``(ChatId, rows)`` a newer page was appended to a detached window (0: none
            came, or it failed).
        messages_found(object, object): ``(MessageQuery, MessageSearch)``: a page of a message search; after
            a failure an empty ``MessageSearch`` (the ``failed`` signal says why).
        message_queued(object, object): ``(ChatId, MessageId)`` a message is in the outbox.
        chat_created(object): The ``ChatId`` of a chat this user just created.
        chat_left(object): The ``ChatId`` of a chat this user left or deleted.
        chat_changed(object): The ``ChatId`` of a chat renamed or whose members changed.
        cache_cleared(): The cache was emptied.
        cache_usage_loaded(object): A ``CacheUsage`` (disk and memory the cache takes).
    """

    started = Signal(str, object)
    failed = Signal(str, str, object)
    finished = Signal(str, object)
    session_checked = Signal(object)
    signed_in = Signal(object)
    signed_out = Signal()
    session_expired = Signal(str)
    status_changed = Signal(object)
    typing_changed = Signal(object, object)
    presence_changed = Signal(object, object)
    incoming_received = Signal(object)
    chat_opened = Signal(object, object)
    more_chats_loaded = Signal(int)
    chats_found = Signal(str, object, object)
    chat_details_loaded = Signal(object)
    members_loaded = Signal(object, object, object)
    older_loaded = Signal(object, int)
    chat_opened_at = Signal(object, object, int)
    newer_loaded = Signal(object, int)
    messages_found = Signal(object, object)
    message_queued = Signal(object, object)
    message_found = Signal(object, object, object)
    reactions_changed = Signal(object, object)
    reads_changed = Signal(object)
    chat_created = Signal(object)
    chat_left = Signal(object)
    chat_changed = Signal(object)
    cache_cleared = Signal()
    cache_usage_loaded = Signal(object)

    def __init__(self, store: ChatStoreAPI, *, server_url: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._store = store
        self._server_url = server_url
        self._unsubscribes: list[Unsubscribe] = []
        self._subscribe()

    # --- plain reads (synchronous in the store) ------------------------------------------------------
    @property
    def store(self) -> ChatStoreAPI:
        return self._store

    @property
    def server_url(self) -> str:
        return self._server_url

    @property
    def current_user(self) -> Profile | None:
        return self._store.current_user

    @property
    def status(self) -> StoreStatus:
        return self._store.status

    def chat_list(self) -> ChatList:
        return self._store.chat_list()

    def has_older(self, chat_id: ChatId) -> bool:
        return self._store.has_older(chat_id)

    def has_newer(self, chat_id: ChatId) -> bool:
        return self._store.has_newer(chat_id)

    def has_more_chats(self) -> bool:
        return self._store.has_more_chats()

    def metrics_snapshot(self) -> dict[str, Any]:
        return self._store.metrics_snapshot()

    def reactions(self, chat_id: ChatId) -> Mapping[MessageId, tuple[ShownReaction, ...]]:
        """What the open chat shows under its messages now (``reactions_changed`` tells what changes)."""
        return self._store.reactions(chat_id)

    def read_state(self, chat_id: ChatId) -> ReadState | None:
        """Where the open chat's members have read to (``reads_changed`` tells when it moves)."""
        return self._store.read_state(chat_id)

    def close_chat(self, chat_id: ChatId) -> None:
        self._store.close_chat(chat_id)

    def catch_up(self) -> None:
        """The user is back: have the data layer check with the server now that nothing was missed."""
        self._store.catch_up()

    # --- session -------------------------------------------------------------------------------------
    def first_frame_painted(self) -> None:
        """A window of this session has painted (see ``ChatStoreAPI.first_frame_painted``)."""
        self._store.first_frame_painted()

    @async_slot()
    async def restore_session(self) -> None:
        """Look for a saved session; emits ``session_checked`` (and ``signed_in`` when there is one)."""
        profile: Profile | None = None
        async with self._guard(Operation.RESTORE_SESSION):
            profile = await self._store.restore_session()
        self.session_checked.emit(profile)
        if profile is not None:
            self.signed_in.emit(profile)

    @async_slot(str, str)
    async def sign_in(self, email: str, password: str) -> None:
        async with self._guard(Operation.SIGN_IN):
            profile = await self._store.sign_in(email.strip(), password)
            self.signed_in.emit(profile)

    @async_slot(str, str, str)
    async def sign_up(self, email: str, password: str, display_name: str) -> None:
        async with self._guard(Operation.SIGN_UP):
            profile = await self._store.sign_up(email.strip(), password, display_name)
            self.signed_in.emit(profile)

    @async_slot()
    async def sign_out(self) -> None:
        async with self._guard(Operation.SIGN_OUT):
            await self._store.sign_out()
            self.signed_out.emit()

    # --- reads ---------------------------------------------------------------------------------------
    @async_slot()
    async def refresh_chats(self) -> None:
        async with self._guard(Operation.REFRESH_CHATS):
            await self._store.refresh_chats()

    @async_slot()
    async def load_more_chats(self) -> None:
        count = 0
        async with self._guard(Operation.LOAD_MORE_CHATS):
            count = await self._store.load_more_chats()
        # Also after a failure, so that the list stops waiting for the page.
        self.more_chats_loaded.emit(count)

    @async_slot(str, object)
    async def search_chats(self, text: str, after: ChatListKey | None = None) -> None:
        found = []
        async with self._guard(Operation.SEARCH_CHATS, text):
            found = await self._store.search_chats(text, after)
        self.chats_found.emit(text, after, found)

    @async_slot(object, object)
    async def load_members(self, chat_id: ChatId, after: ChatMember | None = None) -> None:
        async with self._guard(Operation.CHAT_MEMBERS, chat_id):
            page = await self._store.chat_members(chat_id, after)
            self.members_loaded.emit(chat_id, after, page)

    @async_slot(object)
    async def open_chat(self, chat_id: ChatId) -> None:
        async with self._guard(Operation.OPEN_CHAT, chat_id):
            timeline = await self._store.open_chat(chat_id)
            self.chat_opened.emit(chat_id, timeline)

    @async_slot(object)
    async def load_chat_details(self, chat_id: ChatId) -> None:
        async with self._guard(Operation.CHAT_DETAILS, chat_id):
            details = await self._store.chat_details(chat_id)
            self.chat_details_loaded.emit(details)

    @async_slot(object)
    async def load_older(self, chat_id: ChatId) -> None:
        count = 0
        async with self._guard(Operation.LOAD_OLDER, chat_id):
            count = await self._store.load_older(chat_id)
        # Also after a failure, so that whoever waits for the page stops waiting.
        self.older_loaded.emit(chat_id, count)

    @async_slot(object, int)
    async def open_at(self, chat_id: ChatId, seq: int) -> None:
        """Open the chat at message ``seq`` (however old); emits ``chat_opened_at``."""
        async with self._guard(Operation.OPEN_AT, chat_id):
            timeline = await self._store.open_at(chat_id, seq)
            self.chat_opened_at.emit(chat_id, timeline, seq)

    @async_slot(object)
    async def load_newer(self, chat_id: ChatId) -> None:
        count = 0
        async with self._guard(Operation.LOAD_NEWER, chat_id):
            count = await self._store.load_newer(chat_id)
        # Also after a failure, so that whoever waits for the page stops waiting.
        self.newer_loaded.emit(chat_id, count)

    @async_slot(object)
    async def search_messages(self, query: MessageQuery) -> None:
        """Run a message search; emits ``messages_found``. The returned task may be cancelled (a newer query
        replaces it): then nothing is emitted but ``finished``."""
        found = MessageSearch()
        async with self._guard(Operation.SEARCH_MESSAGES, query):
            found = await self._store.search_messages(query.text, query.chat_id, query.cursor)
        self.messages_found.emit(query, found)

    # --- writes --------------------------------------------------------------------------------------
    @async_slot(object, str)
    async def send(self, chat_id: ChatId, text: str) -> None:
        async with self._guard(Operation.SEND, (chat_id, text)):
            message_id = await self._store.send(chat_id, text)
            self.message_queued.emit(chat_id, message_id)

    @async_slot(object, str, object)
    async def send_reply(self, chat_id: ChatId, text: str, reply_to: MessageId) -> None:
        """Send ``text`` as a reply to ``reply_to``; fails like ``send`` (the context is ``(chat, text)``)."""
        async with self._guard(Operation.SEND, (chat_id, text)):
            message_id = await self._store.send(chat_id, text, reply_to)
            self.message_queued.emit(chat_id, message_id)

    @async_slot(object, object)
    async def find_message(self, chat_id: ChatId, message_id: MessageId) -> None:
        """Load one message (a reply's original that is not loaded): ``message_found(chat, id, message|None)``."""
        async with self._guard(Operation.FIND_MESSAGE, (chat_id, message_id)):
            found = await self._store.find_message(chat_id, message_id)
            self.message_found.emit(chat_id, message_id, found)

    @async_slot(object, object, str)
    async def toggle_reaction(self, chat_id: ChatId, message_id: MessageId, emoji: str) -> None:
        async with self._guard(Operation.TOGGLE_REACTION, message_id):
            await self._store.toggle_reaction(chat_id, message_id, emoji)

    @async_slot(object)
    async def retry(self, message_id: MessageId) -> None:
        async with self._guard(Operation.RETRY, message_id):
            await self._store.retry(message_id)

    @async_slot(object)
    async def discard(self, message_id: MessageId) -> None:
        async with self._guard(Operation.DISCARD, message_id):
            await self._store.discard(message_id)

    @async_slot(object, str)
    async def edit_message(self, message_id: MessageId, text: str) -> None:
        async with self._guard(Operation.EDIT_MESSAGE, message_id):
            await self._store.edit_message(message_id, text)

    @async_slot(object)
    async def delete_message(self, message_id: MessageId) -> None:
        async with self._guard(Operation.DELETE_MESSAGE, message_id):
            await self._store.delete_message(message_id)

    @async_slot(str, object)
    async def create_chat(self, title: str, member_emails: Sequence[str]) -> None:
        async with self._guard(Operation.CREATE_CHAT):
            chat_id = await self._store.create_chat(title, tuple(member_emails))
            self.chat_created.emit(chat_id)

    @async_slot(object, str)
    async def rename_chat(self, chat_id: ChatId, title: str) -> None:
        async with self._guard(Operation.RENAME_CHAT, chat_id):
            await self._store.rename_chat(chat_id, title)
            self.chat_changed.emit(chat_id)

    @async_slot(object, str)
    async def add_member(self, chat_id: ChatId, email: str) -> None:
        async with self._guard(Operation.ADD_MEMBER, chat_id):
            await self._store.add_member(chat_id, email.strip())
            self.chat_changed.emit(chat_id)

    @async_slot(object, object)
    async def remove_member(self, chat_id: ChatId, user_id: UserId) -> None:
        async with self._guard(Operation.REMOVE_MEMBER, chat_id):
            await self._store.remove_member(chat_id, user_id)
            self.chat_changed.emit(chat_id)

    @async_slot(object)
    async def leave_chat(self, chat_id: ChatId) -> None:
        async with self._guard(Operation.LEAVE_CHAT, chat_id):
            await self._store.leave_chat(chat_id)
            self.chat_left.emit(chat_id)

    @async_slot(object)
    async def delete_chat(self, chat_id: ChatId) -> None:
        async with self._guard(Operation.DELETE_CHAT, chat_id):
            await self._store.delete_chat(chat_id)
            self.chat_left.emit(chat_id)

    @async_slot(object, int)
    async def mark_read(self, chat_id: ChatId, seq: int) -> None:
        async with self._guard(Operation.MARK_READ, chat_id):
            await self._store.mark_read(chat_id, seq)

    @async_slot(object, bool)
    async def set_typing(self, chat_id: ChatId, typing: bool) -> None:
        async with self._guard(Operation.SET_TYPING, chat_id):
            await self._store.set_typing(chat_id, typing)

    @async_slot()
    async def clear_cache(self) -> None:
        async with self._guard(Operation.CLEAR_CACHE):
            await self._store.clear_cache()
            self.cache_cleared.emit()

    @async_slot()
    async def load_cache_usage(self) -> None:
        async with self._guard(Operation.CACHE_USAGE):
            usage = await self._store.cache_usage()
            self.cache_usage_loaded.emit(usage)

    # --- lifecycle -----------------------------------------------------------------------------------
    def detach(self) -> None:
        """Stop listening to the store (at shutdown). The store is closed by whoever built it."""
        self._unsubscribe()

    def replace_store(self, store: ChatStoreAPI, *, server_url: str) -> None:
        """Continue with ``store`` (the user chose another server); whoever built the old one closes it."""
        self.detach()
        self._store = store
        self._server_url = server_url
        self._subscribe()
        self.status_changed.emit(store.status)

    # --- internals -----------------------------------------------------------------------------------
    def _subscribe(self) -> None:
        store = self._store
        self._unsubscribes = [
            store.subscribe_status(self.status_changed.emit),
            store.subscribe_typing(self.typing_changed.emit),
            store.subscribe_presence(self.presence_changed.emit),
            store.subscribe_incoming(self._on_incoming),
            store.subscribe_reactions(self.reactions_changed.emit),
            store.subscribe_reads(self.reads_changed.emit),
            store.subscribe_session_ended(self._on_session_ended),
        ]

    def _unsubscribe(self) -> None:
        for unsubscribe in self._unsubscribes:
            unsubscribe()
        self._unsubscribes = []

    def _on_session_ended(self, message: str) -> None:
        # The server refused the session by itself (e.g. a saved session revoked while its window showed
        # the cached chats): back to the sign-in window, with why.
        self.session_expired.emit(message)
        self.signed_out.emit()

    def _on_incoming(self, message: Message) -> None:
        self.incoming_received.emit(message)

    @asynccontextmanager
    async def _guard(self, operation: Operation, context: object = None) -> AsyncIterator[None]:
        """Emit started/finished around the block; turn expected failures into ``failed``."""
        self.started.emit(operation.value, context)
        try:
            yield
        except Unauthorized as error:
            self._report(operation, error, context)
            if operation not in (Operation.SIGN_IN, Operation.SIGN_UP, Operation.RESTORE_SESSION) and (
                error.code != INVALID_API_KEY
            ):
                # The session is gone for good (the store already tried to refresh it).
                self.session_expired.emit(describe_error(error, operation, self._server_url))
                self.signed_out.emit()
        except DesktopChatError as error:
            self._report(operation, error, context)
        finally:
            self.finished.emit(operation.value, context)

    def _report(self, operation: Operation, error: DesktopChatError, context: object) -> None:
        level = logging.INFO if operation in BACKGROUND_OPERATIONS else logging.WARNING
        # The error's class and code only: messages may quote user input.
        _log.log(level, "%s failed: %s (code %s)", operation.value, type(error).__name__, error.code)
        if operation.value in _SIGNING_IN and (isinstance(error, BackendUnavailable) or error.code == INVALID_API_KEY):
            context = SERVER_PROBLEM  # the sign-in window shows the server's fields with the sentence
        self.failed.emit(operation.value, describe_error(error, operation, self._server_url), context)
