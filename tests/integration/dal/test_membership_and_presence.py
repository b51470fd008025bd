"""Chats appear, change and disappear live; read state follows across devices; typing and presence reach others."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from desktop_chat.cache import CacheStatus
from desktop_chat.dal.factory import DataLayer
from desktop_chat.errors import Rejected
from desktop_chat.models import ChatId, DeliveryState, UserId
from tests.conftest import StackHandle
from tests.integration.dal.conftest import (
    ALICE,
    ALICE_EMAIL,
    BOB,
    BOB_EMAIL,
    CAROL_EMAIL,
    LayerFactory,
    alice_and_bob_in_a_new_chat,
    eventually,
    signed_in,
)

pytestmark = pytest.mark.integration

CAROL = uuid.UUID("ca201000-0000-4000-8000-000000000003")


async def test_added_chats_appear_renames_show_and_removal_purges(make_layer: LayerFactory) -> None:
    alice = await signed_in(make_layer, "alice", ALICE_EMAIL)
    carol = await signed_in(make_layer, "carol", CAROL_EMAIL)
    chat = await alice.store.create_chat(f"planning {uuid.uuid4().hex[:4]}", [BOB_EMAIL])
    await alice.store.send(chat, "before carol joined")

    await alice.store.add_member(chat, CAROL_EMAIL)
    await eventually(lambda: carol.store.chat_list().get(chat) is not None, what="the chat appears for carol")
    view = await carol.store.open_chat(chat)
    await eventually(lambda: any(m.content == "before carol joined" for m in view.rows), what="history loads")

    await alice.store.rename_chat(chat, "Planning (renamed)")
    await eventually(
        lambda: (row := carol.store.chat_list().get(chat)) is not None and row.chat.title == "Planning (renamed)",
        what="the rename reaches carol",
    )
    details = await carol.store.chat_details(chat)
    assert details.chat.title == "Planning (renamed)"  # the cached details were invalidated
    assert {m.display_name for m in details.members} == {"Alice", "Bob", "Carol"}

    assert await carol.cache.get_messages(UserId(CAROL), chat) is not None
    await alice.store.remove_member(chat, UserId(CAROL))
    await eventually(lambda: carol.store.chat_list().get(chat) is None, what="the chat disappears for carol")
    assert await carol.cache.get_messages(UserId(CAROL), chat) is None  # and its cache is purged
    assert await carol.cache.get_chat(UserId(CAROL), chat) is None


async def test_a_deleted_chat_disappears_everywhere(make_layer: LayerFactory) -> None:
    alice, bob, chat = await alice_and_bob_in_a_new_chat(make_layer)
    await bob.store.open_chat(chat)
    await alice.store.delete_chat(chat)
    assert alice.store.chat_list().get(chat) is None
    await eventually(lambda: bob.store.chat_list().get(chat) is None, what="gone for bob")
    with pytest.raises(Rejected, match="does not exist or you are no longer in it"):
        await bob.store.chat_details(chat)
    late = await bob.store.send(chat, "hello?")  # a send that was already typed fails with a reason
    pending = bob.store.signed_in.sender  # the one owner of bob's pending messages
    await eventually(
        lambda: (m := pending.get(late)) is not None and m.delivery is DeliveryState.FAILED,
        what="failed",
    )
    assert (m := pending.get(late)) is not None and m.error == "This chat no longer exists."


async def test_read_state_follows_across_devices(make_layer: LayerFactory) -> None:
    laptop = await signed_in(make_layer, "laptop", ALICE_EMAIL)
    desktop = await signed_in(make_layer, "desktop", ALICE_EMAIL)
    bob = await signed_in(make_layer, "bob", BOB_EMAIL)
    chat = await laptop.store.create_chat(f"unread {uuid.uuid4().hex[:4]}", [BOB_EMAIL])
    await eventually(lambda: bob.store.chat_list().get(chat) is not None)
    await eventually(lambda: desktop.store.chat_list().get(chat) is not None)
    bob_view = await bob.store.open_chat(chat)
    sent = [await bob.store.send(chat, f"unread {n}") for n in range(3)]
    await eventually(lambda: all((m := bob_view.get(i)) is not None and m.seq for i in sent))

    def unread(layer: DataLayer) -> int:
        row = layer.store.chat_list().get(chat)
        return row.unread_count if row is not None else -1

    await eventually(lambda: unread(laptop) == 3 and unread(desktop) == 3, what="3 unread on both devices")
    laptop_view = await laptop.store.open_chat(chat)
    newest = max(m.seq or 0 for m in laptop_view.rows)
    await laptop.store.mark_read(chat, newest)
    assert unread(laptop) == 0
    await eventually(lambda: unread(desktop) == 0, what="the other device learns the chat was read")
    # And what the server says agrees, for a fresh start.
    fresh = {c.chat.id: c for c in await desktop.backend.fetch_recent_chats()}
    assert fresh[chat].unread_count == 0 and fresh[chat].last_read_seq == newest


async def test_typing_and_presence_reach_the_other_client(make_layer: LayerFactory) -> None:
    alice, bob, chat = await alice_and_bob_in_a_new_chat(make_layer)
    typing: dict[ChatId, frozenset[UserId]] = {}
    online: dict[ChatId, frozenset[UserId]] = {}
    alice.store.subscribe_typing(lambda session, users: typing.__setitem__(session, users))
    alice.store.subscribe_presence(lambda session, users: online.__setitem__(session, users))
    await eventually(lambda: UserId(BOB) in online.get(chat, frozenset()), what="alice sees bob online")

    # A typing signal is fire-and-forget, like a keystroke: the client repeats it while the user types.
    async with asyncio.timeout(10):
        while UserId(BOB) not in typing.get(chat, frozenset()):
            await bob.store.set_typing(chat, True)
            await asyncio.sleep(0.1)
    assert UserId(BOB) in typing.get(chat, frozenset())
    await bob.store.set_typing(chat, False)
    await eventually(lambda: UserId(BOB) not in typing.get(chat, frozenset()), what="typing stops")
    assert UserId(ALICE) not in typing.get(chat, frozenset())  # your own typing is not shown to you


async def test_redis_going_down_does_not_stop_the_conversation(make_layer: LayerFactory, stack: StackHandle) -> None:
    alice, bob, chat = await alice_and_bob_in_a_new_chat(make_layer)
    bob_view = await bob.store.open_chat(chat)
    await alice.store.open_chat(chat)
    redis = stack.stack.redis
    redis.stop()
    try:
        sent = [await alice.store.send(chat, f"no redis {n}") for n in range(5)]
        await eventually(lambda: all((m := bob_view.get(i)) is not None and m.seq for i in sent), what="delivered")
        await eventually(lambda: bob.store.status.cache is CacheStatus.OFFLINE, what="bob's cache is offline")
        assert bob.cache.status is CacheStatus.OFFLINE
        assert [m.delivery for m in bob_view.rows if m.id in sent] == [DeliveryState.SENT] * 5
    finally:
        redis.start()
    await alice.cache.probe_now()
    await bob.cache.probe_now()
    await eventually(lambda: bob.store.status.cache is CacheStatus.ONLINE, what="back on Redis")
