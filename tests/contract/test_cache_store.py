"""One contract for every CacheStore: the memory tier and Redis (the throwaway stack's real server).

Each test uses fresh user ids, so tests never see each other's keys in the shared Redis. The tests that
wipe the whole namespace use their own database number. Expiry on Redis is real time (short TTLs);
on the memory tier an injected clock jumps instead.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest

from desktop_chat.cache.keys import META_KEY_ID, chat_key, chats_index_key, msgs_key, recent_key
from desktop_chat.cache.memory import MemoryCacheStore
from desktop_chat.cache.policy import CachePolicy, newest_by_seq
from desktop_chat.cache.redis_store import RedisCacheStore, redis_client
from desktop_chat.cache.store import AppendResult, CacheStore, ListItem
from tests.builders import new_chat_id, new_user
from tests.conftest import StackHandle

pytestmark = pytest.mark.integration

LONG = CachePolicy(
    ttl_recent=300, ttl_chat=1800, ttl_messages=900, stale_grace=60, max_messages_per_chat=5, max_chats_per_user=3
)
# Kept for 0.6 s: fresh for 0.3 s, then stale for 0.3 s. The waits below leave 0.2 s of slack either side.
SHORT = CachePolicy(
    ttl_recent=0.3, ttl_chat=0.3, ttl_messages=0.3, stale_grace=0.3, max_messages_per_chat=5, max_chats_per_user=3
)
WIPE_DB = 5  # the namespace-wide tests' own database


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Harness:
    """Makes stores of one kind and lets time pass for them."""

    kind: str
    make: Callable[[CachePolicy], Awaitable[CacheStore]]
    advance: Callable[[float], Awaitable[None]]
    raw: Callable[[], Awaitable[list[str]]]  # every key name in the store's namespace, for leak checks


@pytest.fixture(params=["memory", "redis"])
def redis_url(request: pytest.FixtureRequest) -> str | None:
    """None for the memory tier; for Redis, the stack's URL (the stack starts outside any event loop)."""
    if request.param == "memory":
        return None
    stack: StackHandle = request.getfixturevalue("stack")
    db = WIPE_DB if request.node.get_closest_marker("own_db") else 0
    return stack.redis_url.rsplit("/", 1)[0] + f"/{db}"


@pytest.fixture
async def harness(redis_url: str | None) -> AsyncIterator[Harness]:
    made: list[CacheStore] = []
    if redis_url is None:
        clock = Clock()

        async def make_memory(policy: CachePolicy) -> CacheStore:
            store = MemoryCacheStore(policy, clock=clock)
            made.append(store)
            return store

        async def tick(seconds: float) -> None:
            clock.now += seconds

        async def memory_keys() -> list[str]:
            return [
                key.redis_key for store in made if isinstance(store, MemoryCacheStore) for key in store.cached_keys()
            ]

        yield Harness("memory", make_memory, tick, memory_keys)
    else:
        url = redis_url

        async def make_redis(policy: CachePolicy) -> CacheStore:
            store = RedisCacheStore(redis_client(url=url, socket_timeout=5, connect_timeout=5), policy)
            made.append(store)
            return store

        async def sleep(seconds: float) -> None:
            await asyncio.sleep(seconds)

        async def redis_keys() -> list[str]:
            client = redis_client(url=url)
            try:
                return [name.decode() async for name in client.scan_iter(match="dc:v1:*")]
            finally:
                await client.aclose()

        yield Harness("redis", make_redis, sleep, redis_keys)
    for store in made:
        await store.close()


def items(first: int, last: int, tag: bytes = b"m") -> list[ListItem]:
    return [(seq, tag + str(seq).encode()) for seq in range(first, last + 1)]


# --- plain values ------------------------------------------------------------------------------------


async def test_get_of_a_missing_key_is_none(harness: Harness) -> None:
    store = await harness.make(LONG)
    assert await store.get(recent_key(new_user())) is None
    assert await store.get_list(msgs_key(new_user(), new_chat_id()), 10) is None
    assert await store.ttl(chat_key(new_user(), new_chat_id())) is None


