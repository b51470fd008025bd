"""Change events: what realtime pushes, back-fill and local writes tell the data layer.

They are facts about the server's state ("this row now looks like this"), applied to the cache first and
then turned into row changes for the views. Applying the same event twice is harmless.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from desktop_chat.models.entities import Chat, ChatMember, Message
from desktop_chat.models.ids import ChatId, UserId


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True)


class MessageUpserted(_Event):
    """A message was inserted, edited or soft-deleted (``message.rev`` tells which version)."""

    message: Message


class ChatUpserted(_Event):
    """A chat was created, renamed, soft-deleted or got a new message (its counters moved)."""

    chat: Chat


class ChatRemoved(_Event):
    """A chat is gone for this user: deleted, or the user is no longer a member."""

    chat_id: ChatId


class MemberUpserted(_Event):
    member: ChatMember


class MemberRemoved(_Event):
    chat_id: ChatId
    user_id: UserId


class MessageNoticed(_Event):
    """A new message as its chat's ``activity`` notice announces it: enough to move the chat up the list,
    count it unread and notify. Its ``content`` is only the first 100 characters; the message itself
    comes with the chat's own topic or a back-fill."""

    message: Message


class ReadMoved(_Event):
    """A member of a chat of at most 50 read up to ``last_read_seq``: the compact ``read`` event on
    ``chat:<id>`` (bigger chats send none; their read positions are reloaded instead)."""

    chat_id: ChatId
    user_id: UserId
    last_read_seq: int


ChangeEvent = MessageUpserted | ChatUpserted | ChatRemoved | MemberUpserted | MemberRemoved | MessageNoticed | ReadMoved
