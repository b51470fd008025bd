"""Caps under a flood of chats: per-user chat cap in Redis and in the memory tier, Redis's own maxmemory."""

from __future__ import annotations

import pytest

from desktop_chat.cache.breaker import CircuitBreaker, FailureKind
from desktop_chat.cache.codec import Codec
from desktop_chat.cache.managed import ManagedRedis
from desktop_chat.cache.memory import MemoryCacheStore
from desktop_chat.cache.policy import CachePolicy
from desktop_chat.cache.redis_store import RedisCacheStore, redis_client
from desktop_chat.cache.secret import CacheSecret
from desktop_chat.cache.tiered import CacheStatus, TieredCache
from desktop_chat.telemetry.metrics import MetricsRegistry
from tests.builders import chat_details, message, messages, new_chat_id, new_user
from tests.conftest import StackHandle
from tests.integration.cache.conftest import CacheFactory

pytestmark = pytest.mark.integration

CAPPED = CachePolicy(max_chats_per_user=5, max_messages_per_chat=20)


async def test_a_flood_of_chats_keeps_only_the_newest_per_user(stack: StackHandle, make_cache: CacheFactory) -> None:
    cache = make_cache(stack.redis_url, policy=CAPPED)
    await cache.start()
    user, neighbour = new_user(), new_user()
    neighbours_chat = new_chat_id()
    await cache.set_chat(neighbour, chat_details(neighbours_chat, neighbour))
    sessions = [new_chat_id() for _ in range(60)]
    for session in sessions:
        await cache.set_chat(user, chat_details(session, user))
        await cache.set_messages(user, session, messages(session, 1, 30))
    assert await cache.cached_chats(user) == sessions[-5:]
    raw = redis_client(url=stack.redis_url)
    names = sorted([name.decode() async for name in raw.scan_iter(match=f"dc:v1:{user}:*")])
    await raw.aclose()
    assert len(names) == 5 * 2 + 1  # chat and msgs of the five newest, and the index
    newest = await cache.get_messages(user, sessions[-1])
    assert newest is not None and [m.seq for m in newest.value] == list(range(11, 31))
    assert await cache.get_chat(user, sessions[0]) is None
    assert await cache.get_chat(neighbour, neighbours_chat) is not None  # another user's cap


async def test_the_memory_tier_holds_its_bounds_under_a_flood(stack: StackHandle, make_cache: CacheFactory) -> None:
    # Redis unreachable from the start (nothing listens on port 1): everything lands in the memory tier.
    budget = 256 * 1024
    cache = make_cache("redis://127.0.0.1:1/0", policy=CAPPED, memory_bytes=budget)
    await cache.start()
    assert cache.status is CacheStatus.OFFLINE
    user = new_user()
    sessions = [new_chat_id() for _ in range(40)]
    for session in sessions:
        await cache.set_chat(user, chat_details(session, user))
        await cache.set_messages(user, session, messages(session, 1, 30))
        figures = await cache.poll_memory()
        assert figures["memory_tier_bytes"] is not None and figures["memory_tier_bytes"] <= budget
    cached = await cache.cached_chats(user)
    assert len(cached) <= 5 and cached[-1] == sessions[-1]
    assert await cache.get_messages(user, sessions[-1]) is not None


async def test_the_managed_redis_evicts_instead_of_failing_when_full(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # 8 MB of maxmemory against ~20 MB of messages: allkeys-lru makes room, no call fails.
    managed = ManagedRedis(tmp_path / "run", maxmemory_mb=8)
    endpoint = await managed.start()
    assert endpoint is not None
    policy = CachePolicy(max_chats_per_user=1000, max_messages_per_chat=50)
    metrics = MetricsRegistry()
    cache = TieredCache(
        codec=Codec(CacheSecret.generate()),
        policy=policy,
        metrics=metrics,
        redis=RedisCacheStore(redis_client(unix_socket=str(endpoint.socket), password=endpoint.password), policy),
        memory=MemoryCacheStore(policy),
        breaker=CircuitBreaker(backoff=600),
    )
    try:
        await cache.start()
        user = new_user()
        for _ in range(50):
            session = new_chat_id()
            await cache.set_messages(user, session, [message(session, seq, content="z" * 8000) for seq in range(1, 51)])
        assert cache.status is CacheStatus.ONLINE, cache.breaker.reason
        assert cache.breaker.reason is not FailureKind.OOM
        figures = await cache.poll_memory()
        used = figures["redis_used_memory"]
        assert used is not None and used <= 9 * 1024 * 1024
    finally:
        await cache.close()
        await managed.stop()
