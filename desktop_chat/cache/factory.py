"""``open_cache``: build the whole cache from ``Settings``, for the composition root, and take it down again."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit

from keyring.backend import KeyringBackend

from desktop_chat.cache.breaker import CircuitBreaker
from desktop_chat.cache.codec import Codec
from desktop_chat.cache.managed import ManagedRedis, ManagedRedisError
from desktop_chat.cache.memory import MemoryCacheStore
from desktop_chat.cache.policy import CachePolicy
from desktop_chat.cache.redis_store import RedisCacheStore, redis_client
from desktop_chat.cache.secret import CacheSecret, load_cache_secret
from desktop_chat.cache.tiered import TieredCache
from desktop_chat.config import Settings
from desktop_chat.telemetry.metrics import MetricsRegistry

__all__ = ["breaker_from_settings", "open_cache", "snapshot_dir"]

log = logging.getLogger(__name__)

_LISTPACK_MAX_ENTRIES = 512


def snapshot_dir(settings: Settings) -> Path:
    """Where the app's own Redis keeps its snapshot: one directory per server, since the same user id (a
    seed's alice, say) on two servers is two different people, and one server's chats must never show as
    another's. Named after the server's host and port, plus a hash of its whole address."""
    parts = urlsplit(settings.supabase_url)
    readable = re.sub(r"[^A-Za-z0-9.-]+", "_", parts.netloc or "server")[:60]
    digest = hashlib.sha256(settings.supabase_url.rstrip("/").encode()).hexdigest()[:12]
    return Path(settings.cache_dir) / "redis" / f"{readable}-{digest}"


def breaker_from_settings(settings: Settings) -> CircuitBreaker:
    return CircuitBreaker(
        error_threshold=settings.cache_breaker_errors,
        slow_seconds=settings.cache_breaker_slow_seconds,
        slow_calls=settings.cache_breaker_slow_calls,
        slow_window=settings.cache_breaker_slow_window,
        backoff=settings.cache_probe_backoff,
        backoff_max=settings.cache_probe_backoff_max,
    )


@asynccontextmanager
async def open_cache(
    settings: Settings,
    metrics: MetricsRegistry,
    *,
    keyring_backend: KeyringBackend | None = None,
    redis_search_path: str | None = None,
) -> AsyncIterator[TieredCache]:
    """The cache, for the time of the ``async with``: key from the keyring, Redis (configured or managed),
    memory tier, breaker. On the way out the cache is closed, then the managed redis-server it started.

    Never fails for lack of Redis: without ``redis_url`` and without a usable ``redis-server`` the cache
    runs on the memory tier (``MEMORY_ONLY``); an unreachable Redis starts ``OFFLINE`` and is probed.

    Args:
        settings: The app's settings (``cache_*``, ``redis_*``, ``config_dir``, ``runtime_dir``; the managed
            Redis keeps its snapshot in ``cache_dir``).
        metrics: The app's registry.
        keyring_backend: A keyring backend other than the OS default (tests).
        redis_search_path: Where to look for ``redis-server`` instead of ``PATH`` (tests).
    """
    async with AsyncExitStack() as built:
        cache = await _build(settings, metrics, built, keyring_backend, redis_search_path)
        built.push_async_callback(cache.close)
        yield cache


async def _build(
    settings: Settings,
    metrics: MetricsRegistry,
    built: AsyncExitStack,
    keyring_backend: KeyringBackend | None,
    redis_search_path: str | None,
) -> TieredCache:
    """The cache's parts; what must be stopped again goes on ``built``, in the order it was started."""
    policy = CachePolicy.from_settings(settings)
    if not settings.cache_enabled:
        # Nothing is ever stored, so no key is needed (and the keyring is left alone).
        return TieredCache(codec=Codec(CacheSecret.generate()), policy=policy, metrics=metrics)
    loaded = await asyncio.to_thread(load_cache_secret, settings.config_dir, backend=keyring_backend)
    codec = Codec(loaded.secret)
    memory = MemoryCacheStore(
        policy, max_entries=settings.cache_memory_max_entries, max_bytes=settings.cache_memory_max_bytes
    )
    persist: Callable[[], Awaitable[None]] | None = None
    disk_bytes: Callable[[], int] | None = None
    if settings.redis_url is not None:
        client = redis_client(
            url=settings.redis_url,
            connect_timeout=settings.redis_connect_timeout,
            socket_timeout=settings.redis_socket_timeout,
        )
    else:
        managed = ManagedRedis(
            Path(settings.runtime_dir),
            maxmemory_mb=settings.redis_maxmemory_mb,
            search_path=redis_search_path,
            # Listpack pays off for a few hundred entries; longer lists are better off as skiplists.
            list_entries=min(settings.cache_max_messages_per_chat + 1, _LISTPACK_MAX_ENTRIES),
            data_dir=snapshot_dir(settings),
        )
        built.push_async_callback(managed.stop)
        try:
            endpoint = await managed.start()
        except ManagedRedisError as error:
            log.warning("The cache's redis-server did not start (%s); the cache runs in memory only", error)
            endpoint = None
            managed.detail = "the cache's redis-server did not start; the cache runs in memory only"
        if endpoint is None:
            cache = TieredCache(codec=codec, policy=policy, metrics=metrics, memory=memory, detail=managed.detail)
            await cache.start()
            return cache
        client = redis_client(
            unix_socket=str(endpoint.socket),
            password=endpoint.password,
            connect_timeout=settings.redis_connect_timeout,
            socket_timeout=settings.redis_socket_timeout,
        )
        if managed.persistent:
            snapshot_client = client

            async def persist_now() -> None:
                # SCHEDULE: if a snapshot is being written already, another follows it (not an error).
                await snapshot_client.bgsave(schedule=True)

            persist, disk_bytes = persist_now, managed.disk_bytes
    cache = TieredCache(
        codec=codec,
        policy=policy,
        metrics=metrics,
        redis=RedisCacheStore(client, policy),
        memory=memory,
        breaker=breaker_from_settings(settings),
        persist=persist,
        disk_bytes=disk_bytes,
    )
    await cache.start()
    return cache
