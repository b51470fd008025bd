"""The in-process tier: a bounded LRU with TTLs, behaving like the Redis store.

It serves while Redis is down, slow or full, and alone when there is no Redis. Bounded by entries and by
bytes (the encoded values plus a fixed per-entry overhead); the least recently used entries go first.
All methods run on the event loop's thread and never await, so each is atomic like a Redis script.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from desktop_chat.cache.keys import CacheKey, chat_key, msgs_key
from desktop_chat.cache.policy import CachePolicy, chat_victims, newest_by_seq
from desktop_chat.cache.store import (
    AppendResult,
    CacheStore,
    ListItem,
    StoredList,
    StoredValue,
    require_list,
    require_plain,
)
from desktop_chat.models import ChatId, UserId

__all__ = ["ENTRY_OVERHEAD", "ITEM_OVERHEAD", "MemoryCacheStore"]

# Rough Python object overhead, so that many tiny entries still count against the byte bound.
ENTRY_OVERHEAD = 200
ITEM_OVERHEAD = 80


@dataclass(slots=True)
class _Entry:
    expires_at: float
    data: bytes = b""
    head: bytes | None = None  # set for a message list
    items: dict[int, bytes] = field(default_factory=dict)
    size: int = 0

    def measure(self) -> int:
        self.size = ENTRY_OVERHEAD + len(self.data) + len(self.head or b"")
        self.size += sum(ITEM_OVERHEAD + len(blob) for blob in self.items.values())
        return self.size


class MemoryCacheStore(CacheStore):
    """A bounded, expiring LRU of cache entries.

    Args:
        policy: TTLs and caps.
        max_entries: Most entries held (0 holds nothing).
        max_bytes: Most accounted bytes held.
        clock: Monotonic seconds; tests pass their own to expire entries without waiting.
    """

    tier = "memory"

    def __init__(
        self,
        policy: CachePolicy,
        *,
        max_entries: int = 2000,
        max_bytes: int = 32 * 1024 * 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(policy)
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._clock = clock
        self._entries: OrderedDict[CacheKey, _Entry] = OrderedDict()
        self._bytes = 0
        # Per user, the cached chats from least to most recently used (the Redis index's twin).
        self._chats: dict[UserId, OrderedDict[ChatId, None]] = {}
        self._key_id: str | None = None

    @property
    def entry_count(self) -> int:
        return len(self._entries)

    def cached_keys(self) -> list[CacheKey]:
        """The keys held, least recently used first (expired ones included until touched)."""
        return list(self._entries)

    @property
    def used_bytes(self) -> int:
        """Accounted bytes: encoded values plus a fixed overhead per entry and per list item."""
        return self._bytes

    # --- internals ---------------------------------------------------------------------------------
    def _live(self, key: CacheKey) -> _Entry | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires_at <= self._clock():
            self._remove(key)
            return None
        self._entries.move_to_end(key)
        return entry

    def _remove(self, key: CacheKey) -> None:
        entry = self._entries.pop(key, None)
        if entry is None:
            return
        self._bytes -= entry.size
        if (
            key.chat_id is not None
            and chat_key(key.user, key.chat_id) not in self._entries
            and msgs_key(key.user, key.chat_id) not in self._entries
        ):
            self._forget_chat(key.user, key.chat_id)

    def _forget_chat(self, user: UserId, chat_id: ChatId) -> None:
        chats = self._chats.get(user)
        if chats is not None:
            chats.pop(chat_id, None)
            if not chats:
                del self._chats[user]

    def _put(self, key: CacheKey, entry: _Entry) -> None:
        self._remove(key)
        self._touch(key)
        self._entries[key] = entry
        self._bytes += entry.measure()
        self._shrink()

    def _resized(self, entry: _Entry) -> None:
        before = entry.size
        self._bytes += entry.measure() - before
        self._shrink()

    def _shrink(self) -> None:
        while self._entries and (len(self._entries) > self.max_entries or self._bytes > self.max_bytes):
            self._remove(next(iter(self._entries)))

    def _touch(self, key: CacheKey) -> None:
        """Mark ``key``'s chat as just used and evict the user's least recently used chats over the cap."""
        if key.chat_id is None:
            return
        chats = self._chats.setdefault(key.user, OrderedDict())
        chats[key.chat_id] = None
        chats.move_to_end(key.chat_id)
        for victim in chat_victims(list(chats), self.policy.max_chats_per_user, keep=key.chat_id):
            self._remove(chat_key(key.user, victim))
            self._remove(msgs_key(key.user, victim))
            self._forget_chat(key.user, victim)

    def _expiry(self, key: CacheKey) -> float:
        return self._clock() + self.policy.store_ttl(key.kind)

    # --- plain values ------------------------------------------------------------------------------
    async def get(self, key: CacheKey) -> StoredValue | None:
        require_plain(key)
        entry = self._live(key)
        if entry is None:
            return None
        self._touch(key)
        return StoredValue(entry.data, entry.expires_at - self._clock())

    async def set(self, key: CacheKey, data: bytes) -> None:
        require_plain(key)
        self._put(key, _Entry(expires_at=self._expiry(key), data=data))

    # --- message lists -----------------------------------------------------------------------------
    async def get_list(self, key: CacheKey, limit: int) -> StoredList | None:
        require_list(key)
        entry = self._live(key)
        if entry is None or entry.head is None:
            return None
        self._touch(key)
        newest = sorted(entry.items)[-limit:] if limit > 0 else []
        return StoredList(
            entry.head, tuple((seq, entry.items[seq]) for seq in newest), entry.expires_at - self._clock()
        )

    async def set_list(self, key: CacheKey, head: bytes, items: Sequence[ListItem]) -> None:
        require_list(key)
        kept = self.policy.trim_messages(items, seq=lambda item: item[0])
        self._put(key, _Entry(expires_at=self._expiry(key), head=head, items=dict(kept)))

    async def append_list(self, key: CacheKey, items: Sequence[ListItem]) -> AppendResult:
        require_list(key)
        entry = self._live(key)
        if entry is None or entry.head is None:
            return AppendResult.NOT_CACHED
        merged = dict(entry.items)
        floor = min(merged) if merged else None
        top = max(merged) if merged else 0
        for seq, blob in sorted(items, key=lambda item: item[0]):
            if floor is not None and seq < floor:
                continue  # older than the window: not cached, nothing to update
            if seq > top + 1:
                self._remove(key)
                return AppendResult.GAP
            merged[seq] = blob
            top = max(top, seq)
        entry.items = dict(newest_by_seq(merged.items(), lambda item: item[0], self.policy.max_messages_per_chat))
        entry.expires_at = self._expiry(key)
        self._touch(key)
        if key in self._entries:  # the cap may have evicted it (its own chat never, but be sure)
            self._resized(entry)
        return AppendResult.APPLIED

    # --- removal -----------------------------------------------------------------------------------
    async def delete(self, *keys: CacheKey) -> None:
        for key in keys:
            self._remove(key)

    async def delete_chat(self, user: UserId, chat_id: ChatId) -> None:
        self._remove(chat_key(user, chat_id))
        self._remove(msgs_key(user, chat_id))
        self._forget_chat(user, chat_id)

    async def purge_user(self, user: UserId) -> None:
        for key in [key for key in self._entries if key.user == user]:
            self._remove(key)
        self._chats.pop(user, None)

    async def wipe(self) -> None:
        self._entries.clear()
        self._chats.clear()
        self._bytes = 0

    async def ensure_key_id(self, key_id: str) -> bool:
        if self._key_id == key_id:
            return False
        await self.wipe()
        self._key_id = key_id
        return True

    # --- inspection --------------------------------------------------------------------------------
    async def ttl(self, key: CacheKey) -> float | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        remaining = entry.expires_at - self._clock()
        if remaining <= 0:
            self._remove(key)
            return None
        return remaining

    async def cached_chats(self, user: UserId) -> list[ChatId]:
        return list(self._chats.get(user, ()))

    async def used_memory(self) -> int:
        return self._bytes

    async def probe(self) -> None:
        return None  # in-process: always there

    async def close(self) -> None:
        await self.wipe()
