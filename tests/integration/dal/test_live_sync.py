"""The write path and live sync, two clients through the real stack: every message once, in server order."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest

from desktop_chat.dal.api import ConnectionState, Timeline
from desktop_chat.dal.factory import DataLayer
from desktop_chat.models import ChatId, DeliveryState, Message, MessageUpserted
from desktop_chat.telemetry.metrics import SUPABASE_LATENCY
from tests.conftest import StackHandle
from tests.integration.dal.conftest import (
    ALICE,
    ALICE_EMAIL,
    BOB,
    BOB_EMAIL,
    PASSWORD,
    LayerFactory,
    alice_and_bob_in_a_new_chat,
    eventually,
    signed_in,
)

pytestmark = pytest.mark.integration


async def new_chat(owner: DataLayer, *emails: str) -> ChatId:
    """A chat of its own for each test, so tests never depend on each other's messages."""
    return await owner.store.create_chat(f"test {uuid.uuid4().hex[:6]}", list(emails) or [BOB_EMAIL])


def confirmed(timeline: Timeline) -> list[Message]:
    return [m for m in timeline.rows if m.delivery is DeliveryState.SENT]


def assert_once_in_order(timeline: Timeline) -> None:
    ids = [m.id for m in timeline.rows]
    assert len(ids) == len(set(ids)), "a message is shown twice"
    seqs = [m.seq for m in confirmed(timeline)]
    assert seqs == sorted(seqs), "confirmed messages out of server order"


async def stored_count(stack: StackHandle, chat: ChatId, content_prefix: str) -> int:
    conn = await asyncpg.connect(stack.db_url)
    try:
        return int(
            await conn.fetchval(
                "select count(*) from public.chat_messages where session_id = $1 and content like $2",
                chat,
                content_prefix + "%",
            )
        )
    finally:
        await conn.close()


async def test_bob_sees_alices_message_once_with_the_server_order(make_layer: LayerFactory) -> None:
    alice, bob, chat = await alice_and_bob_in_a_new_chat(make_layer)
    alice_view = await alice.store.open_chat(chat)
    bob_view = await bob.store.open_chat(chat)

    message_id = await alice.store.send(chat, "hello bob")
    pending = alice_view.get(message_id)
    assert pending is not None and pending.delivery is DeliveryState.PENDING  # shown at once

    await eventually(lambda: (m := bob_view.get(message_id)) is not None and m.seq is not None, what="bob got it")
    await eventually(lambda: (m := alice_view.get(message_id)) is not None and m.delivery is DeliveryState.SENT)
    assert alice_view.get(message_id) == bob_view.get(message_id)
    assert_once_in_order(alice_view)
    assert_once_in_order(bob_view)
    assert alice.store.status.outbox_depth == 0


async def test_the_same_user_on_two_devices_sees_each_send_once(make_layer: LayerFactory) -> None:
    laptop = await signed_in(make_layer, "laptop", ALICE_EMAIL)
    desktop = await signed_in(make_layer, "desktop", ALICE_EMAIL)
    chat = await new_chat(laptop)
    await eventually(lambda: desktop.store.chat_list().get(chat) is not None, what="the other device sees it")
    laptop_view = await laptop.store.open_chat(chat)
    desktop_view = await desktop.store.open_chat(chat)
    sent = [await laptop.store.send(chat, f"from the laptop {n}") for n in range(5)]
    await eventually(lambda: all(desktop_view.get(m) is not None for m in sent), what="desktop got all")
    await eventually(lambda: all((m := laptop_view.get(i)) is not None and m.seq for i in sent))
    assert_once_in_order(laptop_view)
    assert_once_in_order(desktop_view)
    assert [laptop_view.get(i).seq for i in sent] == [desktop_view.get(i).seq for i in sent]  # type: ignore[union-attr]


async def test_a_refused_message_fails_with_its_reason_and_retry_keeps_the_id(
    make_layer: LayerFactory, stack: StackHandle
) -> None:
    reason = "You can no longer post in this chat."
    alice = await signed_in(make_layer, "alice", ALICE_EMAIL)
    chat = await new_chat(alice)
    view = await alice.store.open_chat(chat)
    conn = await asyncpg.connect(stack.db_url)
    try:
        # Bob (the other member) is fine; alice loses her membership behind the app's back.
        await conn.execute("delete from public.chat_members where session_id = $1 and user_id = $2", chat, ALICE)
        message_id = await alice.store.send(chat, "am I still here?")
        # Two answers race: the server refusing the send, and realtime telling alice she left the chat
        # (which takes it out of her list and empties its view). Whichever comes first, the failure is
        # kept with its reason: in the outbox now, and in the chat's view once she is back.
        await eventually(lambda: alice.store.chat_list().get(chat) is None, what="the chat left alice's list")
        async with asyncio.timeout(10):
            entry = await alice.outbox.get(message_id)
            while entry is None or entry.state is not DeliveryState.FAILED:
                await asyncio.sleep(0.01)
                entry = await alice.outbox.get(message_id)
        assert entry.last_error == reason
        assert not view.rows  # the chat she had open was emptied when she left it
        await conn.execute(
            "insert into public.chat_members (session_id, user_id, role) values ($1, $2, 'owner')", chat, ALICE
        )
    finally:
        await conn.close()
    # Removed, the chat left alice's list; back in, it returns, with the failed message still there.
    await eventually(lambda: alice.store.chat_list().get(chat) is not None, what="the chat is back")
    view = await alice.store.open_chat(chat)
    failed_again = view.get(message_id)
    assert failed_again is not None and failed_again.delivery is DeliveryState.FAILED
    assert failed_again.error == reason
    await alice.store.retry(message_id)
    await eventually(lambda: (m := view.get(message_id)) is not None and m.delivery is DeliveryState.SENT)
    assert await stored_count(stack, chat, "am I still here?") == 1


