"""TieredCache's API over the memory tier alone: hits and misses, freshness, load tokens, unusable entries.

Redis routing, the breaker and outages are exercised against real Redis in tests/integration/cache.
"""

from __future__ import annotations

import asyncio

import pytest

from desktop_chat.cache.codec import Codec
from desktop_chat.cache.keys import CacheKey, KeyKind, chat_key, msgs_key, recent_key
from desktop_chat.cache.memory import MemoryCacheStore
from desktop_chat.cache.policy import CachePolicy
from desktop_chat.cache.secret import CacheSecret
from desktop_chat.cache.store import AppendResult
from desktop_chat.cache.tiered import CacheStatus, TieredCache
from desktop_chat.models import ChatId, UserId
from desktop_chat.telemetry.metrics import CACHE_HITS, CACHE_MISSES, ERRORS, MetricsRegistry
from tests.builders import chat_details, chat_summary, message, messages, new_chat_id, new_user


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


POLICY = CachePolicy(ttl_recent=10, ttl_chat=30, ttl_messages=20, stale_grace=5, max_messages_per_chat=6)


def memory_only() -> tuple[TieredCache, MemoryCacheStore, MetricsRegistry, Clock]:
    clock = Clock()
    memory = MemoryCacheStore(POLICY, clock=clock)
    metrics = MetricsRegistry()
    cache = TieredCache(codec=Codec(CacheSecret.generate()), policy=POLICY, metrics=metrics, memory=memory)
    return cache, memory, metrics, clock


async def test_without_any_tier_caching_is_disabled_and_every_read_misses() -> None:
    metrics = MetricsRegistry()
    cache = TieredCache(codec=Codec(CacheSecret.generate()), policy=POLICY, metrics=metrics)
    user, session = new_user(), new_chat_id()
    assert cache.status is CacheStatus.DISABLED
    await cache.set_chat(user, chat_details(session, user))
    assert await cache.get_chat(user, session) is None
    assert await cache.append_messages(user, session, [message(session, 1)]) is AppendResult.NOT_CACHED
    assert metrics.total(CACHE_HITS) == metrics.total(CACHE_MISSES) == 0
    await cache.close()


async def test_memory_only_round_trips_every_kind_and_counts_hits_and_misses() -> None:
    cache, _, metrics, _ = memory_only()
    assert cache.status is CacheStatus.MEMORY_ONLY and "memory" in cache.detail
    user, session = new_user(), new_chat_id()
    assert await cache.get_recent(user) is None
    chats = (chat_summary(session),)
    await cache.set_recent(user, chats)
    details = chat_details(session, user)
    await cache.set_chat(user, details)
    page = messages(session, 1, 4)
    await cache.set_messages(user, session, page)
    recent = await cache.get_recent(user)
    chat = await cache.get_chat(user, session)
    msgs = await cache.get_messages(user, session)
    assert recent is not None and recent.value == chats and recent.fresh and recent.tier == "memory"
    assert chat is not None and chat.value == details
    assert msgs is not None and msgs.value == tuple(page)
    assert metrics.value(CACHE_HITS, tier="memory", kind="chat") == 1
    assert metrics.value(CACHE_MISSES, tier="memory", kind="recent") == 1
    await cache.close()


async def test_entries_turn_stale_after_their_ttl_then_disappear() -> None:
    cache, _, _, clock = memory_only()
    user, session = new_user(), new_chat_id()
    await cache.set_chat(user, chat_details(session, user))
    clock.now = 29
    assert (hit := await cache.get_chat(user, session)) is not None and hit.fresh
    clock.now = 31
    assert (hit := await cache.get_chat(user, session)) is not None and not hit.fresh
    clock.now = 35
    assert await cache.get_chat(user, session) is None
    await cache.close()


async def test_messages_limit_empty_lists_and_append_results() -> None:
    cache, _, _, _ = memory_only()
    user, session = new_user(), new_chat_id()
    assert await cache.append_messages(user, session, [message(session, 1)]) is AppendResult.NOT_CACHED
    await cache.set_messages(user, session, [])
    empty = await cache.get_messages(user, session)
    assert empty is not None and empty.value == ()  # a hit: the chat has no messages
    page = messages(session, 1, 3)
    assert await cache.append_messages(user, session, page) is AppendResult.APPLIED
    newest = await cache.get_messages(user, session, limit=2)
    assert newest is not None and [m.seq for m in newest.value] == [2, 3]
    edited = page[1].model_copy(update={"content": "edited", "rev": 9})
    assert await cache.append_messages(user, session, [edited]) is AppendResult.APPLIED
    assert await cache.append_messages(user, session, [message(session, 7)]) is AppendResult.GAP
    assert await cache.get_messages(user, session) is None
    await cache.close()