async def test_set_then_get_returns_the_bytes_with_the_kinds_ttl(harness: Harness) -> None:
    store = await harness.make(LONG)
    user, session = new_user(), new_chat_id()
    await store.set(recent_key(user), b"recent")
    await store.set(chat_key(user, session), b"\x00chat\xff")
    recent = await store.get(recent_key(user))
    chat = await store.get(chat_key(user, session))
    assert recent is not None and recent.data == b"recent"
    assert chat is not None and chat.data == b"\x00chat\xff"
    assert recent.ttl is not None and 350 < recent.ttl <= 360  # 300 s fresh + 60 s grace
    assert chat.ttl is not None and 1850 < chat.ttl <= 1860
    await store.set(chat_key(user, session), b"newer")
    again = await store.get(chat_key(user, session))
    assert again is not None and again.data == b"newer"


async def test_entries_expire_after_ttl_and_grace(harness: Harness) -> None:
    store = await harness.make(SHORT)
    user, session = new_user(), new_chat_id()
    await store.set(chat_key(user, session), b"x")
    await store.set_list(msgs_key(user, session), b"head", items(1, 2))
    await harness.advance(0.4)
    stale = await store.get(chat_key(user, session))
    assert stale is not None and not SHORT.is_fresh(stale.ttl)  # past its TTL: served, marked stale
    await harness.advance(0.4)
    assert await store.get(chat_key(user, session)) is None
    assert await store.get_list(msgs_key(user, session), 5) is None


async def test_delete_removes_only_the_given_keys(harness: Harness) -> None:
    store = await harness.make(LONG)
    user, session = new_user(), new_chat_id()
    await store.set(recent_key(user), b"r")
    await store.set(chat_key(user, session), b"c")
    await store.set_list(msgs_key(user, session), b"h", items(1, 2))
    await store.delete(chat_key(user, session), msgs_key(user, session), chat_key(user, new_chat_id()))
    assert await store.get(chat_key(user, session)) is None
    assert await store.get_list(msgs_key(user, session), 5) is None
    assert await store.get(recent_key(user)) is not None
    await store.delete()  # nothing: no error


# --- message lists -----------------------------------------------------------------------------------


async def test_a_list_returns_its_newest_items_ascending(harness: Harness) -> None:
    store = await harness.make(LONG)
    key = msgs_key(new_user(), new_chat_id())
    await store.set_list(key, b"head", [(3, b"c"), (1, b"a"), (2, b"b")])
    full = await store.get_list(key, 10)
    assert full is not None and full.head == b"head" and full.items == ((1, b"a"), (2, b"b"), (3, b"c"))
    assert full.ttl is not None and 950 < full.ttl <= 960
    newest = await store.get_list(key, 2)
    assert newest is not None and newest.items == ((2, b"b"), (3, b"c")) and newest.head == b"head"
    none = await store.get_list(key, 0)
    assert none is not None and none.items == ()


async def test_an_empty_list_is_cached_not_missing(harness: Harness) -> None:
    store = await harness.make(LONG)
    key = msgs_key(new_user(), new_chat_id())
    await store.set_list(key, b"head", [])
    stored = await store.get_list(key, 50)
    assert stored is not None and stored.items == () and stored.head == b"head"


async def test_set_list_keeps_the_newest_capped_items_and_replaces_what_was_there(harness: Harness) -> None:
    store = await harness.make(LONG)
    key = msgs_key(new_user(), new_chat_id())
    await store.set_list(key, b"h1", items(1, 4, b"old"))
    await store.set_list(key, b"h2", items(3, 10))
    stored = await store.get_list(key, 50)
    assert stored is not None and stored.head == b"h2"
    assert stored.items == tuple(items(6, 10))  # cap 5, nothing of the old list left


async def test_append_and_trim_keeps_the_newest_n_in_order(harness: Harness) -> None:
    store = await harness.make(LONG)
    key = msgs_key(new_user(), new_chat_id())
    await store.set_list(key, b"h", items(1, 2))
    assert await store.append_list(key, items(3, 4)) is AppendResult.APPLIED
    assert await store.append_list(key, [(6, b"m6"), (5, b"m5")]) is AppendResult.APPLIED  # any order
    assert await store.append_list(key, items(7, 8)) is AppendResult.APPLIED
    stored = await store.get_list(key, 50)
    assert stored is not None and stored.items == tuple(items(4, 8)) and stored.head == b"h"


async def test_append_replaces_an_item_with_the_same_seq(harness: Harness) -> None:
    store = await harness.make(LONG)
    key = msgs_key(new_user(), new_chat_id())
    await store.set_list(key, b"h", items(1, 3))
    assert await store.append_list(key, [(2, b"edited"), (3, b"first"), (3, b"second")]) is AppendResult.APPLIED
    stored = await store.get_list(key, 50)
    assert stored is not None and stored.items == ((1, b"m1"), (2, b"edited"), (3, b"second"))


