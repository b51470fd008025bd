"""ChatStore's read path against the real stack: Redis first, Supabase when it must, never another user's data."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest

from desktop_chat.cache import CacheStatus, msgs_key, recent_key
from desktop_chat.dal.chat_store import ChatStore
from desktop_chat.dal.factory import DataLayer
from desktop_chat.errors import BackendUnavailable, Unauthorized
from desktop_chat.models import ChatId, MessageUpserted, UserId
from desktop_chat.telemetry.metrics import CACHE_HITS, SUPABASE_LATENCY
from tests.conftest import StackHandle
from tests.integration.dal.conftest import (
    ALICE,
    ALICE_BOB_CHAT,
    ALICE_EMAIL,
    BOB_EMAIL,
    BOOK_CLUB_CHAT,
    FALCON_CHAT,
    PASSWORD,
    LayerFactory,
    eventually,
)

pytestmark = pytest.mark.integration


def supabase_calls(layer: object, op: str) -> int:
    histogram = layer.metrics.histogram(SUPABASE_LATENCY, op=op)  # type: ignore[attr-defined]
    return int(histogram.count)


async def test_sign_in_warms_the_cache_and_reads_then_come_from_redis(make_layer: LayerFactory) -> None:
    layer = await make_layer("alice", realtime=False)
    store = layer.store
    profile = await store.sign_in(ALICE_EMAIL, PASSWORD)
    assert profile.id == ALICE
    assert profile.display_name == "Alice"

    # Warming: the recent list, then the newest page of the top chats, in the background.
    await store.settle()
    assert len(await layer.cache.cached_chats(profile.id)) >= 2

    before = supabase_calls(layer, "recent")
    chats = await store.recent_chats()
    assert {c.chat.id for c in chats} >= {ALICE_BOB_CHAT, FALCON_CHAT}
    assert BOOK_CLUB_CHAT not in {c.chat.id for c in chats}  # alice is not in carol's book club
    assert supabase_calls(layer, "recent") == before  # served by the cache
    assert layer.metrics.total(CACHE_HITS) > 0
    assert store.status.cache is CacheStatus.ONLINE

    for summary in chats[:5]:  # warming loaded the newest page of alice's top chats
        assert await layer.cache.get_messages(ALICE, summary.chat.id) is not None
    loads = supabase_calls(layer, "msgs")
    top = chats[0].chat
    page = await store.messages(top.id)
    assert supabase_calls(layer, "msgs") == loads  # the page came from the cache
    assert [m.seq for m in page.messages] == list(range(max(1, top.last_seq - 49), top.last_seq + 1))
    assert page.has_more is (top.last_seq > 50)


async def test_concurrent_readers_of_a_cold_key_share_one_load(make_layer: LayerFactory) -> None:
    layer = await make_layer("alice", realtime=False)
    await layer.store.sign_in(ALICE_EMAIL, PASSWORD)
    await layer.store.settle()  # the warming is done
    await layer.cache.invalidate(ALICE, msgs_key(ALICE, ChatId(FALCON_CHAT)).kind, ChatId(FALCON_CHAT))
    before = supabase_calls(layer, "msgs")
    pages = await asyncio.gather(*(layer.store.messages(ChatId(FALCON_CHAT)) for _ in range(10)))
    assert all(page == pages[0] for page in pages)
    assert supabase_calls(layer, "msgs") - before <= 1


async def test_an_expired_entry_is_served_while_one_refresh_runs(make_layer: LayerFactory) -> None:
    layer = await make_layer("alice", realtime=False, cache_ttl_recent=1)
    store = layer.store
    await store.sign_in(ALICE_EMAIL, PASSWORD)
    first = await store.recent_chats()
    await asyncio.sleep(1.2)  # past the TTL (1 s), inside the stale grace
    hit = await layer.cache.get_recent(ALICE)
    assert hit is not None and not hit.fresh
    before = supabase_calls(layer, "recent")
    served = await store.recent_chats()
    assert [c.chat.id for c in served] == [c.chat.id for c in first]
    await eventually(lambda: supabase_calls(layer, "recent") == before + 1, what="one background refresh")
    await store.settle()  # the call is counted when it answers; its write to the cache follows
    assert supabase_calls(layer, "recent") == before + 1
    refreshed = await layer.cache.get_recent(ALICE)
    assert refreshed is not None and refreshed.fresh


async def test_live_changes_are_written_through_to_the_cached_window(
    make_layer: LayerFactory, stack: StackHandle
) -> None:
    layer = await make_layer("alice", realtime=False)
    store = layer.store
    await store.sign_in(ALICE_EMAIL, PASSWORD)
    chat = await store.create_chat("write-through", [BOB_EMAIL])
    timeline = await store.open_chat(chat)
    before = len(timeline)
    # Bob posts (as PostgREST would run it), and the change reaches the store as realtime would bring it.
    conn = await asyncpg.connect(stack.db_url)
    try:
        row = await conn.fetchrow(
            "insert into public.chat_messages (id, session_id, sender_id, content)"
            " values ($1, $2, 'b0b00000-0000-4000-8000-000000000002', 'written through') returning *",
            uuid.uuid4(),
            chat,
        )
    finally:
        await conn.close()
    assert row is not None
    message = (await layer.backend.fetch_messages_since(chat, row["rev"] - 1))[0]
    await store.signed_in.live.apply_now([MessageUpserted(message=message)])

    cached = await layer.cache.get_messages(ALICE, chat)
    assert cached is not None
    assert cached.value[-1].id == message.id
    assert len(timeline) == before + 1
    assert timeline.rows[-1].content == "written through"
    summary = store.chat_list().get(chat)
    assert summary is not None and summary.last_message is not None
    assert summary.last_message.id == message.id


async def test_users_never_see_each_others_cache(make_layer: LayerFactory, stack: StackHandle) -> None:
    # One install (one cache key, one Redis database), two users one after the other.
    url = stack.redis_url.rsplit("/", 1)[0] + "/15"
    alice_layer = await make_layer("shared", realtime=False, redis_url=url)
    await alice_layer.store.sign_in(ALICE_EMAIL, PASSWORD)
    alice_chats = {c.chat.id for c in await alice_layer.store.recent_chats()}
    await alice_layer.store.messages(ChatId(ALICE_BOB_CHAT))
    await alice_layer.store.sign_out()
    # Signing out purged alice's entries.
    assert await alice_layer.cache.get_recent(ALICE) is None
    bob = await alice_layer.store.sign_in(BOB_EMAIL, PASSWORD)
    bob_chats = {c.chat.id for c in await alice_layer.store.recent_chats()}
    assert BOOK_CLUB_CHAT in bob_chats
    assert BOOK_CLUB_CHAT not in alice_chats
    assert recent_key(ALICE) != recent_key(bob.id)


async def test_a_wrong_password_is_unauthorized_in_plain_words(make_layer: LayerFactory) -> None:
    layer = await make_layer("alice", realtime=False)
    with pytest.raises(Unauthorized, match="Wrong email or password"):
        await layer.store.sign_in(ALICE_EMAIL, "not the password")


async def test_the_session_is_restored_from_the_keyring(make_layer: LayerFactory, stack: StackHandle) -> None:
    first = await make_layer("alice", realtime=False)
    await first.store.sign_in(ALICE_EMAIL, PASSWORD)
    # The keyring holds the refresh token, never the whole session.
    secret = first.secrets.get(first.backend.auth.secret_name)
    assert secret is not None and len(secret) < 2560 and "access_token" not in secret
    await first.close()

    again = await make_layer("alice-again", realtime=False, config_dir=first.settings.config_dir)
    again.secrets._backend = first.secrets._backend  # the same OS keyring
    profile = await again.store.restore_session()
    assert profile is not None and profile.id == ALICE


async def test_redis_down_mid_session_falls_back_to_memory_and_recovers(
    make_layer: LayerFactory, stack: StackHandle
) -> None:
    layer = await make_layer("alice", realtime=False)
    store = layer.store
    await store.sign_in(ALICE_EMAIL, PASSWORD)
    await store.recent_chats()
    redis = stack.stack.redis
    redis.stop()
    try:
        chats = await store.recent_chats()  # no exception reaches the caller
        assert chats
        page = await store.messages(ChatId(FALCON_CHAT))
        assert page.messages
        await eventually(lambda: layer.cache.status is CacheStatus.OFFLINE, what="breaker open")
        assert store.status.cache is CacheStatus.OFFLINE
    finally:
        redis.start()
    assert await layer.cache.probe_now() is CacheStatus.ONLINE
    await eventually(lambda: store.status.cache is CacheStatus.ONLINE, what="breaker closed")
    assert await store.recent_chats()


async def test_an_unreachable_server_serves_the_cache_and_says_so(make_layer: LayerFactory, stack: StackHandle) -> None:
    layer = await make_layer("alice", realtime=False)
    store = layer.store
    await store.sign_in(ALICE_EMAIL, PASSWORD)
    cached = await store.recent_chats()
    gateway = stack.stack.gateway
    gateway.stop()
    try:
        assert [c.chat.id for c in await store.recent_chats()] == [c.chat.id for c in cached]
        with pytest.raises(BackendUnavailable):
            await store.messages(ChatId(FALCON_CHAT), before_seq=2)  # history is not cached
        assert store.status.backend_reachable is False
        assert "reach" in store.status.detail or "answer" in store.status.detail
    finally:
        gateway.start()
    await store.messages(ChatId(FALCON_CHAT), before_seq=2)
    assert store.status.backend_reachable is True


async def long_chat(store: ChatStore, stack: StackHandle, messages: int) -> ChatId:
    """A new chat of alice and bob with ``messages`` lines, written straight into the database.

    Nothing may cache the chat's window before the rows are there (they bypass the live path): the
    sign-in warming runs in the background and could pick the new chat up, so it finishes first.
    """
    await store.settle()
    chat = await store.create_chat("long history", [BOB_EMAIL])
    await store.settle()
    conn = await asyncpg.connect(stack.db_url)
    try:
        await conn.execute(
            "insert into public.chat_messages (session_id, sender_id, content)"
            " select $1, $2, 'line ' || g from generate_series(1, $3::int) g",
            chat,
            ALICE,
            messages,
        )
    finally:
        await conn.close()
    return chat


def spy_on_message_reads(layer: DataLayer, monkeypatch: pytest.MonkeyPatch) -> list[int | None]:
    """The ``limit`` of every ``cache.get_messages`` call from now on."""
    asked: list[int | None] = []
    get_messages = layer.cache.get_messages

    async def spy(user: UserId, session: ChatId, limit: int | None = None) -> object:
        asked.append(limit)
        return await get_messages(user, session, limit)

    monkeypatch.setattr(layer.cache, "get_messages", spy)
    return asked


async def test_the_newest_page_reads_only_the_page_from_the_cache(
    make_layer: LayerFactory, stack: StackHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    layer = await make_layer("alice", realtime=False)
    store = layer.store
    await store.sign_in(ALICE_EMAIL, PASSWORD)
    chat = await long_chat(store, stack, 130)
    # A miss with only the newest 20 wanted still loads and caches the whole window.
    assert [m.seq for m in await store.signed_in.reads.message_window(chat, 20)] == list(range(111, 131))
    cached = await layer.cache.get_messages(ALICE, chat)
    assert cached is not None and len(cached.value) == 130

    asked = spy_on_message_reads(layer, monkeypatch)
    loads = supabase_calls(layer, "msgs")
    page = await store.messages(chat)
    assert [m.seq for m in page.messages] == list(range(81, 131)) and page.has_more
    assert asked == [50]  # the hit decrypted one page, not the whole window
    short = await store.messages(chat, limit=10)
    assert [m.seq for m in short.messages] == list(range(121, 131)) and short.has_more
    older = await store.messages(chat, before_seq=81)  # older pages are cut from the whole window
    assert [m.seq for m in older.messages] == list(range(31, 81)) and older.has_more
    assert asked == [50, 10, None]
    assert supabase_calls(layer, "msgs") == loads


async def test_reopening_a_chat_reads_only_the_page_and_keeps_its_cursor(
    make_layer: LayerFactory, stack: StackHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    layer = await make_layer("alice", realtime=False)
    store = layer.store
    await store.sign_in(ALICE_EMAIL, PASSWORD)
    chat = await long_chat(store, stack, 130)
    # An edit of a message older than the page: the window's newest rev is not on the page.
    edited = await layer.backend.fetch_messages(chat, 11, 1)
    await store.edit_message(edited.messages[0].id, "line 10, edited")
    await store.settle()
    asked = spy_on_message_reads(layer, monkeypatch)

    first = await store.open_chat(chat)
    assert asked == [None]  # the first open reads the whole window, to start the chat's cursor
    store.close_chat(chat)
    again = await store.open_chat(chat)
    assert asked == [None, 50]  # later opens read the page they show
    assert [m.seq for m in again.rows] == [m.seq for m in first.rows] == list(range(81, 131))
    await store.settle()  # the back-fills of both opens

    # The cursor still knows the edit: bob's next message is no gap, so the cached window stays.
    conn = await asyncpg.connect(stack.db_url)
    try:
        row = await conn.fetchrow(
            "insert into public.chat_messages (session_id, sender_id, content)"
            " values ($1, 'b0b00000-0000-4000-8000-000000000002', 'after the edit') returning rev",
            chat,
        )
    finally:
        await conn.close()
    assert row is not None
    message = (await layer.backend.fetch_messages_since(chat, row["rev"] - 1))[0]
    await store.signed_in.live.apply_now([MessageUpserted(message=message)])
    cached = await layer.cache.get_messages(ALICE, chat)
    assert cached is not None and cached.value[-1].id == message.id and len(cached.value) == 131
    assert again.rows[-1].content == "after the edit"


async def test_a_sign_in_reads_the_chat_list_beside_the_profile(make_layer: LayerFactory) -> None:
    layer = await make_layer("alice", realtime=False)
    trips = layer.backend.round_trips
    start = trips.snapshot()
    profile = await layer.store.sign_in(ALICE_EMAIL, PASSWORD)
    # The list is in the cache when the sign-in returns: it was asked for while the profile loaded, so
    # showing it waits on no third round trip.
    cached = await layer.cache.get_recent(profile.id)
    assert cached is not None and cached.fresh
    assert {row.chat.id for row in cached.value} >= {ALICE_BOB_CHAT, FALCON_CHAT}
    assert trips.snapshot().since(start).by_call == {"auth POST token": 1, "rest GET profiles": 1, "rpc chat_list": 1}
    listed = await layer.store.recent_chats()
    assert [row.chat.id for row in listed] == [row.chat.id for row in cached.value]
