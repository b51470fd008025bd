"""The memory tier's own bounds: entries, bytes, expiry by an injected clock. (Behaviour shared with the
Redis store is in tests/contract/test_cache_store.py.)"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from desktop_chat.cache.keys import CacheKey, chat_key, msgs_key, recent_key
from desktop_chat.cache.memory import ENTRY_OVERHEAD, ITEM_OVERHEAD, MemoryCacheStore
from desktop_chat.cache.policy import CachePolicy
from tests.builders import new_chat_id, new_user


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


POLICY = CachePolicy(ttl_recent=10, ttl_chat=20, ttl_messages=15, stale_grace=5, max_chats_per_user=1000)


async def test_least_recently_used_entries_go_first_when_over_the_entry_bound() -> None:
    store = MemoryCacheStore(POLICY, max_entries=3)
    keys = [recent_key(new_user()) for _ in range(4)]
    for key in keys[:3]:
        await store.set(key, b"x")
    assert await store.get(keys[0]) is not None  # now the most recently used
    await store.set(keys[3], b"x")
    assert [await store.get(key) is not None for key in keys] == [True, False, True, True]
    assert store.entry_count == 3


async def test_the_byte_bound_counts_values_and_overhead() -> None:
    store = MemoryCacheStore(POLICY, max_entries=100, max_bytes=3 * (ENTRY_OVERHEAD + 100))
    keys = [recent_key(new_user()) for _ in range(4)]
    for key in keys:
        await store.set(key, b"v" * 100)
    assert store.entry_count == 3 and store.used_bytes == 3 * (ENTRY_OVERHEAD + 100)
    assert await store.get(keys[0]) is None


async def test_a_list_is_accounted_by_its_items() -> None:
    store = MemoryCacheStore(POLICY)
    key = msgs_key(new_user(), new_chat_id())
    await store.set_list(key, b"h" * 10, [(1, b"a" * 50), (2, b"b" * 70)])
    assert store.used_bytes == ENTRY_OVERHEAD + 10 + 2 * ITEM_OVERHEAD + 120
    await store.append_list(key, [(3, b"c" * 30)])
    assert store.used_bytes == ENTRY_OVERHEAD + 10 + 3 * ITEM_OVERHEAD + 150
    await store.delete(key)
    assert store.used_bytes == 0


async def test_an_entry_larger_than_the_bound_is_not_kept() -> None:
    store = MemoryCacheStore(POLICY, max_bytes=1000)
    key = recent_key(new_user())
    await store.set(key, b"x" * 2000)
    assert await store.get(key) is None and store.used_bytes == 0


async def test_zero_capacity_holds_nothing() -> None:
    store = MemoryCacheStore(POLICY, max_entries=0)
    user, session = new_user(), new_chat_id()
    await store.set(chat_key(user, session), b"x")
    assert await store.get(chat_key(user, session)) is None
    assert await store.cached_chats(user) == []


async def test_entries_expire_by_the_injected_clock_and_report_what_is_left() -> None:
    clock = Clock()
    store = MemoryCacheStore(POLICY, clock=clock)
    key = chat_key(new_user(), new_chat_id())
    await store.set(key, b"x")
    clock.now = 12
    stored = await store.get(key)
    assert stored is not None and stored.ttl == 13  # 20 s fresh + 5 s grace, 12 s gone
    assert POLICY.is_fresh(stored.ttl)
    clock.now = 21
    stored = await store.get(key)
    assert stored is not None and not POLICY.is_fresh(stored.ttl)  # stale but served
    clock.now = 25
    assert await store.get(key) is None and await store.ttl(key) is None
    assert store.entry_count == 0 and store.used_bytes == 0


@settings(max_examples=60)
@given(
    st.lists(st.tuples(st.sampled_from(["set", "get", "delete"]), st.integers(0, 9), st.integers(0, 400)), max_size=80)
)
async def test_bounds_hold_under_any_sequence_of_calls(calls: list[tuple[str, int, int]]) -> None:
    store = MemoryCacheStore(POLICY, max_entries=5, max_bytes=4 * ENTRY_OVERHEAD + 600)
    user = new_user()
    sessions = [new_chat_id() for _ in range(10)]
    sizes: dict[int, int] = {}
    for op, index, size in calls:
        key: CacheKey = chat_key(user, sessions[index])
        if op == "set":
            await store.set(key, b"x" * size)
            sizes[index] = size
        elif op == "get":
            await store.get(key)
        else:
            await store.delete(key)
        assert store.entry_count <= 5 and store.used_bytes <= store.max_bytes
        # The accounting matches what is held (ttl() looks without touching the LRU order), and the
        # index lists exactly the cached chats.
        held = [i for i in range(10) if await store.ttl(chat_key(user, sessions[i])) is not None]
        assert store.used_bytes == sum(ENTRY_OVERHEAD + sizes[i] for i in held)
        assert set(await store.cached_chats(user)) == {sessions[i] for i in held}