async def test_sends_survive_the_gateway_going_away(make_layer: LayerFactory, stack: StackHandle) -> None:
    alice, bob, chat = await alice_and_bob_in_a_new_chat(make_layer)
    alice_view = await alice.store.open_chat(chat)
    bob_view = await bob.store.open_chat(chat)
    prefix = f"outage {uuid.uuid4().hex[:6]}"
    gateway = stack.stack.gateway
    sent = [await alice.store.send(chat, f"{prefix} before {n}") for n in range(3)]
    gateway.stop()
    try:
        sent += [await alice.store.send(chat, f"{prefix} during {n}") for n in range(10)]
        await asyncio.sleep(1.0)  # let the senders hit the outage
        assert alice.store.status.outbox_depth > 0
    finally:
        gateway.start()
    await eventually(lambda: alice.store.status.outbox_depth == 0, within=60, what="outbox drained")
    await eventually(lambda: all(bob_view.get(m) is not None for m in sent), within=60, what="bob has all")
    assert await stored_count(stack, chat, prefix) == len(sent)
    assert sum(1 for m in bob_view.rows if m.content.startswith(prefix)) == len(sent)
    assert sum(1 for m in alice_view.rows if m.content.startswith(prefix)) == len(sent)
    assert_once_in_order(alice_view)
    assert_once_in_order(bob_view)
    # One client's messages land in the order they were typed.
    seqs = [bob_view.get(m).seq for m in sent]  # type: ignore[union-attr]
    assert seqs == sorted(seqs)


async def test_messages_missed_while_disconnected_are_back_filled_in_order(
    make_layer: LayerFactory, stack: StackHandle
) -> None:
    _alice, bob, chat = await alice_and_bob_in_a_new_chat(make_layer)
    view = await bob.store.open_chat(chat)
    prefix = f"missed {uuid.uuid4().hex[:6]}"
    gateway = stack.stack.gateway
    gateway.stop()  # bob's realtime socket drops
    try:
        await eventually(lambda: bob.store.status.connection is not ConnectionState.LIVE, what="bob notices")
        conn = await asyncpg.connect(stack.db_url)
        try:
            for n in range(200):
                await conn.execute(
                    "insert into public.chat_messages (id, session_id, sender_id, content)"
                    " values ($1, $2, 'a11ce000-0000-4000-8000-000000000001', $3)",
                    uuid.uuid4(),
                    chat,
                    f"{prefix} {n:03d}",
                )
        finally:
            await conn.close()
    finally:
        gateway.start()
    await eventually(lambda: bob.store.status.connection is ConnectionState.LIVE, within=60, what="bob back")
    await eventually(
        lambda: sum(1 for m in view.rows if m.content.startswith(prefix)) == 200, within=30, what="back-filled"
    )
    missed = [m for m in view.rows if m.content.startswith(prefix)]
    assert [m.content for m in missed] == [f"{prefix} {n:03d}" for n in range(200)]
    assert_once_in_order(view)
    assert bob.store.status.outbox_depth == 0
    assert BOB  # bob received, never sent


async def test_edits_and_deletes_reach_the_other_side(make_layer: LayerFactory) -> None:
    alice, bob, chat = await alice_and_bob_in_a_new_chat(make_layer)
    await alice.store.open_chat(chat)
    bob_view = await bob.store.open_chat(chat)
    message_id = await alice.store.send(chat, "tpyo")
    await eventually(lambda: bob_view.get(message_id) is not None)
    await alice.store.edit_message(message_id, "typo")
    await eventually(lambda: (m := bob_view.get(message_id)) is not None and m.content == "typo" and m.edited)
    await alice.store.delete_message(message_id)
    await eventually(lambda: (m := bob_view.get(message_id)) is not None and m.deleted and m.content == "")
    assert_once_in_order(bob_view)


