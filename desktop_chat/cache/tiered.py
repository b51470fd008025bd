"""``TieredCache``: the typed cache the data layer uses, Redis first and the memory tier as fallback.

Routing: while the circuit breaker is closed every call goes to Redis. A Redis error, timeout or OOM, or
repeated slowness, opens the breaker; from then on every call goes to the in-process memory tier and
nothing is raised to the caller. A background probe (``PING`` plus a small write) runs after a backoff;
when it succeeds Redis is brought up to date with what it missed, and only that: every key written or
invalidated meanwhile (or whose Redis write failed) gets the memory tier's entry, or is deleted when the
memory tier has none; a user purged meanwhile is purged (a wipe is replayed); everything else in Redis
stays. Then the memory tier is emptied and Redis is used again. ``close()`` makes one last bounded attempt
at this, so a clean quit after an outage (e.g. a busy machine making Redis look slow) leaves Redis, and
the snapshot the app's own Redis writes when it stops, as complete as the memory tier was.

Hot windows: the decoded message windows last read from Redis (``HOT_WINDOWS`` chats) are kept in process
and answer ``get_messages`` again without a Redis round trip or a decrypt, for as long as nothing of this
cache wrote, appended to, invalidated or purged the key since the read began (the load-token generations
below) and the TTL Redis reported has not run out. A round trip to another process costs a scheduler
wake-up of redis-server, which on a loaded machine is most of a cached page read. Everything that changes
a key goes through this class (one app instance owns its Redis namespace), so a hot window is never staler
than what Redis holds, except when something outside the app deletes keys, which only loses a cache.

Writes and invalidations of one user run one at a time, in call order, and finish even if the caller is
cancelled, so Redis never ends up applying an older write after a newer invalidation. Each returns once
its tier has it.

Consistency with loads: ``begin_load(key)`` returns a token; a ``set_*`` given that token is skipped
(returns False) when the key was written, appended to or invalidated since, so a slow load cannot put
back data that an event already replaced.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Generic, TypeVar

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import OutOfMemoryError, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from desktop_chat.cache.breaker import BreakerChange, BreakerState, CircuitBreaker, FailureKind
from desktop_chat.cache.codec import Codec, CodecError
from desktop_chat.cache.keys import CacheKey, KeyKind, chat_key, msgs_key, recent_key
from desktop_chat.cache.policy import CachePolicy
from desktop_chat.cache.store import AppendResult, CacheStore
from desktop_chat.models import ChatDetails, ChatId, ChatSummary, Message, UserId
from desktop_chat.telemetry.metrics import (
    BREAKER_OPEN,
    BREAKER_TRANSITIONS,
    CACHE_HITS,
    CACHE_LATENCY,
    CACHE_MISSES,
    ERRORS,
    MEMORY_TIER_BYTES,
    MEMORY_TIER_ENTRIES,
    REDIS_USED_MEMORY,
    MetricsRegistry,
)

__all__ = ["CacheStatus", "Cached", "LoadToken", "StatusListener", "TieredCache", "classify_redis_error"]

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


class CacheStatus(StrEnum):
    """What the status bar says about the cache (``StoreStatus.cache`` carries it as it is)."""

    ONLINE = "online"  # Redis holds the cache
    OFFLINE = "offline"  # Redis is down, slow or full: the in-process tier serves ("cache offline")
    MEMORY_ONLY = "memory-only"  # there is no Redis (none configured and no redis-server found)
    DISABLED = "disabled"  # caching is off in the settings


StatusListener = Callable[[CacheStatus, str], None]


@dataclass(frozen=True, slots=True)
class Cached(Generic[T]):
    """A cache hit. ``fresh`` is False within the stale grace after the TTL: show it, and refresh."""

    value: T
    fresh: bool
    tier: str


@dataclass(frozen=True, slots=True)
class LoadToken:
    """Taken before loading ``key`` from Supabase; hand it to the ``set_*`` call that stores the result."""

    key: CacheKey
    generation: int


@dataclass(frozen=True, slots=True)
class _HotWindow:
    """A decoded message window as read from Redis (see "Hot windows" in the module docstring)."""

    read_at: LoadToken  # the generation when the read began: any change of the key since makes it stale
    messages: tuple[Message, ...]
    complete: bool  # the whole cached window (else only its newest ``len(messages)``)
    expires_at: float | None  # clock() when Redis drops the entry; None: no expiry
    until: float  # clock() after which Redis is read again (``HOT_SECONDS``)


_FAILURE_DETAIL = {
    FailureKind.CONNECTION: "Redis cannot be reached",
    FailureKind.TIMEOUT: "Redis did not answer in time",
    FailureKind.OOM: "Redis is full (maxmemory reached)",
    FailureKind.ERROR: "Redis answered with an error",
    FailureKind.SLOW: "Redis is answering too slowly",
}
_GENERATIONS_KEPT = 4096
HOT_WINDOWS = 32  # decoded message windows kept in process (a few hundred messages each at most)
# Seconds a hot window answers before Redis is read again: the read also moves the chat up in Redis's
# per-user recency index (which chats the cap evicts), so a chat in constant use must still reach it.
HOT_SECONDS = 30.0
_DRAIN_TIMEOUT = 5.0
# close(): attempts and total seconds for bringing Redis up to date after an outage (a quit must not hang).
_CLOSE_SYNC_ATTEMPTS = 3
_CLOSE_SYNC_TIMEOUT = 3.0


def classify_redis_error(error: BaseException) -> FailureKind:
    """The breaker's name for a failed Redis call."""
    if isinstance(error, OutOfMemoryError):
        return FailureKind.OOM
    if isinstance(error, RedisTimeoutError | TimeoutError):
        return FailureKind.TIMEOUT
    if isinstance(error, RedisConnectionError | OSError):
        return FailureKind.CONNECTION
    return FailureKind.ERROR


