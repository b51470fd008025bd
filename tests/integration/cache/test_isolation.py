"""Isolation and integrity in real Redis: one user's entries never serve another, tampering is a miss."""

from __future__ import annotations

import pytest

from desktop_chat.cache.keys import chat_key, msgs_key, recent_key
from desktop_chat.cache.redis_store import redis_client
from desktop_chat.cache.tiered import TieredCache
from desktop_chat.telemetry.metrics import ERRORS
from tests.builders import chat_details, chat_summary, messages, new_chat_id, new_user
from tests.conftest import StackHandle
from tests.integration.cache.conftest import CacheFactory

pytestmark = pytest.mark.integration


@pytest.fixture
async def cache(stack: StackHandle, make_cache: CacheFactory) -> TieredCache:
    cache = make_cache(stack.redis_url)
    await cache.start()
    return cache


@pytest.fixture
async def raw(stack: StackHandle):  # type: ignore[no-untyped-def]
    client = redis_client(url=stack.redis_url)
    yield client
    await client.aclose()


def corrupt(cache: TieredCache, reason: str) -> float:
    return cache.metrics.value(ERRORS, kind=f"cache.corrupt.{reason}")


async def test_alices_entries_are_not_bobs(cache: TieredCache) -> None:
    alice, bob, session = new_user(), new_user(), new_chat_id()
    await cache.set_recent(alice, [chat_summary(session)])
    await cache.set_chat(alice, chat_details(session, alice, bob))
    await cache.set_messages(alice, session, messages(session, 1, 3))
    assert await cache.get_recent(bob) is None
    assert await cache.get_chat(bob, session) is None
    assert await cache.get_messages(bob, session) is None
    assert await cache.get_chat(alice, session) is not None


async def test_alices_value_copied_under_bobs_key_is_rejected_and_deleted(cache: TieredCache, raw) -> None:  # type: ignore[no-untyped-def]
    alice, bob, session = new_user(), new_user(), new_chat_id()
    await cache.set_recent(alice, [chat_summary(session)])
    await cache.set_chat(alice, chat_details(session, alice, bob))
    await cache.set_messages(alice, session, messages(session, 1, 3))
    await raw.copy(recent_key(alice).redis_key, recent_key(bob).redis_key)
    await raw.copy(chat_key(alice, session).redis_key, chat_key(bob, session).redis_key)
    await raw.copy(msgs_key(alice, session).redis_key, msgs_key(bob, session).redis_key)

    assert await cache.get_recent(bob) is None
    assert await cache.get_chat(bob, session) is None
    assert await cache.get_messages(bob, session) is None
    assert await raw.exists(recent_key(bob).redis_key, chat_key(bob, session).redis_key) == 0
    assert await raw.exists(msgs_key(bob, session).redis_key) == 0
    assert corrupt(cache, "auth") == 3
    assert await cache.get_chat(alice, session) is not None  # the original is untouched


async def test_a_value_copied_to_another_chat_is_rejected(cache: TieredCache, raw) -> None:  # type: ignore[no-untyped-def]
    alice, first, second = new_user(), new_chat_id(), new_chat_id()
    await cache.set_messages(alice, first, messages(first, 1, 3))
    await raw.copy(msgs_key(alice, first).redis_key, msgs_key(alice, second).redis_key)
    assert await cache.get_messages(alice, second) is None
    assert await raw.exists(msgs_key(alice, second).redis_key) == 0


async def test_a_message_moved_to_another_position_is_rejected(cache: TieredCache, raw) -> None:  # type: ignore[no-untyped-def]
    alice, session = new_user(), new_chat_id()
    await cache.set_messages(alice, session, messages(session, 1, 3))
    key = msgs_key(alice, session).redis_key
    (third,) = await raw.zrangebyscore(key, 3, 3)
    await raw.zremrangebyscore(key, 2, 3)
    await raw.zadd(key, {third: 2})  # message 3 now poses as message 2
    assert await cache.get_messages(alice, session) is None
    assert await raw.exists(key) == 0


@pytest.mark.parametrize("offset", [0, 1, 2, 10, 30, -1])
async def test_a_tampered_value_is_rejected_and_deleted(cache: TieredCache, raw, offset: int) -> None:  # type: ignore[no-untyped-def]
    alice, session = new_user(), new_chat_id()
    await cache.set_chat(alice, chat_details(session, alice))
    key = chat_key(alice, session).redis_key
    value = bytearray(await raw.get(key))
    value[offset] ^= 0x40
    await raw.set(key, bytes(value), keepttl=True)
    assert await cache.get_chat(alice, session) is None
    assert await raw.exists(key) == 0
    assert cache.metrics.total(ERRORS) == 1


async def test_redis_holds_no_plaintext_and_every_key_names_its_user(cache: TieredCache, raw) -> None:  # type: ignore[no-untyped-def]
    alice, session = new_user(), new_chat_id()
    secret_title, secret_text = "Quarterly numbers", "the password is hunter2"
    await cache.set_chat(alice, chat_details(session, alice, title=secret_title))
    await cache.set_messages(alice, session, [*messages(session, 1, 2), *messages(session, 3, 3)])
    page = messages(session, 4, 4)
    await cache.append_messages(alice, session, [page[0].model_copy(update={"content": secret_text})])
    names = [name async for name in raw.scan_iter(match=f"dc:v1:{alice}:*")]
    assert sorted(name.decode().split(":")[3] for name in names) == ["chat", "chats", "msgs"]
    dump = b"".join(
        [await raw.get(chat_key(alice, session).redis_key)]
        + await raw.zrange(msgs_key(alice, session).redis_key, 0, -1)
    )
    assert secret_title.encode() not in dump and secret_text.encode() not in dump
