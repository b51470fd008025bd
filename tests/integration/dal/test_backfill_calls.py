"""What the back-fill costs, counted in the calls the data layer makes to the real stack.

- Opening a chat that this client already has complete (a back-fill on the live link brought its cursor up
  to date and its topics have been held since) asks the server nothing more than the page to show: no
  back-fill. A chat that changed while its topics were not held, or opened while the link is not live, is
  back-filled.
- A round of the consistency probe is one read of the chat list's first page, plus one back-fill call for
  all the chats that are behind together, and none when nothing is.
"""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from desktop_chat.cache.keys import KeyKind
from desktop_chat.dal.api import ConnectionState, Timeline
from desktop_chat.dal.factory import DataLayer
from desktop_chat.dal.live import LiveSync
from desktop_chat.models import ChatId, MessageId
from desktop_chat.realtime.manager import RealtimeManager
from desktop_chat.realtime.topics import chat_topic
from desktop_chat.telemetry.metrics import SUPABASE_LATENCY, Histogram
from tests.conftest import StackHandle
from tests.integration.dal.conftest import (
    ALICE,
    ALICE_EMAIL,
    BOB_EMAIL,
    LayerFactory,
    alice_and_bob_in_a_new_chat,
    eventually,
    signed_in,
)

pytestmark = pytest.mark.integration


def calls(layer: DataLayer, op: str) -> Histogram:
    return layer.metrics.histogram(SUPABASE_LATENCY, op=op)


def live_sync(layer: DataLayer) -> LiveSync:
    return layer.store.signed_in.live


def link(layer: DataLayer) -> RealtimeManager:
    realtime = layer.store.signed_in.realtime
    assert realtime is not None
    return realtime


def shows(view: Timeline, message_id: MessageId) -> bool:
    return any(m.id == message_id and m.seq is not None for m in view.rows)


async def quiet_probe(layer: DataLayer) -> None:
    """Stop the consistency probe: its own rounds would add calls to the ones counted here."""
    probe = layer.store.signed_in.probe
    assert probe is not None
    await probe.stop()


async def test_opening_a_current_chat_while_live_runs_no_back_fill(make_layer: LayerFactory) -> None:
    alice = await signed_in(make_layer, "alice", ALICE_EMAIL)
    chat = await alice.store.create_chat(f"warm {uuid.uuid4().hex[:6]}", [BOB_EMAIL])
    bob = await signed_in(make_layer, "bob", BOB_EMAIL)
    await quiet_probe(bob)
    await bob.store.settle()  # the sign-in's warm-up: the top chats' pages and details
    assert bob.store.chat_list().rows[0].chat.id == chat  # the newest: among the chats warmed
    back_fills, details = calls(bob, "changes_since"), calls(bob, KeyKind.CHAT)
    live = live_sync(bob)

    # The first open starts the chat's cursor from the page it reads: that page may be old, so it is
    # back-filled, which makes the chat known complete on this link. (The back-fill after the link's first
    # join may have done so already: the sign-in reads the chat list beside the profile, so the list is
    # there when the link comes up, and its top chats are back-filled then.)
    before = back_fills.count
    current_before = live.is_current(chat)
    await bob.store.open_chat(chat)
    await eventually(lambda: live.is_current(chat), what="the chat known complete on this link")
    assert current_before or back_fills.count > before
    bob.store.close_chat(chat)

    # Closed, the chat stays among the recent ones whose topics are held: what comes is pushed.
    pushed = await alice.store.send(chat, "pushed while closed")
    await eventually(
        lambda: (
            (row := bob.store.chat_list().get(chat)) is not None
            and row.last_message is not None
            and row.last_message.id == pushed
            and live.is_current(chat)
        ),
        what="the push reached bob's list and cursor",
    )

    before, details_before = back_fills.count, details.count
    view = await bob.store.open_chat(chat)
    await bob.store.chat_details(chat)
    await bob.store.settle()  # whatever the open started is done
    assert back_fills.count == before  # no back-fill: the chat was complete
    assert details.count == details_before  # the details came from the cache
    assert shows(view, pushed)