class TieredCache:
    """The read cache: typed get/set/append/invalidate per key kind, over Redis and a memory tier.

    Args:
        codec: Seals values with the install's key, bound to their cache key.
        policy: TTLs and caps (the stores apply them; ``get_messages`` caps its ``limit`` with it).
        metrics: Where hits, misses, latencies, breaker changes and errors are counted.
        redis: The Redis store, or None when there is none (memory only).
        memory: The in-process tier, or None (with ``redis`` None too: caching disabled).
        breaker: Decides when Redis is used; one with default thresholds when omitted.
        timer: Seconds for latencies (tests pass one to make calls look slow).
        detail: Why there is no Redis, for the status line (with ``redis`` None).
        persist: Writes what Redis holds to disk now (the app's own Redis keeps a snapshot between runs);
            run after a purge or wipe, so that what was dropped leaves the disk too. None: no snapshot.
        disk_bytes: How many bytes the cache takes on disk (0 when it keeps nothing there).
        clock: Monotonic seconds for the hot windows' lifetimes (tests pass a fake).
    """

    def __init__(
        self,
        *,
        codec: Codec,
        policy: CachePolicy,
        metrics: MetricsRegistry,
        redis: CacheStore | None = None,
        memory: CacheStore | None = None,
        breaker: CircuitBreaker | None = None,
        timer: Callable[[], float] = time.perf_counter,
        detail: str = "",
        persist: Callable[[], Awaitable[None]] | None = None,
        disk_bytes: Callable[[], int] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._codec = codec
        self.policy = policy
        self._metrics = metrics
        self._redis = redis
        self._memory = memory
        self._breaker = breaker or CircuitBreaker()
        self._breaker.subscribe(self._on_breaker_change)
        self._timer = timer
        self._base_detail = detail
        self._persist = persist
        self._disk_bytes = disk_bytes
        self._listeners: list[StatusListener] = []
        self._users: set[UserId] = set()
        self._user_locks: dict[UserId, asyncio.Lock] = {}
        self._pending: set[asyncio.Task[Any]] = set()
        self._invalidating: Counter[CacheKey] = Counter()
        self._probe_task: asyncio.Task[None] | None = None
        self._probe_lock = asyncio.Lock()
        self._inflight = 0
        self._drained = asyncio.Event()
        self._drained.set()
        self._wipe_pending = False
        # What Redis missed while the memory tier stood in (replayed by the probe; see the module docstring).
        self._missed_keys: set[CacheKey] = set()
        self._missed_purges: set[UserId] = set()
        self._closed = False
        # Generations for LoadTokens: bumped by every write and invalidation (see begin_load).
        self._generation = 0
        self._key_generations: OrderedDict[CacheKey, int] = OrderedDict()
        self._forgotten_generation = 0
        self._user_generations: dict[UserId, int] = {}
        self._wipe_generation = 0
        self._hot: OrderedDict[CacheKey, _HotWindow] = OrderedDict()
        self._clock = clock
        self._status, self._detail = self._compute_status()
        metrics.gauge(BREAKER_OPEN).set(0)

    # --- status ------------------------------------------------------------------------------------
    @property
    def status(self) -> CacheStatus:
        return self._status

    @property
    def detail(self) -> str:
        """One plain sentence on why the cache is not ``ONLINE`` (empty when it is)."""
        return self._detail

    @property
    def breaker(self) -> CircuitBreaker:
        return self._breaker

    @property
    def metrics(self) -> MetricsRegistry:
        return self._metrics

    def subscribe_status(self, listener: StatusListener) -> Callable[[], None]:
        """Call ``listener(status, detail)`` whenever either changes; returns an unsubscribe function."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def _compute_status(self) -> tuple[CacheStatus, str]:
        if self._redis is None:
            if self._memory is None:
                return CacheStatus.DISABLED, self._base_detail or "caching is switched off"
            return CacheStatus.MEMORY_ONLY, self._base_detail or "no Redis; the cache runs in memory only"
        if self._breaker.state is BreakerState.CLOSED:
            return CacheStatus.ONLINE, ""
        reason = self._breaker.reason or FailureKind.CONNECTION
        return CacheStatus.OFFLINE, f"{_FAILURE_DETAIL[reason]}; using the in-process cache until it is back"

    def _publish_status(self) -> None:
        status, detail = self._compute_status()
        if (status, detail) == (self._status, self._detail):
            return
        self._status, self._detail = status, detail
        for listener in list(self._listeners):
            try:
                listener(status, detail)
            except Exception:  # a listener's bug must not break the cache
                log.exception("cache status listener failed")

    def _on_breaker_change(self, change: BreakerChange) -> None:
        self._metrics.counter(BREAKER_TRANSITIONS, to=change.new.value, reason=str(change.reason or "")).inc()
        self._metrics.gauge(BREAKER_OPEN).set(0 if change.new is BreakerState.CLOSED else 1)
        if change.old is BreakerState.CLOSED:
            log.warning("Redis cache offline (%s); using the in-process cache", change.reason)
        elif change.new is BreakerState.CLOSED:
            log.info("Redis cache back online")
        if change.new is BreakerState.OPEN and not self._closed:
            self._ensure_probe_loop()
        self._publish_status()

    # --- lifecycle ---------------------------------------------------------------------------------
    async def start(self) -> None:
        """Claim the Redis namespace for this install's key (wiping entries of another key).

        Redis being unreachable here is no error: the breaker opens and the probe takes over.
        """
        key_id = self._codec.key_id.hex()
        if self._memory is not None:
            await self._memory.ensure_key_id(key_id)
        if self._redis is not None:
            await self._run("claim", lambda store: store.ensure_key_id(key_id), mutating=True, fallback=False)

    async def close(self) -> None:
        """Finish pending writes, stop probing, close the stores. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._probe_task is not None:
            self._probe_task.cancel()
            await asyncio.gather(self._probe_task, return_exceptions=True)
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
        if self._redis is not None and self._breaker.state is not BreakerState.CLOSED:
            await self._catch_up_before_closing()
        if self._redis is not None:
            try:
                await self._redis.close()
            except (RedisError, OSError) as error:
                log.info("closing the Redis connection failed (%s)", type(error).__name__)
        if self._memory is not None:
            await self._memory.close()

    # --- load tokens -------------------------------------------------------------------------------
    def begin_load(self, key: CacheKey) -> LoadToken:
        """A token for a load of ``key`` starting now (see the module docstring)."""
        return LoadToken(key, self._generation)

    def _bump(self, *keys: CacheKey) -> None:
        self._generation += 1
        for key in keys:
            self._key_generations[key] = self._generation
            self._key_generations.move_to_end(key)
        while len(self._key_generations) > _GENERATIONS_KEPT:
            _, forgotten = self._key_generations.popitem(last=False)
            # A forgotten key counts as changed at the newest generation forgotten: safe, never stale.
            self._forgotten_generation = max(self._forgotten_generation, forgotten)

    def _is_stale(self, token: LoadToken) -> bool:
        key = token.key
        changed = max(
            self._key_generations.get(key, self._forgotten_generation),
            self._user_generations.get(key.user, 0),
            self._wipe_generation,
        )
        return changed > token.generation

    # --- reads -------------------------------------------------------------------------------------
    async def get_recent(self, user: UserId) -> Cached[tuple[ChatSummary, ...]] | None:
        """The cached recent-chats list of ``user``."""
        return await self._get_value(recent_key(user), self._codec.decode_recent)

    async def get_chat(self, user: UserId, chat_id: ChatId) -> Cached[ChatDetails] | None:
        """The cached details and members of one chat."""
        return await self._get_value(chat_key(user, chat_id), self._codec.decode_chat)

    async def get_messages(
        self, user: UserId, chat_id: ChatId, limit: int | None = None
    ) -> Cached[tuple[Message, ...]] | None:
        """The newest ``limit`` cached messages of a chat (all cached when None), ascending by ``seq``.

        An empty tuple is a hit: the chat has no messages. The cached window is contiguous, so older
        messages exist exactly when the first one's ``seq`` is above 1.
        """
        key = msgs_key(user, chat_id)
        cap = self.policy.max_messages_per_chat
        wanted = cap if limit is None else max(0, min(limit, cap))
        hot = self._hot_window(key, wanted)
        if hot is not None:
            return hot
        read_at = self.begin_load(key)  # before the read: a change while it runs keeps it out of the hot set
        ran = await self._read(key, "get", lambda store: store.get_list(key, wanted))
        if ran is None:
            return None
        stored, store = ran
        if stored is None:
            self._count(CACHE_MISSES, store, key)
            return None
        try:
            self._codec.check_list_head(key, stored.head)
            messages = tuple(self._codec.decode_message(key, seq, blob) for seq, blob in stored.items)
        except CodecError as error:
            await self._discard(key, store, error)
            return None
        self._count(CACHE_HITS, store, key)
        if store is self._redis:
            now = self._clock()
            expires_at = None if stored.ttl is None else now + stored.ttl
            complete = len(messages) < wanted or wanted >= cap
            self._hot[key] = _HotWindow(read_at, messages, complete, expires_at, now + HOT_SECONDS)
            self._hot.move_to_end(key)
            while len(self._hot) > HOT_WINDOWS:
                self._hot.popitem(last=False)
        return Cached(messages, self.policy.is_fresh(stored.ttl), store.tier)

    def forget_hot_windows(self) -> None:
        """Drop the decoded windows kept in process: the next reads go to Redis (the benchmarks measure a
        read from Redis this way; nothing else needs it, as every change of a key already drops its window)."""
        self._hot.clear()

    def _hot_window(self, key: CacheKey, wanted: int) -> Cached[tuple[Message, ...]] | None:
        """The newest ``wanted`` messages from the hot window of ``key``, when it is still exactly Redis's."""
        hot = self._hot.get(key)
        if hot is None or self._redis is None or self._active() is not self._redis:
            return None
        now = self._clock()
        remaining = None if hot.expires_at is None else hot.expires_at - now
        if self._is_stale(hot.read_at) or now >= hot.until or (remaining is not None and remaining <= 0):
            del self._hot[key]
            return None
        if not hot.complete and len(hot.messages) < wanted:
            return None
        self._hot.move_to_end(key)
        self._metrics.counter(CACHE_HITS, tier="hot", kind=key.kind.value).inc()
        messages = hot.messages[len(hot.messages) - wanted :] if wanted < len(hot.messages) else hot.messages
        return Cached(messages, self.policy.is_fresh(remaining), self._redis.tier)

    async def _get_value(self, key: CacheKey, decode: Callable[[CacheKey, bytes], T]) -> Cached[T] | None:
        ran = await self._read(key, "get", lambda store: store.get(key))
        if ran is None:
            return None
        stored, store = ran
        if stored is None:
            self._count(CACHE_MISSES, store, key)
            return None
        try:
            value = decode(key, stored.data)
        except CodecError as error:
            await self._discard(key, store, error)
            return None
        self._count(CACHE_HITS, store, key)
        return Cached(value, self.policy.is_fresh(stored.ttl), store.tier)

    async def _discard(self, key: CacheKey, store: CacheStore, error: CodecError) -> None:
        """An unusable entry is a miss, and is deleted so it is not tried again."""
        log.warning("Dropped an unusable %s cache entry from %s (%s)", key.kind, store.tier, error.reason)
        self._metrics.counter(ERRORS, kind=f"cache.corrupt.{error.reason}").inc()
        self._count(CACHE_MISSES, store, key)

        async def body() -> None:
            await self._mutate("delete", lambda target: target.delete(key), [key])

        await self._locked(key.user, body)

    # --- writes ------------------------------------------------------------------------------------
    async def set_recent(self, user: UserId, chats: Sequence[ChatSummary], *, token: LoadToken | None = None) -> bool:
        """Store ``user``'s recent-chats list; False when ``token`` is stale and nothing was written."""
        key = recent_key(user)
        return await self._write(key, token, lambda: self._codec.encode_recent(key, chats))

    async def set_chat(self, user: UserId, details: ChatDetails, *, token: LoadToken | None = None) -> bool:
        """Store one chat's details; False when ``token`` is stale and nothing was written."""
        key = chat_key(user, details.chat.id)
        return await self._write(key, token, lambda: self._codec.encode_chat(key, details))

    async def set_messages(
        self, user: UserId, chat_id: ChatId, messages: Sequence[Message], *, token: LoadToken | None = None
    ) -> bool:
        """Replace a chat's cached messages with the newest capped ``messages`` (confirmed ones only).

        ``messages`` must be the chat's newest messages without holes (a page as loaded from Supabase);
        an empty sequence caches "this chat has no messages". False when ``token`` is stale.

        Raises:
            ValueError: a message is not confirmed (no ``seq``) or belongs to another chat.
        """
        key = msgs_key(user, chat_id)
        if token is not None and token.key != key:
            raise ValueError("the load token is for another key")

        kept = self.policy.trim_messages(messages, seq=_seq)
        items = [self._codec.encode_message(key, message) for message in kept]
        head = self._codec.list_head(key)

        async def body() -> bool:
            if token is not None and self._is_stale(token):
                return False
            self._bump(key)
            await self._mutate("set", lambda target: target.set_list(key, head, items), [key])
            return True

        return await self._locked(user, body)

    async def append_messages(self, user: UserId, chat_id: ChatId, messages: Sequence[Message]) -> AppendResult:
        """Write realtime inserts and edits through into the cached list (append, replace by ``seq``, trim).

        ``NOT_CACHED``: there was no list, nothing was written. ``GAP``: a message was missed (a ``seq`` jumped
        past the newest cached one), so the list was dropped; the next read loads it again.
        """
        key = msgs_key(user, chat_id)
        items = [self._codec.encode_message(key, message) for message in messages]

        async def body() -> AppendResult:
            self._bump(key)
            result = await self._mutate("append", lambda target: target.append_list(key, items), [key])
            return result or AppendResult.NOT_CACHED

        return await self._locked(user, body)

    async def _write(self, key: CacheKey, token: LoadToken | None, encode: Callable[[], bytes]) -> bool:
        if token is not None and token.key != key:
            raise ValueError("the load token is for another key")

        data = encode()

        async def body() -> bool:
            if token is not None and self._is_stale(token):
                return False
            self._bump(key)
            await self._mutate("set", lambda target: target.set(key, data), [key])
            return True

        return await self._locked(key.user, body)

    # --- invalidation ------------------------------------------------------------------------------
    async def invalidate(self, user: UserId, kind: KeyKind, chat_id: ChatId | None = None) -> None:
        """Drop one entry, e.g. the recent list after a chat changed; it reads as a miss from now on."""
        key = CacheKey(user, kind, chat_id)

        async def body() -> None:
            self._bump(key)
            await self._mutate("delete", lambda target: target.delete(key), [key])

        await self._locked(user, self._invalidating_while(body, key))

    async def invalidate_chat(self, user: UserId, chat_id: ChatId) -> None:
        """Drop everything cached about one chat (deleted, or the user left); it reads as a miss from now on."""
        keys = (chat_key(user, chat_id), msgs_key(user, chat_id))

        async def body() -> None:
            self._bump(*keys)
            await self._mutate("delete", lambda target: target.delete_chat(user, chat_id), keys)

        await self._locked(user, self._invalidating_while(body, *keys))

    def _invalidating_while(
        self, body: Callable[[], Awaitable[None]], *keys: CacheKey
    ) -> Callable[[], Awaitable[None]]:
        """Mark ``keys`` as being invalidated now, until ``body`` (the delete) has run.

        The delete waits for the user's earlier writes and then for Redis; a read meanwhile would still find
        the entry, although the caller has moved on (live sync shows a renamed chat in the list, then
        invalidates its details: a details read in between got the old title). Marked keys read as misses.
        """
        for key in keys:
            self._invalidating[key] += 1

        async def marked() -> None:
            try:
                await body()
            finally:
                self._invalidating.subtract(keys)
                for key in keys:
                    if self._invalidating[key] <= 0:
                        del self._invalidating[key]

        return marked

    async def purge_user(self, user: UserId) -> None:
        """Drop every entry of ``user`` (sign-out), from memory and from the snapshot on disk."""

        async def body() -> None:
            self._generation += 1
            self._user_generations[user] = self._generation
            for key in [key for key in self._hot if key.user == user]:
                del self._hot[key]
            await self._mutate("purge", lambda target: target.purge_user(user), purged=user)

        await self._locked(user, body)
        await self._snapshot()

    async def wipe(self) -> None:
        """Drop every entry of every user (the "clear cache" button)."""
        self._generation += 1
        self._wipe_generation = self._generation
        self._hot.clear()
        if self._memory is not None:
            await self._memory.wipe()
        if self._redis is None:
            return
        # Pending until Redis itself did it; otherwise the probe does it before Redis is used again.
        self._wipe_pending = True
        ran = await self._run("wipe", lambda store: store.wipe(), mutating=True, fallback=False)
        if ran is not None and ran[1] is self._redis:
            self._wipe_pending = False
            await self._snapshot()

    async def _snapshot(self) -> None:
        """Write Redis's snapshot now, so that what was just dropped is not found on disk at the next start."""
        if self._persist is None or self._redis is None or not self._breaker.allows_requests:
            return
        try:
            await self._persist()
        except (RedisError, OSError) as error:
            # Not worth opening the breaker for: the data layer goes on, the next timed snapshot catches up.
            log.warning("Could not write the cache's snapshot (%s)", type(error).__name__)

    def disk_bytes(self) -> int:
        """Bytes the cache takes on disk now (its Redis snapshot; 0 when it keeps nothing there)."""
        return self._disk_bytes() if self._disk_bytes is not None else 0

    # --- maintenance -------------------------------------------------------------------------------
    async def cached_chats(self, user: UserId) -> list[ChatId]:
        """``user``'s cached chats, least recently used first (e.g. to back-fill them after a reconnect)."""
        ran = await self._run("index", lambda store: store.cached_chats(user))
        return ran[0] if ran is not None else []

    async def poll_memory(self) -> dict[str, int | None]:
        """Refresh the memory gauges (Redis ``used_memory``, memory tier bytes and entries) and return them."""
        figures: dict[str, int | None] = {"redis_used_memory": None, "memory_tier_bytes": None}
        if self._redis is not None and self._breaker.allows_requests:
            ran = await self._run("info", lambda store: store.used_memory(), fallback=False)
            if ran is not None and ran[1] is self._redis:
                figures["redis_used_memory"] = ran[0]
                self._metrics.gauge(REDIS_USED_MEMORY).set(ran[0])
        if self._memory is not None:
            used = await self._memory.used_memory()
            figures["memory_tier_bytes"] = used
            self._metrics.gauge(MEMORY_TIER_BYTES).set(used)
            entries = getattr(self._memory, "entry_count", None)
            if isinstance(entries, int):
                self._metrics.gauge(MEMORY_TIER_ENTRIES).set(entries)
        return figures

    async def probe_now(self) -> CacheStatus:
        """Try Redis again now, without waiting for the backoff (a "retry" button; tests)."""
        if self._redis is None or self._closed:
            return self._status
        return await self._probe()

    async def _probe(self) -> CacheStatus:
        redis = self._redis
        assert redis is not None
        async with self._probe_lock:
            if self._breaker.state is not BreakerState.OPEN:
                return self._status
            self._breaker.begin_probe()
            try:
                await asyncio.wait_for(self._drained.wait(), _DRAIN_TIMEOUT)
                await redis.probe()
                await redis.ensure_key_id(self._codec.key_id.hex())
                dropped = await self._replay_missed(redis)
            except (RedisError, OSError) as error:
                kind = classify_redis_error(error)
                self._metrics.counter(ERRORS, kind=f"cache.{kind}").inc()
                self._breaker.probe_failed(kind)
            except BaseException:  # cancelled (the app is closing): never leave the breaker half-open
                self._breaker.probe_failed(self._breaker.reason or FailureKind.CONNECTION)
                raise
            else:
                if self._memory is not None:
                    await self._memory.wipe()  # it only stood in; Redis is the cache again
                self._breaker.probe_succeeded()
                if dropped:
                    await self._snapshot()  # what a sign-out or "clear cache" dropped leaves the disk too
        return self._status

    async def _replay_missed(self, redis: CacheStore) -> bool:
        """Bring Redis up to date with what it missed while the memory tier stood in; True if it dropped data.

        Each item is taken off its set before it is replayed and put back if that fails, so a write made
        to the memory tier meanwhile (the breaker is not closed yet) is replayed too, and a failure leaves
        the rest for the next probe.
        """
        dropped = False
        if self._wipe_pending:
            await redis.wipe()
            self._wipe_pending = False
            self._missed_purges.clear()  # the wipe dropped them too
            dropped = True
        while self._missed_purges:
            user = self._missed_purges.pop()
            try:
                await redis.purge_user(user)
            except BaseException:
                self._missed_purges.add(user)
                raise
            dropped = True
        while self._missed_keys:
            key = self._missed_keys.pop()
            try:
                await self._replay_key(redis, key)
            except BaseException:
                self._missed_keys.add(key)
                raise
        return dropped

    async def _replay_key(self, redis: CacheStore, key: CacheKey) -> None:
        """Give Redis the memory tier's entry for ``key`` (with a fresh TTL), or delete it there if none."""
        if self._memory is not None and key.kind is KeyKind.MSGS:
            stored_list = await self._memory.get_list(key, self.policy.max_messages_per_chat)
            if stored_list is not None:
                await redis.set_list(key, stored_list.head, stored_list.items)
                return
        elif self._memory is not None:
            stored = await self._memory.get(key)
            if stored is not None:
                await redis.set(key, stored.data)
                return
        await redis.delete(key)

    async def _catch_up_before_closing(self) -> None:
        """A last, bounded try to hand Redis what only the memory tier holds (see ``close``)."""
        redis = self._redis
        assert redis is not None

        async def attempts() -> None:
            for _ in range(_CLOSE_SYNC_ATTEMPTS):
                if self._breaker.state is BreakerState.CLOSED:
                    return
                await self._probe()

        with contextlib.suppress(TimeoutError):  # the quit goes on; the warning below says what is lost
            await asyncio.wait_for(attempts(), _CLOSE_SYNC_TIMEOUT)
        if self._breaker.state is not BreakerState.CLOSED:
            log.warning("Redis missed writes made while it was offline; the next start finds fewer cached entries")

    def _ensure_probe_loop(self) -> None:
        if self._probe_task is not None and not self._probe_task.done():
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop (a synchronous test of the state machine): probe_now() still works
        self._probe_task = loop.create_task(self._probe_loop(), name="cache-probe")

    async def _probe_loop(self) -> None:
        while not self._closed and self._breaker.state is not BreakerState.CLOSED:
            if self._breaker.state is BreakerState.HALF_OPEN:
                async with self._probe_lock:  # a probe_now() is under way: wait for its outcome
                    continue
            await asyncio.sleep(max(self._breaker.seconds_until_probe(), 0.001))
            if self._breaker.probe_due():
                await self.probe_now()

    # --- plumbing ----------------------------------------------------------------------------------
    def _count(self, metric: str, store: CacheStore, key: CacheKey) -> None:
        self._metrics.counter(metric, tier=store.tier, kind=key.kind.value).inc()

    def _active(self) -> CacheStore | None:
        if self._closed:
            return None
        if self._redis is not None and self._breaker.allows_requests:
            return self._redis
        return self._memory

    async def _read(
        self, key: CacheKey, op: str, action: Callable[[CacheStore], Awaitable[R]]
    ) -> tuple[R, CacheStore] | None:
        self._users.add(key.user)
        if key in self._invalidating:
            return None  # being deleted: what a store still holds is out of date
        return await self._run(op, action)

    async def _run(
        self,
        op: str,
        action: Callable[[CacheStore], Awaitable[R]],
        *,
        mutating: bool = False,
        fallback: bool = True,
    ) -> tuple[R, CacheStore] | None:
        """Run ``action`` on Redis if the breaker allows, else (or if Redis fails) on the memory tier.

        None when no tier ran it (caching disabled, closed, or Redis failed and ``fallback`` is off).
        """
        store = self._active()
        if store is None:
            return None
        if store is self._redis:
            self._inflight += 1
            self._drained.clear()
            started = self._timer()
            try:
                result = await action(store)
            except (RedisError, OSError) as error:
                kind = classify_redis_error(error)
                self._metrics.counter(ERRORS, kind=f"cache.{kind}").inc()
                log.info("Redis %s failed (%s)", op, kind)
                # A failed write may or may not have landed: Redis can no longer be trusted until purged.
                self._breaker.record_failure(kind, force=mutating)
                if not fallback or self._memory is None:
                    return None
                store = self._memory
            else:
                latency = self._timer() - started
                self._metrics.histogram(CACHE_LATENCY, tier=store.tier, op=op).observe(latency)
                self._breaker.record_success(latency)
                return result, store
            finally:
                self._inflight -= 1
                if self._inflight == 0:
                    self._drained.set()
        started = self._timer()
        result = await action(store)
        self._metrics.histogram(CACHE_LATENCY, tier=store.tier, op=op).observe(self._timer() - started)
        return result, store

    async def _mutate(
        self,
        op: str,
        action: Callable[[CacheStore], Awaitable[R]],
        keys: Sequence[CacheKey] = (),
        *,
        purged: UserId | None = None,
    ) -> R | None:
        """Run a write or invalidation of ``keys`` (or the purge of ``purged``), noting what Redis missed."""
        # Routed per call: the breaker may have moved while the caller waited for the user's lock.
        ran = await self._run(op, action, mutating=True)
        if self._redis is not None and not self._closed and (ran is None or ran[1] is not self._redis):
            # Redis did not run it, or failed (it may or may not have landed): the probe replays it.
            self._missed_keys.update(keys)
            if purged is not None:
                self._missed_purges.add(purged)
        return ran[0] if ran is not None else None

    async def _locked(self, user: UserId, body: Callable[[], Awaitable[R]]) -> R:
        """Run ``body`` under ``user``'s write lock, to completion even if the caller is cancelled."""
        self._users.add(user)
        lock = self._user_locks.setdefault(user, asyncio.Lock())

        async def run() -> R:
            async with lock:
                return await body()

        task = asyncio.get_running_loop().create_task(run())
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
        return await asyncio.shield(task)


def _seq(message: Message) -> int:
    if message.seq is None:
        raise ValueError("only confirmed messages (with seq) are cached")
    return message.seq