async def test_a_burst_of_a_thousand_messages_reaches_the_view_in_a_few_batches(
    make_layer: LayerFactory, stack: StackHandle
) -> None:
    _alice, bob, chat = await alice_and_bob_in_a_new_chat(make_layer)
    view = await bob.store.open_chat(chat)
    batches: list[int] = []
    view.subscribe(lambda changes: batches.append(len(changes)))
    conn = await asyncpg.connect(stack.db_url)
    try:
        await conn.execute(
            "insert into public.chat_messages (session_id, sender_id, content)"
            " select $1, $2, 'burst ' || lpad(g::text, 4, '0') from generate_series(1, 1000) g",
            chat,
            ALICE,
        )
    finally:
        await conn.close()
    await eventually(lambda: sum(1 for m in view.rows if m.content.startswith("burst")) == 1000, within=30)
    assert [m.content for m in view.rows if m.content.startswith("burst")] == [f"burst {n:04d}" for n in range(1, 1001)]
    # Coalesced per frame: a handful of view updates, not a thousand.
    assert len(batches) < 100, len(batches)
    assert_once_in_order(view)


async def test_a_send_is_timed_like_every_other_call_to_supabase(make_layer: LayerFactory) -> None:
    alice = await signed_in(make_layer, "alice", ALICE_EMAIL)
    chat = await new_chat(alice)
    view = await alice.store.open_chat(chat)
    timed = alice.metrics.histogram(SUPABASE_LATENCY, op="insert_message")
    before = timed.count
    message_id = await alice.store.send(chat, "timed")
    await eventually(lambda: (m := view.get(message_id)) is not None and m.delivery is DeliveryState.SENT)
    assert timed.count == before + 1


async def test_signing_out_and_in_as_someone_else_starts_afresh(make_layer: LayerFactory) -> None:
    layer = await signed_in(make_layer, "shared", ALICE_EMAIL)
    store = layer.store
    alices = store.signed_in
    chat = await new_chat(layer)
    alices_view = await store.open_chat(chat)
    delivered = await store.send(chat, "before signing out")
    await eventually(lambda: (m := alices_view.get(delivered)) is not None and m.delivery is DeliveryState.SENT)
    # Sent as the sign-out starts: it may go out first or stay in the outbox for alice's next sign-in;
    # either way bob never sees it pending.
    await store.send(chat, "as signing out")
    await store.sign_out()
    assert alices.realtime is not None and alices.realtime.state is ConnectionState.OFFLINE
    assert store.status.connection is ConnectionState.OFFLINE
    await store.sign_in(BOB_EMAIL, "password123")
    bobs = store.signed_in
    assert bobs is not alices and bobs.profile.id == BOB
    await eventually(lambda: store.status.connection is ConnectionState.LIVE, what="bob's link is up")
    await store.refresh_chats()
    assert store.chat_list().get(chat) is not None  # bob is in alice's new chat, and sees it as his
    view = await store.open_chat(chat)
    await eventually(lambda: any(m.content == "before signing out" for m in view.rows), what="alice's message")
    assert all(m.delivery is DeliveryState.SENT for m in view.rows)  # nothing of alice's pending shows


async def test_closing_saves_the_live_changes_that_arrived_within_the_last_frame(make_layer: LayerFactory) -> None:
    """A change held for the current frame when the app quits still reaches the cache (the next, offline,
    start shows it). A frame of an hour holds every change after the first until the close."""
    alice = await signed_in(make_layer, "alice", ALICE_EMAIL)
    bob = await make_layer("bob", frame_interval=3600)
    await bob.store.sign_in(BOB_EMAIL, PASSWORD)
    await eventually(lambda: bob.store.status.connection is ConnectionState.LIVE, what="bob live")
    chat = await alice.store.create_chat(f"test {uuid.uuid4().hex[:6]}", [BOB_EMAIL])
    timeline = await bob.store.open_chat(chat)  # read over REST: the (empty) history is cached
    live = bob.store.signed_in.live

    def received(text: str) -> bool:
        """Shown (applied) or held for the frame."""
        held = [e.message for e in live.held_changes if isinstance(e, MessageUpserted)]
        return any(m.content == text for m in [*timeline.rows, *held])

    await alice.store.send(chat, "first")
    await eventually(lambda: received("first"), within=30, what="bob received the first message")
    # A batch went out (the first message's, or an earlier one's): the next change waits for the frame.
    await alice.store.send(chat, "last")
    await eventually(
        lambda: any(isinstance(e, MessageUpserted) and e.message.content == "last" for e in live.held_changes),
        within=30,
        what="the last message held for the frame",
    )
    assert all(m.content != "last" for m in timeline.rows)

    await bob.store.close()  # the quit: the session ends, the cache is still open

    cached = await bob.cache.get_messages(BOB, chat)
    assert cached is not None and [m.content for m in cached.value] == ["first", "last"]