async def test_a_chat_that_changed_while_its_topics_were_not_held_is_back_filled_on_open(
    make_layer: LayerFactory,
) -> None:
    alice, bob, chat = await alice_and_bob_in_a_new_chat(make_layer)
    await quiet_probe(bob)
    await bob.store.open_chat(chat)
    await bob.store.settle()
    bob.store.close_chat(chat)
    # Three other chats opened after it push its topics out of the few that are held.
    for n in range(3):
        other = await alice.store.create_chat(f"other {n} {uuid.uuid4().hex[:6]}", [BOB_EMAIL])
        await eventually(lambda: bob.store.chat_list().get(other) is not None, what="bob lists it")  # noqa: B023
        await bob.store.open_chat(other)
        bob.store.close_chat(other)
    await eventually(lambda: chat_topic(chat) not in link(bob).topics, what="the chat's topics left")
    await bob.store.settle()

    # Only the notice on user:<bob> comes: the list moves, the chat's cursor cannot.
    missed = await alice.store.send(chat, "not pushed to the chat's topic")
    await eventually(
        lambda: (
            (row := bob.store.chat_list().get(chat)) is not None
            and row.last_message is not None
            and row.last_message.id == missed
        ),
        what="the notice reached bob's list",
    )
    assert not live_sync(bob).is_current(chat)
    back_fills = calls(bob, "changes_since")
    before = back_fills.count
    view = await bob.store.open_chat(chat)
    await eventually(lambda: shows(view, missed), what="the message shown")
    await bob.store.settle()
    assert back_fills.count > before
    await eventually(lambda: live_sync(bob).is_current(chat), what="complete again, its topics held again")


async def test_opening_a_chat_while_the_link_is_not_live_back_fills_it(make_layer: LayerFactory) -> None:
    _alice, bob, chat = await alice_and_bob_in_a_new_chat(make_layer)
    await quiet_probe(bob)
    await bob.store.open_chat(chat)
    await eventually(lambda: live_sync(bob).is_current(chat), what="the chat known complete on this link")
    bob.store.close_chat(chat)
    await bob.store.settle()
    await link(bob).stop()  # the link is down (as after a network change, before it is rebuilt)
    assert bob.store.status.connection is ConnectionState.OFFLINE
    assert not live_sync(bob).is_current(chat)  # nothing is pushed now: the chat may change unseen
    back_fills = calls(bob, "changes_since")
    before = back_fills.count
    await bob.store.open_chat(chat)
    await bob.store.settle()
    assert back_fills.count == before + 1


async def test_a_probe_round_reads_the_list_once_and_back_fills_every_chat_behind_in_one_call(
    make_layer: LayerFactory, stack: StackHandle
) -> None:
    alice, bob, chat = await alice_and_bob_in_a_new_chat(make_layer)
    other = await alice.store.create_chat(f"second {uuid.uuid4().hex[:6]}", [BOB_EMAIL])
    await eventually(lambda: bob.store.chat_list().get(other) is not None, what="bob lists the second chat")
    await quiet_probe(bob)
    views: dict[ChatId, Timeline] = {}
    for chat_id in (chat, other):  # both get a cursor
        views[chat_id] = await bob.store.open_chat(chat_id)
    await bob.store.settle()
    live = live_sync(bob)
    lists, back_fills = calls(bob, "chat_list"), calls(bob, "changes_since")

    # Nothing is behind: one read of the list, no back-fill.
    lists_before, back_fills_before = lists.count, back_fills.count
    assert await live.check_consistency() == 0
    assert (lists.count, back_fills.count) == (lists_before + 1, back_fills_before)

    # One message in each chat that no one was told of: committed with the broadcast triggers off for
    # their transaction only (DDL is transactional), so neither chat:<id> nor any user:<id> hears of it.
    lost = {chat_id: MessageId(uuid.uuid4()) for chat_id in (chat, other)}
    conn = await asyncpg.connect(stack.db_url)
    try:
        async with conn.transaction():
            await conn.execute("alter table public.chat_messages disable trigger chat_messages_broadcast_insert")
            for chat_id, message_id in lost.items():
                await conn.execute(
                    "insert into public.chat_messages (id, session_id, sender_id, content) values ($1, $2, $3, $4)",
                    message_id,
                    chat_id,
                    ALICE,
                    "never pushed",
                )
            await conn.execute("alter table public.chat_messages enable trigger chat_messages_broadcast_insert")
    finally:
        await conn.close()

    lists_before, back_fills_before = lists.count, back_fills.count
    assert await live.check_consistency() == 2
    assert (lists.count, back_fills.count) == (lists_before + 1, back_fills_before + 1)
    for chat_id, message_id in lost.items():
        assert shows(views[chat_id], message_id)
        row = bob.store.chat_list().get(chat_id)
        assert row is not None and row.last_message is not None and row.last_message.id == message_id
