"""TieredCache's hot windows: a message window read from Redis answers again from process memory, until
anything changes its key, its TTL runs out or ``HOT_SECONDS`` pass.

The "Redis" tier here is a memory store that counts its list reads (the routing is the same; real Redis
is exercised by tests/integration/cache and the benchmarks).
"""

from __future__ import annotations

import asyncio

from desktop_chat.cache.codec import Codec
from desktop_chat.cache.keys import CacheKey
from desktop_chat.cache.memory import MemoryCacheStore
from desktop_chat.cache.policy import CachePolicy
from desktop_chat.cache.secret import CacheSecret
from desktop_chat.cache.store import StoredList
from desktop_chat.cache.tiered import HOT_SECONDS, HOT_WINDOWS, TieredCache
from desktop_chat.models import ChatId, UserId
from desktop_chat.telemetry.metrics import CACHE_HITS, MetricsRegistry
from tests.builders import message, messages, new_chat_id, new_user

POLICY = CachePolicy(ttl_recent=100, ttl_chat=100, ttl_messages=100, stale_grace=5, max_messages_per_chat=6)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class CountingStore(MemoryCacheStore):
    """Stands in for Redis: counts the list reads that reach it; ``hold`` pauses them."""

    tier = "redis"

    def __init__(self, clock: Clock) -> None:
        super().__init__(POLICY, clock=clock)
        self.list_reads = 0
        self.hold: asyncio.Event | None = None

    async def get_list(self, key: CacheKey, limit: int) -> StoredList | None:
        self.list_reads += 1
        if self.hold is not None:
            await self.hold.wait()
        return await super().get_list(key, limit)


def cache() -> tuple[TieredCache, CountingStore, MetricsRegistry, Clock]:
    clock = Clock()
    store = CountingStore(clock)
    metrics = MetricsRegistry()
    tiered = TieredCache(codec=Codec(CacheSecret.generate()), policy=POLICY, metrics=metrics, redis=store, clock=clock)
    return tiered, store, metrics, clock


async def seqs(tiered: TieredCache, user: UserId, chat: ChatId, limit: int | None = None) -> list[int | None]:
    hit = await tiered.get_messages(user, chat, limit)
    assert hit is not None
    return [m.seq for m in hit.value]


async def test_a_window_read_from_redis_answers_again_without_a_round_trip() -> None:
    tiered, store, metrics, _ = cache()
    user, chat = new_user(), new_chat_id()
    await tiered.set_messages(user, chat, messages(chat, 1, 5))
    assert await seqs(tiered, user, chat) == [1, 2, 3, 4, 5]
    assert await seqs(tiered, user, chat) == [1, 2, 3, 4, 5]
    assert await seqs(tiered, user, chat, limit=2) == [4, 5]
    assert store.list_reads == 1
    assert metrics.value(CACHE_HITS, tier="hot", kind="msgs") == 2
    await tiered.close()


async def test_a_partial_window_answers_smaller_pages_only() -> None:
    tiered, store, _, _ = cache()
    user, chat = new_user(), new_chat_id()
    await tiered.set_messages(user, chat, messages(chat, 1, 6))
    assert await seqs(tiered, user, chat, limit=3) == [4, 5, 6]
    assert await seqs(tiered, user, chat, limit=2) == [5, 6]
    assert store.list_reads == 1
    assert await seqs(tiered, user, chat) == [1, 2, 3, 4, 5, 6]  # more than was read: Redis again
    assert store.list_reads == 2
    await tiered.close()


