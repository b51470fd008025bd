"""The read position: kept while offline, sent on reconnect, and never undone by a chat list loaded meanwhile."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from desktop_chat.dal.api import ConnectionState
from tests.conftest import StackHandle
from tests.integration.dal.conftest import BOB, LayerFactory, alice_and_bob_in_a_new_chat, eventually

pytestmark = pytest.mark.integration


async def server_read_position(stack: StackHandle, chat: object) -> int:
    conn = await asyncpg.connect(stack.db_url)
    try:
        return int(
            await conn.fetchval(
                "select last_read_seq from public.chat_members where session_id = $1 and user_id = $2", chat, BOB
            )
        )
    finally:
        await conn.close()


async def test_a_chat_read_while_offline_stays_read_and_the_server_hears_of_it_on_reconnect(
    make_layer: LayerFactory, stack: StackHandle
) -> None:
    alice, bob, chat = await alice_and_bob_in_a_new_chat(make_layer)
    timeline = await alice.store.open_chat(chat)
    for n in range(3):
        await alice.store.send(chat, f"unread {n}")
    await eventually(lambda: (row := bob.store.chat_list().get(chat)) is not None and row.unread_count == 3)
    await eventually(lambda: len([m for m in timeline.rows if m.seq]) == 3, what="alice's sends are stored")
    newest = max(m.seq or 0 for m in timeline.rows)

    gateway = stack.stack.gateway
    gateway.stop()
    try:
        await eventually(lambda: bob.store.status.connection is not ConnectionState.LIVE, what="bob is offline")
        await bob.store.mark_read(chat, newest)  # no error: it is kept for later
        row = bob.store.chat_list().get(chat)
        assert row is not None and row.unread_count == 0 and row.last_read_seq == newest
        assert await server_read_position(stack, chat) < newest
    finally:
        gateway.start()
    await eventually(lambda: bob.store.status.connection is ConnectionState.LIVE, within=60, what="bob is back")
    # Back online, the chat list is loaded from the server again (the back-fill): the badge stays away,
    # and the read position reaches the server without the user doing anything.
    async with asyncio.timeout(30):
        while await server_read_position(stack, chat) != newest:  # noqa: ASYNC110 - polling the database
            await asyncio.sleep(0.05)
    await bob.store.signed_in.live.reload_chats()
    row = bob.store.chat_list().get(chat)
    assert row is not None and row.unread_count == 0 and row.last_read_seq == newest
