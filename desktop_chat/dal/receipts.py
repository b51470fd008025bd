"""``Receipts``: where the members of the open chats have read to, for ticks and "Seen by N".

Loaded with ``read_positions()`` when a chat opens (and again when the link comes back: pushes were
missed); kept current by what the chat's private topic ``chat:<id>`` pushes: the ``read`` event
(``ReadMoved``) when a member of a chat of at most ``READ_EVENTS_UP_TO`` members reads on, and the
``member`` rows of members added, removed or given another role; the user's own position comes as its
row on ``user:<me>``. They are folded by the pure ``ReadState.moved``. A bigger chat gets no ``read``
events (each read would go to every online member), so its positions are reloaded on each round of the
consistency probe (``reload_big``) as well as when the link comes back. A chat with more members than
``POSITIONS`` keeps the furthest ones: its counts are lower bounds.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from desktop_chat.backend.client import SupabaseBackend
from desktop_chat.dal.calls import BackendCalls
from desktop_chat.dal.presence import Presence
from desktop_chat.dal.tasks import TaskGroup
from desktop_chat.errors import DesktopChatError
from desktop_chat.models import ChangeEvent, ChatId, MemberRemoved, MemberUpserted, ReadMoved, ReadState, UserId

log = logging.getLogger(__name__)

POSITIONS = 500  # read_positions() answers with at most this many members, furthest first
READ_EVENTS_UP_TO = 50  # the database sends ``read`` events for chats of at most this many members


class Receipts:
    """Read positions of the open chats (see the module docstring)."""

    def __init__(self, backend: SupabaseBackend, calls: BackendCalls, tasks: TaskGroup, presence: Presence) -> None:
        self._backend = backend
        self._calls = calls
        self._tasks = tasks
        self._presence = presence
        self._states: dict[ChatId, ReadState | None] = {}

    def watch(self, chat_id: ChatId) -> None:
        if chat_id not in self._states:
            self._states[chat_id] = None
        self._tasks.spawn(self._load(chat_id), f"read-positions-{chat_id}")

    def watches(self, chat_id: ChatId) -> bool:
        return chat_id in self._states

    def unwatch(self, chat_id: ChatId) -> None:
        self._states.pop(chat_id, None)

    def state(self, chat_id: ChatId) -> ReadState | None:
        return self._states.get(chat_id)

    def reload(self) -> None:
        """The link is back: read positions may have moved unseen."""
        for chat_id in list(self._states):
            self._tasks.spawn(self._load(chat_id), f"read-positions-{chat_id}")

    def reload_big(self) -> None:
        """The probe's round: chats too big for ``read`` events may have been read on unseen."""
        for chat_id, state in list(self._states.items()):
            if state is None or state.member_count > READ_EVENTS_UP_TO:
                self._tasks.spawn(self._load(chat_id), f"read-positions-{chat_id}")

    def on_events(self, events: Sequence[ChangeEvent]) -> None:
        """Pushed changes: ``read`` events and members' rows move read positions."""
        for event in events:
            if isinstance(event, ReadMoved):
                self._move(event.chat_id, event.user_id, event.last_read_seq)
            elif isinstance(event, MemberUpserted):
                self._move(event.member.chat_id, event.member.user_id, event.member.last_read_seq)
            elif isinstance(event, MemberRemoved) and event.chat_id in self._states:
                self._tasks.spawn(self._load(event.chat_id), f"read-positions-{event.chat_id}")

    def _move(self, chat_id: ChatId, user_id: UserId, last_read_seq: int) -> None:
        state = self._states.get(chat_id)
        if state is None:
            return
        moved = state.moved(user_id, last_read_seq)
        if user_id not in state.positions and state.complete:
            moved = moved.model_copy(update={"member_count": state.member_count + 1})
        if moved is not state:
            self._states[chat_id] = moved
            self._presence.reads_changed(moved)

    async def _load(self, chat_id: ChatId) -> None:
        try:
            read = await self._calls.call(
                "read_positions", lambda: self._backend.fetch_read_positions(chat_id, POSITIONS)
            )
        except DesktopChatError as error:
            log.info("Cannot load read positions of chat %s: %s", chat_id, type(error).__name__)
            return
        if chat_id not in self._states:
            return  # closed meanwhile
        state = ReadState.of(read, POSITIONS)
        current = self._states.get(chat_id)
        if current is not None:
            # A push that overtook the answer moved someone further: positions only move forward.
            for user, seq in current.positions.items():
                state = state.moved(user, seq)
        self._states[chat_id] = state
        self._presence.reads_changed(state)


__all__ = ["POSITIONS", "READ_EVENTS_UP_TO", "Receipts"]
