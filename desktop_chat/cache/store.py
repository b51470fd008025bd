"""The one interface both cache tiers implement: opaque bytes under typed keys, with TTLs and caps.

Stores know nothing about models or encryption: ``TieredCache`` encodes before it stores and decodes
after it loads. What stores do know is the shape of the data:

- a plain value per key (``recent``, ``chat``): ``get``/``set``;
- a message list per key (``msgs``): items ordered by ``seq``, the newest ``max_messages_per_chat``
  kept, plus a *head* marker so that "cached, and the chat has no messages" differs from "not cached";
- a per-user index of cached chats, touched on every read and write of a chat's keys, which caps the
  chats per user (least recently used evicted first) and lets a user be purged without scanning.

TTLs come from the ``CachePolicy`` by key kind. ``tests/contract/test_cache_store.py`` holds both
implementations to the same behaviour.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from desktop_chat.cache.keys import CacheKey, KeyKind
from desktop_chat.cache.policy import CachePolicy
from desktop_chat.models import ChatId, UserId

__all__ = [
    "AppendResult",
    "CacheStore",
    "ListItem",
    "StoredList",
    "StoredValue",
    "require_list",
    "require_plain",
]

ListItem = tuple[int, bytes]
"""One list item: its ``seq`` and its encoded bytes."""


@dataclass(frozen=True, slots=True)
class StoredValue:
    data: bytes
    ttl: float | None  # seconds the store keeps it; None: no expiry


@dataclass(frozen=True, slots=True)
class StoredList:
    head: bytes
    items: tuple[ListItem, ...]  # ascending seq
    ttl: float | None


class AppendResult(StrEnum):
    """What ``append_list`` did."""

    APPLIED = "applied"  # the items are in the list (older than the cached window: skipped)
    NOT_CACHED = "not-cached"  # no list under the key; nothing written (a later load fills it)
    GAP = "gap"  # an item would leave a hole after the newest cached seq: the list was dropped


class CacheStore(ABC):
    """Async key-value store for encoded cache entries.

    Args:
        policy: TTLs and caps. Each store applies them itself, so both tiers behave alike.
    """

    tier: str  # "redis" or "memory", the metrics label

    def __init__(self, policy: CachePolicy) -> None:
        self.policy = policy

    # --- plain values ------------------------------------------------------------------------------
    @abstractmethod
    async def get(self, key: CacheKey) -> StoredValue | None:
        """The value under ``key`` (a ``recent`` or ``chat`` key) and its remaining TTL, or None."""

    @abstractmethod
    async def set(self, key: CacheKey, data: bytes) -> None:
        """Store ``data`` under ``key`` for the policy's TTL of its kind."""

    # --- message lists -----------------------------------------------------------------------------
    @abstractmethod
    async def get_list(self, key: CacheKey, limit: int) -> StoredList | None:
        """The newest ``limit`` items of the list under ``key``, ascending, or None if not cached."""

    @abstractmethod
    async def set_list(self, key: CacheKey, head: bytes, items: Sequence[ListItem]) -> None:
        """Replace the list under ``key``: ``head`` plus the newest capped ``items`` (seq unique)."""

    @abstractmethod
    async def append_list(self, key: CacheKey, items: Sequence[ListItem]) -> AppendResult:
        """Merge ``items`` into an existing list atomically and trim it to the newest capped items.

        An item replaces the one with the same ``seq`` (an edit). Items older than the oldest cached one
        are skipped, so the list stays the contiguous newest window of the chat; an item more than one
        past the newest cached ``seq`` means a message was missed, and the list is dropped (``GAP``).
        Refreshes the list's TTL.
        """

    # --- removal -----------------------------------------------------------------------------------
    @abstractmethod
    async def delete(self, *keys: CacheKey) -> None:
        """Remove these entries (missing ones are ignored)."""

    @abstractmethod
    async def delete_chat(self, user: UserId, chat_id: ChatId) -> None:
        """Remove one chat's entries of ``user`` and its index entry."""

    @abstractmethod
    async def purge_user(self, user: UserId) -> None:
        """Remove every entry of ``user`` (through the index, without scanning)."""

    @abstractmethod
    async def wipe(self) -> None:
        """Remove every cache entry of every user in this store's namespace."""

    @abstractmethod
    async def ensure_key_id(self, key_id: str) -> bool:
        """Claim the namespace for entries sealed with ``key_id``: wipe it unless it already is; True if wiped.

        Entries sealed with another key could never be read again; removing them at once frees their memory
        instead of one failed read at a time.
        """

    # --- inspection --------------------------------------------------------------------------------
    @abstractmethod
    async def ttl(self, key: CacheKey) -> float | None:
        """Seconds ``key`` has left in the store; None when it is not there."""

    @abstractmethod
    async def cached_chats(self, user: UserId) -> list[ChatId]:
        """``user``'s chats in the index, least recently used first."""

    @abstractmethod
    async def used_memory(self) -> int:
        """Bytes in use: Redis's ``used_memory``, or the memory tier's accounted bytes."""

    @abstractmethod
    async def probe(self) -> None:
        """Raise unless the store answers and accepts writes (the breaker's half-open check)."""

    @abstractmethod
    async def close(self) -> None:
        """Release connections; the store is unusable afterwards."""


def require_plain(key: CacheKey) -> None:
    """Refuse a message-list key where a plain value is expected (a caller's bug)."""
    if key.kind is KeyKind.MSGS:
        raise ValueError("message lists use get_list/set_list/append_list")


def require_list(key: CacheKey) -> None:
    """Refuse a plain-value key where a message list is expected (a caller's bug)."""
    if key.kind is not KeyKind.MSGS:
        raise ValueError(f"a {key.kind} key holds a plain value, not a list")