async def test_set_messages_keeps_the_newest_capped_page() -> None:
    cache, _, _, _ = memory_only()
    user, session = new_user(), new_chat_id()
    await cache.set_messages(user, session, list(reversed(messages(session, 1, 10))))
    hit = await cache.get_messages(user, session, limit=100)
    assert hit is not None and [m.seq for m in hit.value] == [5, 6, 7, 8, 9, 10]
    with pytest.raises(ValueError, match="confirmed"):
        await cache.set_messages(user, session, [message(session, 1).model_copy(update={"seq": None})])
    await cache.close()


async def test_a_load_token_goes_stale_when_its_key_changes_meanwhile() -> None:
    cache, _, _, _ = memory_only()
    user, session = new_user(), new_chat_id()
    details = chat_details(session, user)

    token = cache.begin_load(chat_key(user, session))
    await cache.set_chat(user, chat_details(new_chat_id(), user))  # another key: no effect
    assert await cache.set_chat(user, details, token=token)

    token = cache.begin_load(chat_key(user, session))
    await cache.invalidate(user, KeyKind.CHAT, session)
    assert not await cache.set_chat(user, details, token=token)
    assert await cache.get_chat(user, session) is None

    token = cache.begin_load(msgs_key(user, session))
    await cache.append_messages(user, session, [message(session, 1)])  # nothing cached, still a change
    assert not await cache.set_messages(user, session, messages(session, 1, 2), token=token)

    for change in (lambda: cache.purge_user(user), cache.wipe, lambda: cache.invalidate_chat(user, session)):
        token = cache.begin_load(chat_key(user, session))
        await change()
        assert not await cache.set_chat(user, details, token=token)

    token = cache.begin_load(recent_key(user))
    with pytest.raises(ValueError, match="another key"):
        await cache.set_chat(user, details, token=token)
    await cache.close()


async def test_an_unusable_entry_is_a_miss_and_is_deleted() -> None:
    cache, memory, metrics, _ = memory_only()
    user, session = new_user(), new_chat_id()
    await memory.set(chat_key(user, session), b"\x01\x01garbage that is no envelope at all")
    assert await cache.get_chat(user, session) is None
    assert await memory.get(chat_key(user, session)) is None
    assert metrics.value(ERRORS, kind="cache.corrupt.auth") + metrics.value(ERRORS, kind="cache.corrupt.key") == 1
    assert metrics.value(CACHE_MISSES, tier="memory", kind="chat") == 1
    await cache.close()


async def test_a_write_finishes_even_if_its_caller_is_cancelled() -> None:
    cache, _, _, _ = memory_only()
    user, session = new_user(), new_chat_id()
    await cache.set_chat(user, chat_details(session, user))
    task = asyncio.create_task(cache.invalidate_chat(user, session))
    await asyncio.sleep(0)  # the invalidation is under way
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The user's writes run in call order, so once this one is done the cancelled one has run too.
    await cache.invalidate(user, KeyKind.RECENT)
    assert await cache.get_chat(user, session) is None
    await cache.close()


class SlowDeletes(MemoryCacheStore):
    """The memory tier, with deletes that wait for ``done`` (a slow Redis, a write queued ahead)."""

    def __init__(self, policy: CachePolicy) -> None:
        super().__init__(policy)
        self.done = asyncio.Event()

    async def delete(self, *keys: CacheKey) -> None:
        await self.done.wait()
        await super().delete(*keys)

    async def delete_chat(self, user: UserId, chat_id: ChatId) -> None:
        await self.done.wait()
        await super().delete_chat(user, chat_id)


async def test_a_read_while_its_entry_is_being_invalidated_misses() -> None:
    # Live sync shows a renamed chat in the list, then invalidates its cached details: a details read in
    # between must not get the old title from the cache (it did, under load).
    memory = SlowDeletes(POLICY)
    cache = TieredCache(codec=Codec(CacheSecret.generate()), policy=POLICY, metrics=MetricsRegistry(), memory=memory)
    user, renamed, removed = new_user(), new_chat_id(), new_chat_id()
    for session in (renamed, removed):
        await cache.set_chat(user, chat_details(session, user))
        await cache.set_messages(user, session, messages(session, 1, 3))
    invalidating = asyncio.create_task(cache.invalidate(user, KeyKind.CHAT, renamed))
    purging = asyncio.create_task(cache.invalidate_chat(user, removed))
    await asyncio.sleep(0)  # both begun, neither done
    assert not invalidating.done() and not purging.done()
    assert await cache.get_chat(user, renamed) is None
    assert await cache.get_chat(user, removed) is None
    assert await cache.get_messages(user, removed) is None
    assert await cache.get_messages(user, renamed) is not None  # only what is being invalidated misses
    memory.done.set()
    await asyncio.gather(invalidating, purging)
    assert await cache.get_chat(user, renamed) is None
    assert await cache.get_chat(user, removed) is None
    await cache.close()
