"""Fixtures for the cache's integration tests: a private redis-server that a test may kill, and caches."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from desktop_chat.cache.breaker import CircuitBreaker
from desktop_chat.cache.codec import Codec
from desktop_chat.cache.memory import MemoryCacheStore
from desktop_chat.cache.policy import CachePolicy
from desktop_chat.cache.redis_store import RedisCacheStore, redis_client
from desktop_chat.cache.secret import CacheSecret
from desktop_chat.cache.tiered import CacheStatus, TieredCache
from desktop_chat.telemetry.metrics import MetricsRegistry
from devstack.config import StackConfig
from devstack.procs import free_port, pid_alive
from devstack.redis_server import RedisServer


@dataclass
class PrivateRedis:
    """A redis-server of this test alone (loopback, free port, password), as devstack runs it."""

    server: RedisServer

    @property
    def url(self) -> str:
        return self.server.url

    def kill(self) -> None:
        """SIGKILL, like a crash: no shutdown, no goodbye to clients."""
        pid = self.server.pid()
        assert pid is not None, "the private redis-server is not running"
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while pid_alive(pid):
            assert time.monotonic() < deadline, "redis-server survived SIGKILL"
            time.sleep(0.01)

    def start(self) -> None:
        self.server.start()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    config = StackConfig(state_dir=tmp_path / "stack", redis_port=free_port())
    server = RedisServer(config)
    server.start()
    try:
        yield PrivateRedis(server)
    finally:
        server.stop()


def build_cache(
    url: str,
    *,
    policy: CachePolicy | None = None,
    breaker: CircuitBreaker | None = None,
    timer: Callable[[], float] | None = None,
    memory_bytes: int = 8 * 1024 * 1024,
    secret: CacheSecret | None = None,
) -> TieredCache:
    """A TieredCache over the Redis at ``url`` with a memory tier, probing quickly unless told otherwise."""
    policy = policy or CachePolicy()
    options = {"timer": timer} if timer is not None else {}
    return TieredCache(
        codec=Codec(secret or CacheSecret.generate()),
        policy=policy,
        metrics=MetricsRegistry(),
        redis=RedisCacheStore(redis_client(url=url, connect_timeout=1, socket_timeout=2), policy),
        memory=MemoryCacheStore(policy, max_bytes=memory_bytes),
        breaker=breaker or CircuitBreaker(backoff=0.05, backoff_max=0.2),
        **options,
    )


STATUS_DEADLINE = 20.0


CacheFactory = Callable[..., TieredCache]


@pytest.fixture
async def make_cache() -> AsyncIterator[CacheFactory]:
    """``build_cache`` whose caches are closed after the test, whatever happens in it."""
    made: list[TieredCache] = []

    def make(url: str, **options: object) -> TieredCache:
        cache = build_cache(url, **options)  # type: ignore[arg-type]
        made.append(cache)
        return cache

    yield make
    for cache in made:
        await cache.close()


async def wait_for_status(cache: TieredCache, wanted: CacheStatus) -> None:
    """Wait until the cache reports ``wanted``; the deadline only stops a broken test from hanging."""
    if cache.status is wanted:
        return
    reached = asyncio.Event()
    unsubscribe = cache.subscribe_status(lambda status, _detail: reached.set() if status is wanted else None)
    try:
        await asyncio.wait_for(reached.wait(), STATUS_DEADLINE)
    finally:
        unsubscribe()