async def test_every_change_of_the_key_sends_the_next_read_to_redis() -> None:
    tiered, store, _, _ = cache()
    user, chat = new_user(), new_chat_id()
    await tiered.set_messages(user, chat, messages(chat, 1, 3))
    await seqs(tiered, user, chat)
    await tiered.append_messages(user, chat, [message(chat, 4)])
    assert await seqs(tiered, user, chat) == [1, 2, 3, 4]
    edited = message(chat, 2).model_copy(update={"content": "edited", "rev": 9})
    await tiered.append_messages(user, chat, [edited])
    hit = await tiered.get_messages(user, chat)
    assert hit is not None and hit.value[1].content == "edited"
    await tiered.set_messages(user, chat, messages(chat, 1, 2))
    assert await seqs(tiered, user, chat) == [1, 2]
    await tiered.invalidate_chat(user, chat)
    assert await tiered.get_messages(user, chat) is None
    await tiered.set_messages(user, chat, messages(chat, 1, 2))
    await seqs(tiered, user, chat)
    await tiered.purge_user(user)
    assert await tiered.get_messages(user, chat) is None
    await tiered.set_messages(user, chat, messages(chat, 1, 2))
    await seqs(tiered, user, chat)
    await tiered.wipe()
    assert await tiered.get_messages(user, chat) is None
    assert store.list_reads == 9  # every read after a change reached the store
    await tiered.close()


async def test_a_change_while_the_read_is_on_its_way_keeps_the_old_answer_out() -> None:
    tiered, store, _, _ = cache()
    user, chat = new_user(), new_chat_id()
    await tiered.set_messages(user, chat, messages(chat, 1, 3))
    store.hold = asyncio.Event()
    reading = asyncio.create_task(seqs(tiered, user, chat))
    await asyncio.sleep(0)
    # The append is queued behind nothing: it bumps the key's generation before the held read returns.
    appending = asyncio.create_task(tiered.append_messages(user, chat, [message(chat, 4)]))
    await asyncio.sleep(0)
    store.hold.set()
    store.hold = None
    await asyncio.gather(reading, appending)
    assert await seqs(tiered, user, chat) == [1, 2, 3, 4]
    assert store.list_reads == 2
    await tiered.close()


async def test_hot_windows_expire_with_the_ttl_and_after_hot_seconds() -> None:
    tiered, store, _, clock = cache()
    user, chat = new_user(), new_chat_id()
    await tiered.set_messages(user, chat, messages(chat, 1, 2))
    await seqs(tiered, user, chat)
    clock.now = HOT_SECONDS - 1
    await seqs(tiered, user, chat)
    assert store.list_reads == 1
    clock.now = HOT_SECONDS + 1
    await seqs(tiered, user, chat)
    assert store.list_reads == 2  # read again (this also moves the chat up in Redis's recency index)
    clock.now = 80
    await tiered.set_messages(user, chat, messages(chat, 1, 2))  # kept by the store until 185
    await seqs(tiered, user, chat)
    reads = store.list_reads
    clock.now = 181  # four seconds of the store's TTL left: within the stale grace
    hit = await tiered.get_messages(user, chat)
    assert hit is not None and not hit.fresh
    assert store.list_reads == reads + 1  # HOT_SECONDS passed; read again
    clock.now = 184  # the hot window (read at 181) says stale too
    hit = await tiered.get_messages(user, chat)
    assert hit is not None and not hit.fresh and store.list_reads == reads + 1
    clock.now = 186
    assert await tiered.get_messages(user, chat) is None  # gone from the store; the hot window went too
    await tiered.close()


async def test_only_the_most_recently_read_windows_stay_hot() -> None:
    tiered, store, _, _ = cache()
    user = new_user()
    chats = [new_chat_id() for _ in range(HOT_WINDOWS + 1)]
    for chat in chats:
        await tiered.set_messages(user, chat, messages(chat, 1, 1))
        await seqs(tiered, user, chat)
    reads = store.list_reads
    await seqs(tiered, user, chats[-1])
    assert store.list_reads == reads
    await seqs(tiered, user, chats[0])  # the least recently read one was let go
    assert store.list_reads == reads + 1
    await tiered.close()


async def test_forgetting_the_hot_windows_sends_the_next_read_to_redis() -> None:
    tiered, store, _, _ = cache()
    user, chat = new_user(), new_chat_id()
    await tiered.set_messages(user, chat, messages(chat, 1, 2))
    await seqs(tiered, user, chat)
    tiered.forget_hot_windows()
    assert await seqs(tiered, user, chat) == [1, 2]
    assert store.list_reads == 2
    await tiered.close()
