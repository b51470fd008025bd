"""Typed ids. All three are UUIDs on the wire; the types keep a chat id from being passed as a user id.

- ``UserId``: ``auth.users.id`` (and ``profiles.id``).
- ``ChatId``: ``chat_sessions.id``, a chat (the table and its ``session_id`` columns keep their names).
- ``MessageId``: ``chat_messages.id``. Made by the sending client as a UUIDv7 (time-ordered, so the
  primary key index stays append-mostly) and used as the idempotency key of a send.
"""

from __future__ import annotations

from typing import NewType
from uuid import UUID

from uuid_utils.compat import uuid7

UserId = NewType("UserId", UUID)
ChatId = NewType("ChatId", UUID)
MessageId = NewType("MessageId", UUID)


def new_message_id() -> MessageId:
    """A fresh UUIDv7 message id."""
    return MessageId(uuid7())


def new_chat_id() -> ChatId:
    """A fresh UUIDv7 chat id (client-generated so a chat can be created with ``return=minimal``)."""
    return ChatId(uuid7())