async def test_append_to_a_missing_list_writes_nothing(harness: Harness) -> None:
    store = await harness.make(LONG)
    user, session = new_user(), new_chat_id()
    assert await store.append_list(msgs_key(user, session), items(1, 1)) is AppendResult.NOT_CACHED
    assert await store.get_list(msgs_key(user, session), 5) is None


async def test_append_with_a_gap_drops_the_list(harness: Harness) -> None:
    store = await harness.make(LONG)
    key = msgs_key(new_user(), new_chat_id())
    await store.set_list(key, b"h", items(1, 3))
    assert await store.append_list(key, [(4, b"m4"), (6, b"m6")]) is AppendResult.GAP
    assert await store.get_list(key, 5) is None
    await store.set_list(key, b"h", [])
    assert await store.append_list(key, [(2, b"m2")]) is AppendResult.GAP  # an empty chat starts at 1


async def test_append_skips_items_older_than_the_cached_window(harness: Harness) -> None:
    store = await harness.make(LONG)
    key = msgs_key(new_user(), new_chat_id())
    await store.set_list(key, b"h", items(10, 14))
    assert await store.append_list(key, [(3, b"edit of an uncached message"), (12, b"e12")]) is AppendResult.APPLIED
    stored = await store.get_list(key, 50)
    assert stored is not None and [seq for seq, _ in stored.items] == [10, 11, 12, 13, 14]
    assert dict(stored.items)[12] == b"e12"


async def test_append_refreshes_the_lists_ttl(harness: Harness) -> None:
    store = await harness.make(SHORT)
    key = msgs_key(new_user(), new_chat_id())
    await store.set_list(key, b"h", items(1, 1))
    await harness.advance(0.4)
    assert await store.append_list(key, items(2, 2)) is AppendResult.APPLIED
    await harness.advance(0.4)  # 0.8 s after set_list: past its 0.6 s, within the refreshed one
    stored = await store.get_list(key, 5)
    assert stored is not None and [seq for seq, _ in stored.items] == [1, 2]


async def test_random_appends_match_a_model_of_newest_n(harness: Harness) -> None:
    store = await harness.make(LONG)
    rng = random.Random(7)
    key = msgs_key(new_user(), new_chat_id())
    model: dict[int, bytes] = dict(items(1, 3))
    await store.set_list(key, b"h", list(model.items()))
    top = 3
    for round_ in range(25):
        batch: list[ListItem] = []
        for _ in range(rng.randint(1, 4)):
            if rng.random() < 0.6:
                top += 1
                batch.append((top, f"new{top}".encode()))
            else:
                seq = rng.randint(max(1, top - 7), top)
                batch.append((seq, f"edit{seq}.{round_}".encode()))
        assert await store.append_list(key, batch) is AppendResult.APPLIED
        floor = min(model)
        for seq, blob in sorted(batch, key=lambda item: item[0]):
            if seq >= floor:
                model[seq] = blob
        model = dict(newest_by_seq(model.items(), lambda item: item[0], LONG.max_messages_per_chat))
        stored = await store.get_list(key, 50)
        assert stored is not None and stored.items == tuple(sorted(model.items()))


# --- removal, purge, caps ----------------------------------------------------------------------------


async def test_delete_chat_removes_its_entries_and_its_index_entry(harness: Harness) -> None:
    store = await harness.make(LONG)
    user, doomed, kept = new_user(), new_chat_id(), new_chat_id()
    for session in (doomed, kept):
        await store.set(chat_key(user, session), b"c")
        await store.set_list(msgs_key(user, session), b"h", items(1, 2))
    await store.delete_chat(user, doomed)
    assert await store.get(chat_key(user, doomed)) is None
    assert await store.get_list(msgs_key(user, doomed), 5) is None
    assert await store.get(chat_key(user, kept)) is not None
    assert await store.cached_chats(user) == [kept]


