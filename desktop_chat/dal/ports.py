"""What the data layer needs from the cache and the metrics registry, stated as protocols.

``ChatStore`` talks to these, not to Redis: the cache package provides the implementation (with its
memory tier, breaker and encryption), and unit tests can provide a dictionary.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from desktop_chat.dal.api import CacheState
from desktop_chat.dal.live_list import Unsubscribe
from desktop_chat.models import ChatDetails, ChatSummary, Message, SessionId, UserId

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Cached(Generic[T]):
    """A cache hit. ``fresh`` is False past the entry's TTL: serve it, and refresh in the background."""

    value: T
    fresh: bool = True
    tier: str = "redis"  # which tier answered: "redis" or "memory"


@dataclass(frozen=True, slots=True)
class MessageWindow:
    """The cached newest messages of a chat (confirmed only, ascending seq) and its back-fill cursor."""

    messages: tuple[Message, ...]
    cursor: int


class ChatCache(Protocol):
    """Typed, per-user cache entries. Never raises: a broken cache answers misses and drops writes."""

    @property
    def state(self) -> CacheState: ...

    def subscribe_state(self, listener: Callable[[CacheState], None]) -> Unsubscribe: ...

    async def get_recent(self, user: UserId) -> Cached[list[ChatSummary]] | None: ...

    async def put_recent(self, user: UserId, chats: Sequence[ChatSummary]) -> None: ...

    async def get_chat(self, user: UserId, session: SessionId) -> Cached[ChatDetails] | None: ...

    async def put_chat(self, user: UserId, details: ChatDetails) -> None: ...

    async def get_messages(self, user: UserId, session: SessionId) -> Cached[MessageWindow] | None: ...

    async def put_messages(self, user: UserId, session: SessionId, window: MessageWindow) -> None: ...

    async def forget_recent(self, user: UserId) -> None: ...

    async def forget_chat(self, user: UserId, session: SessionId) -> None:
        """Drop the chat's details entry (its messages stay)."""
        ...

    async def forget_chat_everything(self, user: UserId, session: SessionId) -> None:
        """Drop every entry of the chat (left, removed or deleted)."""
        ...

    async def purge_user(self, user: UserId) -> None: ...

    def snapshot(self) -> dict[str, Any]: ...

    async def close(self) -> None: ...


class StoreMetrics(Protocol):
    """The measurements the data layer reports."""

    def cache_lookup(self, kind: str, tier: str | None) -> None:
        """A cache read of ``kind`` (recent/chat/msgs) answered by ``tier``, or missed (None)."""
        ...

    def backend_call(self, operation: str, seconds: float, ok: bool) -> None: ...

    def realtime_lag(self, seconds: float) -> None: ...

    def count(self, name: str, amount: int = 1) -> None: ...

    def snapshot(self) -> dict[str, Any]: ...
