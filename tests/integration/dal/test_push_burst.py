"""A burst of pushes through ``FrameTap`` (the app's reading of broadcasts off the official client's socket):
the real gateway, the official client, bob's data layer with the chat open; every message arrives once, in
order, and it came through the tap, not the library's own parsing."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Mapping

import asyncpg
import pytest

from desktop_chat.dal.factory import DataLayer
from desktop_chat.realtime.frames import TappedRealtimeClient
from desktop_chat.realtime.manager import RealtimeManager
from desktop_chat.realtime.topics import chat_topic
from tests.conftest import StackHandle
from tests.integration.dal.conftest import ALICE, LayerFactory, alice_and_bob_in_a_new_chat, eventually

pytestmark = pytest.mark.integration

BURST = 300


def link(layer: DataLayer) -> RealtimeManager:
    realtime = layer.store.signed_in.realtime
    assert realtime is not None
    return realtime


def tapped(layer: DataLayer) -> int:
    socket = link(layer)._socket  # the live official client, to read its tap's counter
    assert isinstance(socket, TappedRealtimeClient) and socket.frame_tap is not None
    return socket.frame_tap.tapped


@pytest.mark.parametrize("transactions", ["one", "each"])
async def test_a_burst_arrives_whole_once_and_in_order_through_the_tap(
    stack: StackHandle, make_layer: LayerFactory, transactions: str
) -> None:
    _alice, bob, chat = await alice_and_bob_in_a_new_chat(make_layer)
    view = await bob.store.open_chat(chat)
    await eventually(lambda: link(bob).holds(chat), what="bob holds the chat's topics")
    await bob.store.settle()
    manager = link(bob)
    pushed: Counter[str] = Counter()
    on_push = manager._on_push

    def counting(topic: str, message: Mapping[str, object]) -> None:
        body = message.get("payload")
        record = body.get("record") if isinstance(body, Mapping) else None
        if topic == chat_topic(chat) and isinstance(record, Mapping):
            pushed[str(record.get("id"))] += 1
        on_push(topic, message)

    manager._on_push = counting  # type: ignore[method-assign]
    before = tapped(bob)
    ids = [uuid.uuid4() for _ in range(BURST)]
    conn = await asyncpg.connect(stack.db_url)
    try:
        if transactions == "one":  # one commit: the gateway sends the whole burst at once
            async with conn.transaction():
                for n, message_id in enumerate(ids):
                    await conn.execute(
                        "insert into public.chat_messages (id, session_id, sender_id, content) values ($1, $2, $3, $4)",
                        message_id,
                        chat,
                        ALICE,
                        f"burst {n:03d}",
                    )
        else:  # back to back commits: batches of whatever each poll of the gateway finds
            for n, message_id in enumerate(ids):
                await conn.execute(
                    "insert into public.chat_messages (id, session_id, sender_id, content) values ($1, $2, $3, $4)",
                    message_id,
                    chat,
                    ALICE,
                    f"burst {n:03d}",
                )
    finally:
        await conn.close()

    def shown() -> list[str]:
        return [m.content for m in view.rows if m.content.startswith("burst ") and m.seq is not None]

    await eventually(lambda: len(shown()) == BURST, within=30, what="the whole burst in bob's view")
    assert shown() == [f"burst {n:03d}" for n in range(BURST)]
    rows = [m for m in view.rows if m.content.startswith("burst ")]
    assert [m.seq for m in rows] == sorted(m.seq for m in rows if m.seq is not None)
    assert {m.id for m in rows} == set(ids)
    assert pushed == Counter({str(message_id): 1 for message_id in ids})  # each pushed once, none twice
    assert tapped(bob) - before >= BURST  # taken off the socket by the tap, not parsed by the library
