"""``Edits``: changes to rows that already exist: edit or delete a message, move the read position.

A read position that cannot reach the server (offline) is kept and sent again when it can
(``resend_reads``, on reconnect); until the server has it, the chat list keeps showing it as read.
"""

from __future__ import annotations

from desktop_chat.backend.client import SupabaseBackend
from desktop_chat.dal.calls import BackendCalls
from desktop_chat.dal.live import LiveSync
from desktop_chat.errors import BackendUnavailable, Rejected
from desktop_chat.models import ChatId, MessageId, MessageUpserted, UserId, validate_message_text


class Edits:
    """One signed-in user's edits, straight to Supabase; the stored row is applied like a realtime change."""

    def __init__(self, user: UserId, backend: SupabaseBackend, calls: BackendCalls, live: LiveSync) -> None:
        self._user = user
        self._backend = backend
        self._calls = calls
        self._live = live
        self._unsent_reads: dict[ChatId, int] = {}

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
        """Move the read position; offline it is kept and sent when the server answers again."""
        if seq < 1:
            return
        if not self._live.mark_read_locally(chat_id, seq):
            return  # already read that far
        await self._send_read(chat_id, seq)

    @property
    def unsent_reads(self) -> dict[ChatId, int]:
        return dict(self._unsent_reads)

    async def resend_reads(self) -> None:
        """Send the read positions that could not be sent (the server is back)."""
        for chat_id, seq in list(self._unsent_reads.items()):
            if self._unsent_reads.get(chat_id) != seq:
                continue  # a newer one went out meanwhile
            try:
                await self._send_read(chat_id, seq)
            except Rejected:
                self._unsent_reads.pop(chat_id, None)  # no longer in the chat: nothing left to mark
            if chat_id in self._unsent_reads:
                return  # still offline: try the rest next time

    async def _send_read(self, chat_id: ChatId, seq: int) -> None:
        user = self._user
        try:
            stored = await self._calls.call("mark_read", lambda: self._backend.mark_read(chat_id, user, seq))
        except BackendUnavailable:
            self._unsent_reads[chat_id] = max(seq, self._unsent_reads.get(chat_id, 0))
            return  # kept; the status bar already says the server cannot be reached
        if self._unsent_reads.get(chat_id, 0) <= seq:
            self._unsent_reads.pop(chat_id, None)
        if stored is None:
            self._live.read_confirmed(chat_id, seq)
            raise Rejected("You are no longer in this chat.")
        self._live.read_confirmed(chat_id, seq)
