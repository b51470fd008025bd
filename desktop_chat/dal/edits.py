"""``Edits``: changes to rows that already exist: edit or delete a message, move the read position."""

from __future__ import annotations

from desktop_chat.backend.client import SupabaseBackend
from desktop_chat.dal.calls import BackendCalls
from desktop_chat.dal.live import LiveSync
from desktop_chat.errors import Rejected
from desktop_chat.models import ChatId, MessageId, MessageUpserted, UserId, validate_message_text


class Edits:
    """One signed-in user's edits, straight to Supabase; the stored row is applied like a realtime change."""

    def __init__(self, user: UserId, backend: SupabaseBackend, calls: BackendCalls, live: LiveSync) -> None:
        self._user = user
        self._backend = backend
        self._calls = calls
        self._live = live

    async def edit_message(self, message_id: MessageId, text: str) -> None:
        validate_message_text(text)
        stored = await self._calls.call("edit_message", lambda: self._backend.edit_message(message_id, text))
        if stored is None:
            raise Rejected("Only the sender can edit a message, and not after deleting it.")
        await self._live.apply_now([MessageUpserted(message=stored)])

    async def delete_message(self, message_id: MessageId) -> None:
        stored = await self._calls.call("delete_message", lambda: self._backend.delete_message(message_id))
        if stored is None:
            raise Rejected("Only the sender can delete a message.")
        await self._live.apply_now([MessageUpserted(message=stored)])

    async def mark_read(self, chat_id: ChatId, seq: int) -> None:
        if seq < 1:
            return
        if not self._live.mark_read_locally(chat_id, seq):
            return  # already read that far
        user = self._user
        stored = await self._calls.call("mark_read", lambda: self._backend.mark_read(chat_id, user, seq))
        if stored is None:
            raise Rejected("You are no longer in this chat.")
