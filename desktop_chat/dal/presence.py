"""``Presence``: who types and who is online, per chat, for whoever listens. Ephemeral: never stored.

Also the listeners of the open chats' reactions and read positions (the services of the signed-in user
report here, so the UI subscribes once for the life of the window).

The UI subscribes once, for the life of the window; the state belongs to the signed-in user and is
cleared whenever the user changes (``reset``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

from desktop_chat.dal.api import MessageListener, ReactionsListener, ReadsListener, UsersListener
from desktop_chat.dal.live_list import Unsubscribe
from desktop_chat.models import ChatId, Message, MessageId, ReadState, ShownReaction, UserId

log = logging.getLogger(__name__)


def call_listeners(listeners: Iterable[object], *args: object) -> None:
    """Call each listener; one that raises is logged and the others still hear."""
    for listener in list(listeners):
        try:
            listener(*args)  # type: ignore[operator]
        except Exception:  # a view's bug must not stop the data layer
            log.exception("listener failed")


class Presence:
    """Typing and online users per chat, plus the listeners for messages from others as they arrive."""

    def __init__(self) -> None:
        self._me: UserId | None = None
        self._typing: dict[ChatId, frozenset[UserId]] = {}
        self._online: dict[ChatId, frozenset[UserId]] = {}
        self._typing_listeners: list[UsersListener] = []
        self._presence_listeners: list[UsersListener] = []
        self._incoming_listeners: list[MessageListener] = []
        self._reaction_listeners: list[ReactionsListener] = []
        self._read_listeners: list[ReadsListener] = []

    def reset(self, me: UserId | None) -> None:
        """Another user (or none): forget who typed and who was online."""
        self._me = me
        self._typing.clear()
        self._online.clear()

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

    def subscribe_reactions(self, listener: ReactionsListener) -> Unsubscribe:
        self._reaction_listeners.append(listener)
        return lambda: self._reaction_listeners.remove(listener) if listener in self._reaction_listeners else None

    def subscribe_reads(self, listener: ReadsListener) -> Unsubscribe:
        self._read_listeners.append(listener)
        return lambda: self._read_listeners.remove(listener) if listener in self._read_listeners else None

    # --- what realtime and live sync report --------------------------------------------------------
    def typing_changed(self, chat_id: ChatId, users: frozenset[UserId]) -> None:
        others = users - {self._me} if self._me else users
        self._typing[chat_id] = others
        call_listeners(self._typing_listeners, chat_id, others)

    def presence_changed(self, chat_id: ChatId, users: frozenset[UserId]) -> None:
        self._online[chat_id] = users
        call_listeners(self._presence_listeners, chat_id, users)

    def incoming(self, message: Message) -> None:
        """A message from someone else arrived live."""
        call_listeners(self._incoming_listeners, message)

    def reactions_changed(self, chat_id: ChatId, shown: Mapping[MessageId, tuple[ShownReaction, ...]]) -> None:
        """Messages of an open chat whose reactions (as shown) changed."""
        call_listeners(self._reaction_listeners, chat_id, shown)

    def reads_changed(self, state: ReadState) -> None:
        """An open chat's read positions changed."""
        call_listeners(self._read_listeners, state)
