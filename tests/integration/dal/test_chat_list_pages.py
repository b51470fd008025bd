"""The chat list a page at a time over the real stack: the next pages, search results from further down, a reload
that reads again what is loaded (and notices what went), the cache holding the pages only, and the back-fill
of many chats in one call."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from pydantic import SecretStr

from desktop_chat.config import Settings
from desktop_chat.dal.factory import DataLayer, open_data_layer
from desktop_chat.models import ChatId
from desktop_chat.telemetry.metrics import SUPABASE_LATENCY
from tests.conftest import StackHandle
from tests.integration.accounts import PASSWORD, Rooms, user_in_rooms
from tests.integration.dal.conftest import redis_db_url
from tests.keyrings import MemoryKeyring

pytestmark = pytest.mark.integration

PAGE = 3


@pytest.fixture
async def rooms(stack: StackHandle) -> Rooms:
    return await user_in_rooms(stack.db_url, 8)


@pytest.fixture
async def layer(stack: StackHandle, tmp_path: Path, rooms: Rooms) -> AsyncIterator[DataLayer]:
    settings = Settings(
        supabase_url=stack.api_url,
        supabase_anon_key=SecretStr(stack.anon_key),
        redis_url=redis_db_url(stack.redis_url, 7),
        data_dir=tmp_path / "data",
        config_dir=tmp_path / "config",
        log_dir=tmp_path / "log",
        runtime_dir=tmp_path / "run",
        request_timeout=5.0,
    )
    # No realtime: each step runs when the test says (the back-fill is what a subscribe would start).
    opened = await open_data_layer(settings, keyring_backend=MemoryKeyring(), realtime=False, chat_page=PAGE)
    try:
        await opened.store.sign_in(rooms.email, PASSWORD)
        yield opened
    finally:
        await opened.close()


def titles(layer: DataLayer) -> list[str]:
    return [row.chat.title for row in layer.store.chat_list().rows]


async def test_pages_search_results_and_a_reload_that_notices_what_went(
    stack: StackHandle, layer: DataLayer, rooms: Rooms
) -> None:
    store = layer.store
    await store.refresh_chats()
    assert titles(layer) == ["Room 0001", "Room 0002", "Room 0003"] and store.has_more_chats()
    assert await store.load_more_chats() == PAGE
    assert titles(layer) == [f"Room 000{n}" for n in range(1, 7)]
    found = await store.search_chats("ROOM 0008")
    assert [row.chat.title for row in found] == ["Room 0008"]
    assert titles(layer)[-1] == "Room 0008"  # in its place, below the loaded pages
    await store.settle()
    cached = await layer.cache.get_recent(rooms.user)
    assert cached is not None
    assert [row.chat.title for row in cached.value] == [f"Room 000{n}" for n in range(1, 7)]  # the pages only

    # Meanwhile, elsewhere: the user left Room 0005 and Room 0008 was deleted.
    conn = await asyncpg.connect(stack.db_url)
    try:
        await conn.execute(
            "delete from public.chat_members where session_id = $1 and user_id = $2", rooms.chats[4], rooms.user
        )
        await conn.execute("update public.chat_sessions set deleted_at = now() where id = $1", rooms.chats[7])
    finally:
        await conn.close()
    await store.signed_in.live.reload_chats()
    assert titles(layer) == ["Room 0001", "Room 0002", "Room 0003", "Room 0004", "Room 0006", "Room 0007"]
    assert await store.load_more_chats() == 0 and not store.has_more_chats()  # Room 0008 is gone


async def test_the_back_fill_of_many_chats_is_one_call_and_drops_the_gone_ones(
    stack: StackHandle, layer: DataLayer, rooms: Rooms
) -> None:
    store = layer.store
    await store.refresh_chats()
    while store.has_more_chats():
        await store.load_more_chats()
    opened = {ChatId(chat): await store.open_chat(ChatId(chat)) for chat in rooms.chats[:6]}
    await store.settle()
    calls = layer.metrics.histogram(SUPABASE_LATENCY, op="changes_since")
    before = calls.count
    conn = await asyncpg.connect(stack.db_url)
    try:
        for chat in rooms.chats[:2]:  # two chats move on while the link is down
            await conn.execute(
                "insert into public.chat_messages (session_id, sender_id, content) values ($1, $2, 'missed')",
                chat,
                rooms.partner,
            )
        await conn.execute(
            "delete from public.chat_members where session_id = $1 and user_id = $2", rooms.chats[5], rooms.user
        )
    finally:
        await conn.close()
    await store.signed_in.live.backfill_all()
    assert calls.count == before + 1  # six chats, one call
    for chat in rooms.chats[:2]:
        assert [m.content for m in opened[ChatId(chat)].rows][-1] == "missed"
        row = store.chat_list().get(ChatId(chat))
        assert row is not None and row.unread_count == 2 and row.last_message is not None
    assert store.chat_list().get(ChatId(rooms.chats[5])) is None
    assert [m.content for m in opened[ChatId(rooms.chats[2])].rows] == ["hello from room 3"]  # untouched