async def test_purge_user_removes_every_entry_of_that_user_only(harness: Harness) -> None:
    store = await harness.make(LONG)
    alice, bob = new_user(), new_user()
    sessions = [new_chat_id() for _ in range(3)]
    for user in (alice, bob):
        await store.set(recent_key(user), b"r")
        for session in sessions:
            await store.set(chat_key(user, session), b"c")
            await store.set_list(msgs_key(user, session), b"h", items(1, 2))
    await store.purge_user(alice)
    assert await store.get(recent_key(alice)) is None
    assert all([await store.get(chat_key(alice, s)) is None for s in sessions])
    assert all([await store.get_list(msgs_key(alice, s), 5) is None for s in sessions])
    assert await store.cached_chats(alice) == []
    assert not [name for name in await harness.raw() if f":{alice}:" in name]
    assert await store.get(recent_key(bob)) is not None
    assert all([await store.get(chat_key(bob, s)) is not None for s in sessions])


async def test_the_chat_cap_evicts_the_users_least_recently_used_chats(harness: Harness) -> None:
    store = await harness.make(LONG)  # 3 chats per user
    user, other = new_user(), new_user()
    first, second, third, fourth = (new_chat_id() for _ in range(4))
    await store.set(chat_key(other, first), b"other user")
    for session in (first, second, third):
        await store.set(chat_key(user, session), b"c")
        await store.set_list(msgs_key(user, session), b"h", items(1, 1))
    assert await store.cached_chats(user) == [first, second, third]
    await store.get(chat_key(user, first))  # a read counts as use: `second` is now the oldest
    await store.set(chat_key(user, fourth), b"c")
    assert await store.cached_chats(user) == [third, first, fourth]
    assert await store.get(chat_key(user, second)) is None
    assert await store.get_list(msgs_key(user, second), 5) is None
    assert await store.get(chat_key(user, first)) is not None
    assert await store.get(chat_key(other, first)) is not None  # caps are per user
    await store.get_list(msgs_key(user, third), 5)  # list reads count too
    await store.set_list(msgs_key(user, new_chat_id()), b"h", [])
    assert len(await store.cached_chats(user)) == 3 and third in await store.cached_chats(user)


async def test_a_flood_of_chats_stays_within_the_cap(harness: Harness) -> None:
    store = await harness.make(LONG)
    user = new_user()
    sessions = [new_chat_id() for _ in range(30)]
    for session in sessions:
        await store.set(chat_key(user, session), b"c" * 100)
        await store.set_list(msgs_key(user, session), b"h", items(1, 8))
    assert await store.cached_chats(user) == sessions[-3:]
    names = [name for name in await harness.raw() if f":{user}:" in name]
    assert len(names) == 3 * 2 + (1 if harness.kind == "redis" else 0)  # + the Redis index key


async def test_keys_of_the_wrong_kind_are_refused(harness: Harness) -> None:
    store = await harness.make(LONG)
    user, session = new_user(), new_chat_id()
    with pytest.raises(ValueError, match="list"):
        await store.set(msgs_key(user, session), b"x")
    with pytest.raises(ValueError, match="plain value"):
        await store.get_list(chat_key(user, session), 5)


async def test_memory_in_use_is_reported(harness: Harness) -> None:
    store = await harness.make(LONG)
    assert await store.used_memory() >= 0
    before = await store.used_memory()
    await store.set_list(msgs_key(new_user(), new_chat_id()), b"h", [(i, b"x" * 2000) for i in range(1, 6)])
    assert await store.used_memory() > before


# --- namespace-wide ----------------------------------------------------------------------------------


@pytest.mark.own_db
async def test_wipe_removes_every_users_entries(harness: Harness) -> None:
    store = await harness.make(LONG)
    users = [new_user() for _ in range(3)]
    for user in users:
        await store.set(recent_key(user), b"r")
        await store.set_list(msgs_key(user, new_chat_id()), b"h", items(1, 1))
    await store.wipe()
    assert all([await store.get(recent_key(user)) is None for user in users])
    assert [name for name in await harness.raw() if not name.startswith("dc:v1:meta:")] == []


@pytest.mark.own_db
async def test_a_new_key_id_wipes_the_namespace_once(harness: Harness) -> None:
    store = await harness.make(LONG)
    await store.ensure_key_id("0badc0de")
    user = new_user()
    await store.set(recent_key(user), b"r")
    assert not await store.ensure_key_id("0badc0de")
    assert await store.get(recent_key(user)) is not None
    assert await store.ensure_key_id("feedf00d")
    assert await store.get(recent_key(user)) is None
    if harness.kind == "redis":
        assert META_KEY_ID in await harness.raw() and chats_index_key(user) not in await harness.raw()
