"""Redis failing under the cache: killed and restarted, too slow, full. Nothing reaches the caller."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from redis.exceptions import OutOfMemoryError

from desktop_chat.cache.breaker import BreakerState, CircuitBreaker, FailureKind
from desktop_chat.cache.keys import KeyKind, chat_key
from desktop_chat.cache.redis_store import redis_client
from desktop_chat.cache.secret import CacheSecret
from desktop_chat.cache.store import AppendResult
from desktop_chat.cache.tiered import CacheStatus, TieredCache
from desktop_chat.models import ChatId, Message, UserId
from desktop_chat.telemetry.metrics import BREAKER_TRANSITIONS, CACHE_HITS, ERRORS
from tests.builders import chat_details, chat_summary, message, messages, new_chat_id, new_user
from tests.integration.cache.conftest import CacheFactory, PrivateRedis, wait_for_status

pytestmark = pytest.mark.integration


async def exercise_every_call(cache: TieredCache) -> str:
    """Use the whole API once and return the tier that served the final read; raises nothing."""
    user, session = new_user(), new_chat_id()
    await cache.set_recent(user, [chat_summary(session)])
    await cache.set_chat(user, chat_details(session, user))
    await cache.set_messages(user, session, messages(session, 1, 5))
    assert await cache.append_messages(user, session, [message(session, 6)]) is AppendResult.APPLIED
    hits = [await cache.get_recent(user), await cache.get_chat(user, session), await cache.get_messages(user, session)]
    assert all(hit is not None for hit in hits)
    assert await cache.cached_chats(user) == [session]
    await cache.poll_memory()
    await cache.invalidate(user, KeyKind.RECENT)
    await cache.invalidate_chat(user, session)
    assert await cache.get_chat(user, session) is None
    await cache.set_chat(user, chat_details(session, user))
    final = await cache.get_chat(user, session)
    assert final is not None
    await cache.purge_user(user)
    return final.tier


async def test_redis_killed_mid_test_then_restarted(private_redis: PrivateRedis, make_cache: CacheFactory) -> None:
    cache = make_cache(private_redis.url)
    await cache.start()
    seen: list[tuple[CacheStatus, str]] = []
    cache.subscribe_status(lambda status, detail: seen.append((status, detail)))
    user, session = new_user(), new_chat_id()
    await cache.set_chat(user, chat_details(session, user))
    assert (hit := await cache.get_chat(user, session)) is not None and hit.tier == "redis"
    assert cache.status is CacheStatus.ONLINE

    private_redis.kill()
    # The first call after the crash finds Redis gone: a miss, not an exception, and the breaker opens.
    assert await cache.get_chat(user, session) is None
    assert cache.status is CacheStatus.OFFLINE and "cannot be reached" in cache.detail
    assert cache.breaker.reason is FailureKind.CONNECTION
    assert await exercise_every_call(cache) == "memory"
    assert cache.status is CacheStatus.OFFLINE

    await asyncio.to_thread(private_redis.start)
    await wait_for_status(cache, CacheStatus.ONLINE)  # the background probe found it back
    assert await exercise_every_call(cache) == "redis"
    assert [status for status, _ in seen] == [CacheStatus.OFFLINE, CacheStatus.ONLINE]
    assert seen[-1][1] == ""
    metrics = cache.metrics
    assert metrics.value(BREAKER_TRANSITIONS, to="open", reason="connection") >= 1
    assert metrics.value(BREAKER_TRANSITIONS, to="closed", reason="") == 1
    assert metrics.value(ERRORS, kind="cache.connection") >= 1
    assert metrics.value(CACHE_HITS, tier="memory", kind="chat") >= 1


class SwitchableTimer:
    """Latencies as the cache measures them: real, or one second per call while ``slow``."""

    def __init__(self) -> None:
        self.slow = False
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 0.5 if self.slow else 0.0001
        return self.now


async def test_slow_redis_opens_the_breaker_and_recovery_drops_what_redis_missed(
    private_redis: PrivateRedis, make_cache: CacheFactory
) -> None:
    timer = SwitchableTimer()
    # A long backoff: only probe_now() probes, so the test decides when Redis comes back.
    breaker = CircuitBreaker(slow_seconds=0.25, slow_calls=3, slow_window=60, backoff=600)
    cache = make_cache(private_redis.url, breaker=breaker, timer=timer)
    await cache.start()
    user, session = new_user(), new_chat_id()
    await cache.set_chat(user, chat_details(session, user, title="Old title"))

    timer.slow = True
    for _ in range(3):
        await cache.get_recent(user)
    assert cache.status is CacheStatus.OFFLINE and "too slowly" in cache.detail

    # While Redis is not used, the chat is invalidated: only the memory tier hears of it.
    await cache.invalidate_chat(user, session)
    raw = redis_client(url=private_redis.url)
    assert await raw.exists(chat_key(user, session).redis_key) == 1  # Redis still holds the stale entry

    timer.slow = False
    assert await cache.probe_now() is CacheStatus.ONLINE
    assert await raw.exists(chat_key(user, session).redis_key) == 0  # purged before Redis was used again
    assert await cache.get_chat(user, session) is None
    await raw.aclose()


async def test_recovery_keeps_what_redis_did_not_miss_and_gets_what_it_did(
    private_redis: PrivateRedis, make_cache: CacheFactory
) -> None:
    timer = SwitchableTimer()
    breaker = CircuitBreaker(slow_seconds=0.25, slow_calls=3, slow_window=60, backoff=600)
    cache = make_cache(private_redis.url, breaker=breaker, timer=timer)
    await cache.start()
    user, kept, renamed, read = new_user(), new_chat_id(), new_chat_id(), new_chat_id()
    await cache.set_chat(user, chat_details(kept, user, title="Kept"))
    await cache.set_chat(user, chat_details(renamed, user, title="Old title"))
    await cache.set_messages(user, read, messages(read, 1, 3))

    timer.slow = True  # a busy machine: Redis looks slow, the memory tier stands in
    for _ in range(3):
        await cache.get_recent(user)
    assert cache.status is CacheStatus.OFFLINE
    await cache.set_chat(user, chat_details(renamed, user, title="New title"))
    await cache.set_recent(user, [chat_summary(renamed)])
    await cache.set_messages(user, read, messages(read, 1, 4))

    timer.slow = False
    assert await cache.probe_now() is CacheStatus.ONLINE
    hits = [await cache.get_chat(user, kept), await cache.get_chat(user, renamed)]
    assert [(hit.tier, hit.value.chat.title) for hit in hits if hit is not None] == [
        ("redis", "Kept"),  # untouched during the outage: still cached
        ("redis", "New title"),  # written during the outage: Redis got it
    ]
    recent = await cache.get_recent(user)
    assert recent is not None and recent.tier == "redis" and [c.chat.id for c in recent.value] == [renamed]
    listed = await cache.get_messages(user, read)
    assert listed is not None and [m.seq for m in listed.value] == [1, 2, 3, 4]


async def test_closing_during_an_outage_hands_redis_what_only_the_memory_tier_has(
    private_redis: PrivateRedis, make_cache: CacheFactory
) -> None:
    timer = SwitchableTimer()
    breaker = CircuitBreaker(slow_seconds=0.25, slow_calls=3, slow_window=60, backoff=600)
    secret = CacheSecret.generate()  # the install's key, the same after the restart
    cache = make_cache(private_redis.url, breaker=breaker, timer=timer, secret=secret)
    await cache.start()
    user, session = new_user(), new_chat_id()
    timer.slow = True
    for _ in range(3):
        await cache.get_recent(user)
    assert cache.status is CacheStatus.OFFLINE
    await cache.set_recent(user, [chat_summary(session)])
    await cache.purge_user(new_user())  # another user's sign-out, replayed too

    timer.slow = False  # the quit: the load is gone, Redis answers again
    await cache.close()

    after_restart = make_cache(private_redis.url, secret=secret)
    await after_restart.start()
    recent = await after_restart.get_recent(user)
    assert recent is not None and recent.tier == "redis" and [c.chat.id for c in recent.value] == [session]


async def fill(url: str) -> None:
    """Make the Redis at ``url`` full: no eviction, and a maxmemory below what it already uses."""
    admin = redis_client(url=url)
    await admin.config_set("maxmemory-policy", "noeviction")
    await admin.config_set("maxmemory", 1)
    with pytest.raises(OutOfMemoryError):
        await admin.set("dc:test:any-write", b"x")
    await admin.aclose()


def big_messages(session: ChatId) -> list[Message]:
    return [message(session, seq, content="x" * 8000) for seq in range(1, 4)]


WRITES: dict[str, Callable[[TieredCache, UserId, ChatId], Awaitable[object]]] = {
    "set_recent": lambda cache, user, session: cache.set_recent(user, [chat_summary(session)] * 20),
    "set_chat": lambda cache, user, session: cache.set_chat(user, chat_details(session, user)),
    "set_messages": lambda cache, user, session: cache.set_messages(user, session, big_messages(session)),
    "append_messages": lambda cache, user, session: cache.append_messages(
        user, session, [message(session, seq, content="y" * 8000) for seq in (2, 3, 4)]
    ),
}


@pytest.mark.parametrize("write", list(WRITES))
async def test_a_full_redis_opens_the_breaker_until_it_has_room_again(
    private_redis: PrivateRedis, make_cache: CacheFactory, write: str
) -> None:
    cache = make_cache(private_redis.url, breaker=CircuitBreaker(backoff=600))
    await cache.start()
    user, session = new_user(), new_chat_id()
    await cache.set_messages(user, session, [message(session, 1)])  # for append_messages
    await fill(private_redis.url)

    await WRITES[write](cache, user, session)  # refused by Redis: no exception here, the breaker opens
    assert cache.status is CacheStatus.OFFLINE
    assert cache.breaker.reason is FailureKind.OOM and "full" in cache.detail
    assert cache.metrics.value(ERRORS, kind="cache.oom") == 1
    assert await exercise_every_call(cache) == "memory"

    assert await cache.probe_now() is CacheStatus.OFFLINE  # PING answers, the probe's write does not
    assert cache.breaker.state is BreakerState.OPEN
    admin = redis_client(url=private_redis.url)
    await admin.config_set("maxmemory", 0)
    await admin.aclose()
    assert await cache.probe_now() is CacheStatus.ONLINE
    assert await exercise_every_call(cache) == "redis"
