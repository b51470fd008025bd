"""The private Realtime topics the app joins, by name. Pure.

The schema (``supabase/migrations/20261127120000_realtime_private_topics.sql``) authorizes exactly these
names, written with the canonical lowercase text of a uuid and nothing around it:

- ``user:<user id>``: only that user reads it; the database writes the user's own membership changes
  (read position included), renames and deletes of their chats, and a compact ``activity`` notice per new
  message. The app joins it for as long as the user is signed in.
- ``chat:<chat id>``: the chat's members read it; only the database broadcasts there (message inserts,
  edits and soft deletes, the chat's rename, delete and purge, membership changes). Members track their
  presence on it.
- ``chat:<chat id>:typing``: the members read it and broadcast their typing on it (a topic of its own, so
  that the right to broadcast typing is no right to forge a ``message`` event on ``chat:<id>``).
"""

from __future__ import annotations

import uuid

from desktop_chat.models import ChatId, UserId

CLIENT_PREFIX = "realtime:"  # the official client puts this before a channel's topic on the wire


def user_topic(user_id: UserId) -> str:
    return f"user:{user_id}"


def chat_topic(chat_id: ChatId) -> str:
    return f"chat:{chat_id}"


def typing_topic(chat_id: ChatId) -> str:
    return f"chat:{chat_id}:typing"


def topic_kind(topic: str) -> str:
    """``user``, ``chat`` or ``typing`` (for metrics: a topic's name holds ids)."""
    name = topic.removeprefix(CLIENT_PREFIX)
    return "typing" if name.endswith(":typing") else name.split(":", 1)[0]


def chat_of(topic: str) -> ChatId | None:
    """The chat a ``chat:<id>`` or ``chat:<id>:typing`` topic belongs to (the client's prefix allowed)."""
    name = topic.removeprefix(CLIENT_PREFIX)
    if not name.startswith("chat:"):
        return None
    try:
        return ChatId(uuid.UUID(name[len("chat:") :].removesuffix(":typing")))
    except ValueError:
        return None
