"""The domain rows: profiles, chats, members, messages, and the shapes the read path returns."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from desktop_chat.models.ids import ChatId, MessageId, UserId


class _Model(BaseModel):
    # Frozen: models are shared between cache, views and outbox. extra="ignore": a newer server may add
    # columns; validation of what we use stays strict.
    model_config = ConfigDict(frozen=True, extra="ignore")


class MemberRole(StrEnum):
    OWNER = "owner"
    MEMBER = "member"


class DeliveryState(StrEnum):
    """Where a message is in its life, from this client's point of view.

    ``PENDING``: in the outbox, not yet acknowledged by the server (no ``seq`` yet).
    ``SENT``: stored by the server; has its ``seq``, ``rev`` and ``created_at``.
    ``FAILED``: the server refused it for good; ``error`` says why. Retry keeps the same id.
    """

    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


class Profile(_Model):
    id: UserId
    display_name: str = Field(min_length=1, max_length=100)


class Chat(_Model):
    """A row of ``chat_sessions``: one chat (the table keeps its historical name)."""

    id: ChatId
    title: str = Field(min_length=1, max_length=200)
    created_by: UserId | None = None
    created_at: datetime
    updated_at: datetime
    last_message_at: datetime | None = None
    last_seq: int = Field(default=0, ge=0)
    last_rev: int = Field(default=0, ge=0)
    deleted_at: datetime | None = None

    @property
    def deleted(self) -> bool:
        return self.deleted_at is not None


# The column is ``session_id`` (the table names predate "chat"); code says chat_id.
_CHAT_ID_COLUMN = AliasChoices("chat_id", "session_id")


class ChatMember(_Model):
    chat_id: ChatId = Field(validation_alias=_CHAT_ID_COLUMN)
    user_id: UserId
    role: MemberRole = MemberRole.MEMBER
    joined_at: datetime
    last_read_seq: int = Field(default=0, ge=0)
    display_name: str | None = None  # from profiles, when the query joined it


class Message(_Model):
    """One message. Confirmed rows have ``seq``/``rev``; pending and failed ones do not yet."""

    id: MessageId
    chat_id: ChatId = Field(validation_alias=_CHAT_ID_COLUMN)
    sender_id: UserId | None
    content: str = Field(max_length=8000)
    created_at: datetime
    edited_at: datetime | None = None
    deleted_at: datetime | None = None
    seq: int | None = Field(default=None, ge=1)
    rev: int | None = Field(default=None, ge=1)
    delivery: DeliveryState = DeliveryState.SENT
    error: str | None = None  # why a FAILED message failed, in plain words

    @property
    def deleted(self) -> bool:
        return self.deleted_at is not None

    @property
    def edited(self) -> bool:
        return self.edited_at is not None


class ChatSummary(_Model):
    """One row of the recent-chats list."""

    chat: Chat
    role: MemberRole
    last_read_seq: int = Field(default=0, ge=0)
    unread_count: int = Field(default=0, ge=0)
    last_message: Message | None = None
    # This user's newest message that is not on the server yet (pending or failed), set by this client.
    waiting: Message | None = None

    @property
    def last_activity(self) -> datetime:
        activity = self.chat.last_message_at or self.chat.created_at
        if self.waiting is not None and self.waiting.created_at > activity:
            return self.waiting.created_at
        return activity


class ChatDetails(_Model):
    """A chat with its members (the "active chat" cache entry)."""

    chat: Chat = Field(validation_alias=AliasChoices("chat", "session"))  # ``chat_details()`` says "session"
    members: tuple[ChatMember, ...] = ()


class MessagePage(_Model):
    """Messages of one chat in ascending ``seq`` order, and whether older ones exist."""

    chat_id: ChatId
    messages: tuple[Message, ...] = ()
    has_more: bool = False
