"""How long entries live and how much is kept: TTLs per key kind, staleness, caps. Pure.

An entry is *fresh* for its kind's TTL. The stores keep it ``stale_grace`` seconds longer (``cache_keep_days``,
30 days by default), during which a read still returns it, marked stale, so the data layer shows it while
one refresh runs (stale-while-revalidate), and an offline start shows the last chats and messages the
app had. TTLs decide when to revalidate, not whether to show; after the grace the entry is gone.
Freshness normally comes from events; TTLs are the safety net.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from desktop_chat.cache.keys import KeyKind
from desktop_chat.config import Settings
from desktop_chat.models import ChatId

__all__ = ["CachePolicy", "chat_victims", "newest_by_seq"]

T = TypeVar("T")
DAY = 24 * 3600.0


@dataclass(frozen=True, slots=True)
class CachePolicy:
    """TTLs (seconds) and caps, normally built from ``Settings`` with ``from_settings``."""

    ttl_recent: float = 300.0
    ttl_chat: float = 1800.0
    ttl_messages: float = 900.0
    stale_grace: float = 60.0
    max_messages_per_chat: int = 200
    max_chats_per_user: int = 200

    def __post_init__(self) -> None:
        if min(self.ttl_recent, self.ttl_chat, self.ttl_messages) <= 0 or self.stale_grace < 0:
            raise ValueError("TTLs must be positive and the stale grace not negative")
        if self.max_messages_per_chat < 1 or self.max_chats_per_user < 1:
            raise ValueError("caps must be at least 1")

    @classmethod
    def from_settings(cls, settings: Settings) -> CachePolicy:
        return cls(
            ttl_recent=float(settings.cache_ttl_recent),
            ttl_chat=float(settings.cache_ttl_chat),
            ttl_messages=float(settings.cache_ttl_messages),
            stale_grace=settings.cache_keep_days * DAY,
            max_messages_per_chat=settings.cache_max_messages_per_chat,
            max_chats_per_user=settings.cache_max_chats_per_user,
        )

    def fresh_ttl(self, kind: KeyKind) -> float:
        """How long an entry of ``kind`` counts as fresh."""
        if kind is KeyKind.RECENT:
            return self.ttl_recent
        if kind is KeyKind.CHAT:
            return self.ttl_chat
        return self.ttl_messages

    def store_ttl(self, kind: KeyKind) -> float:
        """How long a store keeps an entry of ``kind``: fresh, then stale for the grace period."""
        return self.fresh_ttl(kind) + self.stale_grace

    @property
    def index_ttl(self) -> float:
        """The per-user chat index outlives every per-chat entry it lists."""
        return max(self.store_ttl(KeyKind.CHAT), self.store_ttl(KeyKind.MSGS))

    def is_fresh(self, remaining: float | None) -> bool:
        """Whether an entry with ``remaining`` seconds left in its store is still within its TTL."""
        return remaining is None or remaining > self.stale_grace

    def trim_messages(self, items: Iterable[T], seq: Callable[[T], int]) -> list[T]:
        return newest_by_seq(items, seq, self.max_messages_per_chat)


def newest_by_seq(items: Iterable[T], seq: Callable[[T], int], limit: int) -> list[T]:
    """The ``limit`` items with the highest ``seq``, in ascending order; a later duplicate seq wins."""
    by_seq: dict[int, T] = {}
    for item in items:
        by_seq[seq(item)] = item
    return [by_seq[s] for s in sorted(by_seq)[-limit:]] if limit > 0 else []


def chat_victims(lru_order: Sequence[ChatId], cap: int, keep: ChatId | None = None) -> list[ChatId]:
    """Chats to evict so at most ``cap`` remain: the least recently used first, never ``keep``.

    Args:
        lru_order: The user's cached chats, least recently used first.
        cap: How many chats may stay.
        keep: The chat being used right now (it stays even if the clock made it look old).
    """
    excess = len(lru_order) - cap
    if excess <= 0:
        return []
    victims: list[ChatId] = []
    for chat_id in lru_order:
        if len(victims) == excess:
            break
        if chat_id != keep:
            victims.append(chat_id)
    return victims
