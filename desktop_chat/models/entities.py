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


class ReactionCount(_Model):
    """How many people reacted to a message with one emoji (an item of ``Message.reactions``)."""

    emoji: str = Field(min_length=1, max_length=16)
    count: int = Field(ge=1)


class Message(_Model):
    """One message. Confirmed rows have ``seq``/``rev``; pending and failed ones do not yet.

    ``reply_to`` is the message of the same chat this one answers (the database refuses another chat's).
    ``reactions`` are the counts per emoji, in the order the emoji were first used; the server keeps
    them on the message row and every change of them takes a new ``rev``, so they arrive wherever the
    message does (reads, back-fill, the ``message`` broadcast). Who reacted comes from
    ``SupabaseBackend.fetch_reactions``.
    """

    id: MessageId
    chat_id: ChatId = Field(validation_alias=_CHAT_ID_COLUMN)
    sender_id: UserId | None
    content: str = Field(max_length=8000)
    created_at: datetime
    edited_at: datetime | None = None
    deleted_at: datetime | None = None
    seq: int | None = Field(default=None, ge=1)
    rev: int | None = Field(default=None, ge=1)
    reply_to: MessageId | None = None
    reactions: tuple[ReactionCount, ...] = ()
    delivery: DeliveryState = DeliveryState.SENT
    error: str | None = None  # why a FAILED message failed, in plain words

    @property
    def deleted(self) -> bool:
        return self.deleted_at is not None

    @property
    def edited(self) -> bool:
        return self.edited_at is not None


class ChatSummary(_Model):
    """One row of the chat list.

    ``unread_count`` is the server's arithmetic (messages above the read position, one's own left out);
    ``activity_at`` is where the server's list placed the chat (its activity as of the last fan-out, up to
    2 s behind ``chat.last_message_at``): the key to ask for the page after it. Rows made before it
    existed have none.
    """

    chat: Chat
    role: MemberRole
    last_read_seq: int = Field(default=0, ge=0)
    unread_count: int = Field(default=0, ge=0)
    last_message: Message | None = None
    activity_at: datetime | None = None
    # This user's newest message that is not on the server yet (pending or failed), set by this client.
    waiting: Message | None = None

    @property
    def list_key(self) -> ChatListKey | None:
        """The row's place in the server's list (None when the row did not come from it)."""
        if self.activity_at is None:
            return None
        return ChatListKey(activity_at=self.activity_at, chat_id=self.chat.id)

    @property
    def last_activity(self) -> datetime:
        activity = self.chat.last_message_at or self.chat.created_at
        if self.waiting is not None and self.waiting.created_at > activity:
            return self.waiting.created_at
        return activity


class ChatListKey(_Model):
    """A place in the chat list, newest activity first: the page after it starts below it."""

    activity_at: datetime
    chat_id: ChatId

    def __lt__(self, other: ChatListKey) -> bool:
        """Whether this place comes *later* in the list (older activity) than ``other``."""
        return (self.activity_at, str(self.chat_id)) < (other.activity_at, str(other.chat_id))


class ChatDetails(_Model):
    """A chat with the members the chat view needs names for (the "active chat" cache entry).

    ``members`` holds every member of a small chat; of a big one, the first to join and the recent
    senders (the members dialog pages through the rest). ``member_count`` counts them all (None in an
    entry cached before it existed: then ``members`` is all of them).
    """

    chat: Chat = Field(validation_alias=AliasChoices("chat", "session"))  # ``chat_details()`` says "session"
    members: tuple[ChatMember, ...] = ()
    member_count: int | None = Field(default=None, ge=0)

    @property
    def members_total(self) -> int:
        return self.member_count if self.member_count is not None else len(self.members)


class MemberPage(_Model):
    """Members of a chat in joining order, one page of them; ``member_count`` is on the first page only."""

    chat_id: ChatId
    members: tuple[ChatMember, ...] = ()
    member_count: int | None = Field(default=None, ge=0)
    has_more: bool = False


class ChatChanges(_Model):
    """What a back-fill found for one chat: its messages above the cursor (by rev), or that it is gone.

    ``more``: the chat has changes beyond these (ask again from the last rev). ``gone``: the user can no
    longer see the chat (left, removed, deleted).
    """

    chat_id: ChatId
    last_rev: int | None = Field(default=None, ge=0)
    last_seq: int | None = Field(default=None, ge=0)
    gone: bool = False
    more: bool = False
    messages: tuple[Message, ...] = ()


class MessagePage(_Model):
    """Messages of one chat in ascending ``seq`` order, and whether older ones exist."""

    chat_id: ChatId
    messages: tuple[Message, ...] = ()
    has_more: bool = False
