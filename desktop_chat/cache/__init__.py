"""The disposable read cache: per user, encrypted, Redis first with an in-process fallback.

Supabase is the source of truth; this cache only makes reads instant. It can be flushed at any moment
without losing anything, and its freshness comes from events (realtime, back-fill, local writes), with
TTLs as the safety net.

Building it (composition root)::

    metrics = MetricsRegistry()
    async with open_cache(settings, metrics) as cache:   # keyring key, managed or configured Redis, memory
        ...                                             # leaving closes the cache, then its redis-server

Using it (``Reads`` in ``desktop_chat.dal``), read-through with stale-while-revalidate::

    hit = await cache.get_chat(user, chat_id)              # Cached[ChatDetails] | None
    if hit is not None:
        if not hit.fresh:
            refresh_in_background(...)                     # single-flight is the DAL's
        return hit.value
    token = cache.begin_load(chat_key(user, chat_id))      # before asking Supabase
    details = await backend.fetch_chat_details(chat_id)
    await cache.set_chat(user, details, token=token)       # skipped if an event changed the key meanwhile
    return details

Per key kind (``KeyKind``; TTLs and caps from ``Settings`` via ``CachePolicy``):

========  ==================================  =====================================  ===================
kind      read                                write                                  TTL (default)
========  ==================================  =====================================  ===================
recent    ``get_recent(user)``                ``set_recent(user, chats, token=)``    ``cache_ttl_recent``
chat      ``get_chat(user, chat_id)``         ``set_chat(user, details, token=)``    ``cache_ttl_chat``
msgs      ``get_messages(user, s, limit)``    ``set_messages(user, s, msgs, token=)``  ``cache_ttl_messages``
                                              ``append_messages(user, s, msgs)``
========  ==================================  =====================================  ===================

- Reads return ``Cached(value, fresh, tier)`` or None (a miss). An entry is fresh for its TTL and then
  served stale for ``cache_keep_days`` more (shown while it is refreshed, and offline). A value that
  fails to decrypt or validate is a miss and is deleted.
- ``get_messages`` returns the newest ``limit`` messages ascending by ``seq``; the cached window is
  contiguous, so older ones exist exactly when the first ``seq`` is above 1. ``set_messages`` takes a
  loaded page (confirmed messages only) and keeps the newest ``cache_max_messages_per_chat``.
- ``append_messages`` writes realtime inserts and edits through (atomic append, replace by ``seq``,
  trim). It returns ``AppendResult.NOT_CACHED`` when nothing is cached (a later load fills it) and
  ``GAP`` when a ``seq`` jumped past the newest cached one: the list was dropped, reload it.
- Invalidation: ``invalidate(user, kind, chat_id=None)`` drops one entry (e.g. ``RECENT`` after a chat
  changed), ``invalidate_chat(user, chat_id)`` drops a chat's entries (deleted, or the user left),
  ``purge_user(user)`` drops a user's entries (sign-out), ``wipe()`` drops everything.
- Caps: ``cache_max_chats_per_user`` chats per user (least recently used chats evicted),
  ``cache_max_messages_per_chat`` messages per chat; ``cached_chats(user)`` lists a user's cached chats.
- Status: ``status`` is a ``CacheStatus`` (``ONLINE``, ``OFFLINE`` = "cache offline", ``MEMORY_ONLY``,
  ``DISABLED``) with a ``detail`` sentence; ``subscribe_status(listener)``. The data layer's
  ``StoreStatus.cache`` is this same value (the status bar words it).
  ``probe_now()`` retries Redis at once.
- Nothing in this API raises for an unavailable Redis. ``ValueError`` means a caller's bug (an unconfirmed
  message, a model under another chat's key).
- Metrics: ``poll_memory()`` refreshes the Redis and memory-tier gauges before a ``metrics.snapshot()``.

Modules: ``keys`` (key scheme), ``policy`` (TTLs, caps), ``codec`` and ``packing`` (envelope, encodings),
``secret`` (the keyring key), ``store`` (the ``CacheStore`` interface), ``memory`` and ``redis_store``
(the two tiers), ``breaker`` (the circuit breaker), ``tiered`` (``TieredCache``), ``managed`` (the app's own
redis-server), ``factory`` (``open_cache``).
"""

from desktop_chat.cache.breaker import BreakerChange, BreakerState, CircuitBreaker, FailureKind
from desktop_chat.cache.codec import SCHEMA_VERSION, Codec, CodecError
from desktop_chat.cache.factory import breaker_from_settings, open_cache
from desktop_chat.cache.keys import CacheKey, KeyKind, chat_key, chats_index_key, msgs_key, parse_key, recent_key
from desktop_chat.cache.managed import ManagedRedis, ManagedRedisError, RedisEndpoint
from desktop_chat.cache.memory import MemoryCacheStore
from desktop_chat.cache.policy import CachePolicy
from desktop_chat.cache.redis_store import RedisCacheStore, redis_client
from desktop_chat.cache.secret import CacheSecret, KeyStorage, LoadedSecret, load_cache_secret
from desktop_chat.cache.store import AppendResult, CacheStore, StoredList, StoredValue
from desktop_chat.cache.tiered import Cached, CacheStatus, LoadToken, StatusListener, TieredCache

__all__ = [
    "SCHEMA_VERSION",
    "AppendResult",
    "BreakerChange",
    "BreakerState",
    "CacheKey",
    "CachePolicy",
    "CacheSecret",
    "CacheStatus",
    "CacheStore",
    "Cached",
    "CircuitBreaker",
    "Codec",
    "CodecError",
    "FailureKind",
    "KeyKind",
    "KeyStorage",
    "LoadToken",
    "LoadedSecret",
    "ManagedRedis",
    "ManagedRedisError",
    "MemoryCacheStore",
    "RedisCacheStore",
    "RedisEndpoint",
    "StatusListener",
    "StoredList",
    "StoredValue",
    "TieredCache",
    "breaker_from_settings",
    "chat_key",
    "chats_index_key",
    "load_cache_secret",
    "msgs_key",
    "open_cache",
    "parse_key",
    "recent_key",
    "redis_client",
]
