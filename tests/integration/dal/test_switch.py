"""The cached chat switch waits on nothing the network holds, and the full collections that made its tail.

The switch's tail at 100 ms RTT (issue 13 item 1, docs/architecture.md section 10) was not a wait on the
network: with every answer held by a proxy, a switch to a cached chat returns as it does otherwise (the first
test, which keeps it so). The loop was stopped by the garbage collector's full collections, walking the
whole heap of a session; a session now holds its long-lived objects out of them (the second test).
"""

from __future__ import annotations

import asyncio
import gc
import uuid
import weakref

from desktop_chat.dal.api import ConnectionState, Timeline
from desktop_chat.models import ChatId
from devstack.proxy import LoopbackProxy
from tests.integration.dal.conftest import (
    ALICE_EMAIL,
    BOB_EMAIL,
    PASSWORD,
    LayerFactory,
    eventually,
    signed_in,
)

GUARD = 60.0
"""Not a time asserted: only how long a switch that waits on a held answer is given before the test says so."""


async def test_a_cached_switch_returns_while_the_previous_chats_answers_are_held(
    make_layer: LayerFactory, proxy: LoopbackProxy
) -> None:
    bob = await signed_in(make_layer, "bob", BOB_EMAIL)
    alice = await make_layer("alice", supabase_url=f"http://127.0.0.1:{proxy.port}")
    await alice.store.sign_in(ALICE_EMAIL, PASSWORD)
    await eventually(lambda: alice.store.status.connection is ConnectionState.LIVE, within=30, what="alice live")
    store = alice.store
    first = await store.create_chat(f"switch a {uuid.uuid4().hex[:6]}", [BOB_EMAIL])
    second = await store.create_chat(f"switch b {uuid.uuid4().hex[:6]}", [BOB_EMAIL])
    for chat in (first, second):
        await store.send(chat, f"hello in {chat}")
    await store.settle()

    async def switch(to: ChatId, away_from: ChatId | None) -> Timeline:
        if away_from is not None:
            store.close_chat(away_from)
        async with asyncio.timeout(GUARD):
            timeline, details = await asyncio.gather(store.open_chat(to), store.chat_details(to))
        assert len(timeline) > 0 and details.chat.id == to
        return timeline

    # Both chats opened: their windows and details are cached. A window loaded while a change to its chat
    # came in (the echo of the message just sent) is not cached, so a chat is opened again until it is.
    user = alice.store.signed_in.profile.id
    current: ChatId | None = None
    for chat in (first, second, first, second, first, second):
        if await alice.cache.get_messages(user, chat) is None:
            await switch(chat, current)
            current = chat
            await store.settle()
    for chat in (first, second):
        assert await alice.cache.get_messages(user, chat) is not None
        assert await alice.cache.get_chat(user, chat) is not None
    if current != second:
        await switch(second, current)
        await store.settle()

    trips = alice.backend.round_trips
    proxy.hold()
    before = trips.snapshot()
    await switch(first, second)  # its background work (back-fill, read positions) goes out, and is held
    await eventually(lambda: trips.snapshot().since(before).total > 0, within=30, what="the first chat's requests")
    news = await bob.store.send(second, "while alice's answers are held")

    between = trips.snapshot()
    timeline = await switch(second, first)
    # It returned while the first chat's answers were still held, having waited on no answer of its own.
    held = trips.snapshot().since(before)
    assert held.answered == 0 and held.total > 0
    assert trips.snapshot().since(between).answered == 0
    assert timeline.get(news) is None  # alice's link is held too: not seen yet

    # What is shown is still refreshed afterwards: bob's message arrives once the answers come through.
    proxy.release()
    await eventually(lambda: timeline.get(news) is not None, within=30, what="bob's message in the shown chat")
    await store.settle()
    assert trips.snapshot().since(before).answered >= held.total  # nothing that was held is left unanswered


async def test_a_session_holds_its_long_lived_objects_out_of_full_collections(make_layer: LayerFactory) -> None:
    class Node:
        """Garbage in a cycle, made before the session opens: only a full collection frees it."""

        other: object = None

    def cycle() -> weakref.ref[Node]:
        node = Node()
        node.other = node
        return weakref.ref(node)

    layer = await make_layer("alice")
    made_before = cycle()
    gc.disable()  # no young collection during the sign-in may free it before the session opens
    try:
        await layer.store.sign_in(ALICE_EMAIL, PASSWORD)
    finally:
        gc.enable()
    # The session's objects, and what else was alive when it opened, are not walked by full collections.
    assert gc.get_freeze_count() > 0
    gc.collect()
    assert made_before() is not None
    assert not any(thing is layer.store for thing in gc.get_objects())
    # What the session makes after it opened is collected as before.
    made_during = cycle()
    gc.collect()
    assert made_during() is None

    await layer.store.sign_out()
    # Handed back when the session ends: the garbage frozen with it is freed.
    assert gc.get_freeze_count() == 0
    gc.collect()
    assert made_before() is None
