"""``Receipts``: where the members of the open chats have read to, for ticks and "Seen by N".

Loaded with ``read_positions()`` when a chat opens (and again when the link comes back: pushes were
missed); kept current by the ``chat_members`` changes the user's channel already receives (every member's
row is pushed to every member when its ``last_read_seq`` moves), folded by the pure ``ReadState.moved``.
A chat with more members than ``POSITIONS`` keeps the furthest ones: its counts are lower bounds.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from desktop_chat.backend.client import SupabaseBackend
from desktop_chat.dal.calls import BackendCalls
from desktop_chat.dal.presence import Presence
from desktop_chat.dal.tasks import TaskGroup
from desktop_chat.errors import DesktopChatError
from desktop_chat.models import ChangeEvent, ChatId, MemberRemoved, MemberUpserted, ReadState

log = logging.getLogger(__name__)

POSITIONS = 500  # read_positions() answers with at most this many members, furthest first


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

    def unwatch(self, chat_id: ChatId) -> None:
        self._states.pop(chat_id, None)

    def state(self, chat_id: ChatId) -> ReadState | None:
        return self._states.get(chat_id)

    def reload(self) -> None:
        """The link is back: read positions may have moved unseen."""
        for chat_id in list(self._states):
            self._tasks.spawn(self._load(chat_id), f"read-positions-{chat_id}")

    def on_events(self, events: Sequence[ChangeEvent]) -> None:
        """Changes from the user's channel: members' rows move read positions."""
        for event in events:
            if isinstance(event, MemberUpserted):
                member = event.member
                state = self._states.get(member.chat_id)
                if state is None:
                    continue
                moved = state.moved(member.user_id, member.last_read_seq)
                if member.user_id not in state.positions and state.complete:
                    moved = moved.model_copy(update={"member_count": state.member_count + 1})
                if moved is not state:
                    self._states[member.chat_id] = moved
                    self._presence.reads_changed(moved)
            elif isinstance(event, MemberRemoved) and event.chat_id in self._states:
                self._tasks.spawn(self._load(event.chat_id), f"read-positions-{event.chat_id}")

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


__all__ = ["POSITIONS", "Receipts"]
