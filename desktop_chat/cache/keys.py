"""The key scheme: which Redis key holds what, for whom. Pure.

Every key carries the signed-in user, so one user's entries can never be read through another user's
key (the codec additionally binds each value to its key, see ``codec``)::

    dc:v1:{user}:recent             recent chats of {user}                       (KeyKind.RECENT)
    dc:v1:{user}:chat:{chat}        one chat's details and members               (KeyKind.CHAT)
    dc:v1:{user}:msgs:{chat}        the newest messages of one chat, by seq      (KeyKind.MSGS)
    dc:v1:{user}:chats              index: the user's cached chats, scored by last use
    dc:v1:meta:key-id               which encryption key wrote this namespace
    dc:v1:meta:probe                written by the breaker's probe

The index lets a user's keys be purged, and the per-user chat cap enforced, without ``SCAN``. Ids are
canonical lower-case UUIDs, so ``meta`` can never collide with a user.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from uuid import UUID

from desktop_chat.models import ChatId, UserId

__all__ = [
    "META_KEY_ID",
    "NAMESPACE",
    "NAMESPACE_PATTERN",
    "PROBE_KEY",
    "CacheKey",
    "KeyKind",
    "chat_key",
    "chats_index_key",
    "msgs_key",
    "parse_key",
    "recent_key",
]

NAMESPACE = "dc:v1"
NAMESPACE_PATTERN = f"{NAMESPACE}:*"
META_KEY_ID = f"{NAMESPACE}:meta:key-id"
PROBE_KEY = f"{NAMESPACE}:meta:probe"


class KeyKind(StrEnum):
    """What a key holds; TTLs, metrics and codecs are chosen by kind."""

    RECENT = "recent"
    CHAT = "chat"
    MSGS = "msgs"


@dataclass(frozen=True, slots=True)
class CacheKey:
    """One cache entry of one user. ``chat_id`` is set exactly for the per-chat kinds."""

    user: UserId
    kind: KeyKind
    chat_id: ChatId | None = None
    # Built once: formatting two UUIDs costs more than decrypting a message, and reads use it per item.
    _name: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if (self.kind is KeyKind.RECENT) != (self.chat_id is None):
            raise ValueError(f"a {self.kind} key {'takes no' if self.kind is KeyKind.RECENT else 'needs a'} chat")
        suffix = "" if self.chat_id is None else f":{self.chat_id}"
        object.__setattr__(self, "_name", f"{NAMESPACE}:{self.user}:{self.kind}{suffix}")

    @property
    def redis_key(self) -> str:
        return self._name

    def __str__(self) -> str:
        return self.redis_key


def recent_key(user: UserId) -> CacheKey:
    return CacheKey(user, KeyKind.RECENT)


def chat_key(user: UserId, chat_id: ChatId) -> CacheKey:
    return CacheKey(user, KeyKind.CHAT, chat_id)


def msgs_key(user: UserId, chat_id: ChatId) -> CacheKey:
    return CacheKey(user, KeyKind.MSGS, chat_id)


def chats_index_key(user: UserId) -> str:
    """The sorted set of ``user``'s cached chat ids, scored by the time they were last used."""
    return f"{NAMESPACE}:{user}:chats"


def parse_key(text: str) -> CacheKey:
    """The ``CacheKey`` a Redis key string names; ``ValueError`` for anything else (index, meta)."""
    parts = text.split(":")
    if len(parts) < 4 or f"{parts[0]}:{parts[1]}" != NAMESPACE:
        raise ValueError(f"not a cache entry key: {text!r}")
    if len(parts) > 5:
        raise ValueError(f"not a cache entry key: {text!r}")
    try:
        chat_id = ChatId(UUID(parts[4])) if len(parts) == 5 else None
        key = CacheKey(UserId(UUID(parts[2])), KeyKind(parts[3]), chat_id)
    except ValueError:
        raise ValueError(f"not a cache entry key: {text!r}") from None
    if key.redis_key != text:  # e.g. an upper-case UUID: not how we write keys
        raise ValueError(f"not a canonical cache entry key: {text!r}")
    return key
