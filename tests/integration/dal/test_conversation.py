"""Replies, reactions and read receipts through the data layer, over the real stack (two devices).

Offline replies and reactions wait in the outbox and go out once; others' reactions and read positions
arrive live; a toggle the database refuses (RLS: not a member) is dropped and leaves nothing behind.
The schema's own rules (forging another's reaction, reacting as an outsider through REST) are tested in
``tests/integration/db/test_replies_and_reactions.py`` and ``tests/integration/backend/test_conversation.py``.
"""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest

from desktop_chat.dal.api import ConnectionState
from desktop_chat.dal.receipts import READ_EVENTS_UP_TO
from desktop_chat.models import DeliveryState, Message, MessageId
from tests.conftest import StackHandle
from tests.integration.dal.conftest import (
    ALICE,
    BOB,
    CAROL_EMAIL,
    LayerFactory,
    alice_and_bob_in_a_new_chat,
    eventually,
    signed_in,
)

pytestmark = pytest.mark.integration


async def db_fetch(stack: StackHandle, query: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(stack.db_url)
    try:
        return list(await conn.fetch(query, *args))
    finally:
        await conn.close()


async def db_reactions(stack: StackHandle, message_id: MessageId) -> set[tuple[uuid.UUID, str]]:
    rows = await db_fetch(
        stack, "select user_id, emoji from public.message_reactions where message_id = $1", message_id
    )
    return {(row["user_id"], row["emoji"]) for row in rows}


async def db_last_rev(stack: StackHandle, chat: object) -> int:
    """The chat's rev counter: every change of the chat (a message, an edit, a reaction) takes the next one."""
    [row] = await db_fetch(stack, "select last_rev from public.chat_sessions where id = $1", chat)
    return int(row["last_rev"])


def stored(timeline: object, message_id: MessageId) -> Message | None:
    message = timeline.get(message_id)  # type: ignore[attr-defined]
    return message if message is not None and message.seq is not None else None


async def test_a_reply_and_reactions_made_offline_go_out_once_when_the_server_is_back(
    make_layer: LayerFactory, stack: StackHandle
) -> None:
    alice, bob, chat = await alice_and_bob_in_a_new_chat(make_layer)
    question = await bob.store.send(chat, "Lunch at noon?")
    timeline = await alice.store.open_chat(chat)
    await eventually(lambda: stored(timeline, question) is not None, what="alice has bob's question")
    rev_before = await db_last_rev(stack, chat)

    gateway = stack.stack.gateway
    gateway.stop()
    try:
        await eventually(lambda: alice.store.status.connection is not ConnectionState.LIVE, what="alice offline")
        answer = await alice.store.send(chat, "Yes, see you there", reply_to=question)
        pending = timeline.get(answer)
        assert pending is not None and pending.delivery is DeliveryState.PENDING and pending.reply_to == question
        # Changing her mind while offline: on, off, on for 👍; 🎉 once. Shown at once, every time.
        assert await alice.store.toggle_reaction(chat, question, "👍") is True
        assert await alice.store.toggle_reaction(chat, question, "👍") is False
        assert await alice.store.toggle_reaction(chat, question, "👍") is True
        assert await alice.store.toggle_reaction(chat, question, "🎉") is True
        shown = alice.store.reactions(chat)[question]
        assert [(r.emoji, r.count, r.mine) for r in shown] == [("👍", 1, True), ("🎉", 1, True)]
        assert await db_reactions(stack, question) == set()
    finally:
        gateway.start()

    await eventually(
        lambda: (m := timeline.get(answer)) is not None and m.delivery is DeliveryState.SENT, within=60, what="sent"
    )
    expected = {(ALICE, "👍"), (ALICE, "🎉")}
    async with asyncio.timeout(30):
        while await db_reactions(stack, question) != expected:  # noqa: ASYNC110 - polling the database
            await asyncio.sleep(0.05)
    rows = await db_fetch(stack, "select id, reply_to from public.chat_messages where session_id = $1", chat)
    assert sorted((row["id"], row["reply_to"]) for row in rows) == sorted([(question, None), (answer, question)])
    # Every change takes the chat's next rev: the reply and two wishes, each delivered once (👍 not thrice).
    assert await db_last_rev(stack, chat) == rev_before + 3
    assert await alice.outbox.reaction_ops(alice.backend.server, ALICE) == []
    try:
        await eventually(
            # In the order the server saw them first (the outbox may deliver either first).
            lambda: (
                sorted((r.emoji, r.count, r.mine) for r in alice.store.reactions(chat).get(question, ()))
                == sorted([("👍", 1, True), ("🎉", 1, True)])
            ),
            within=30,
            what="alice's view settles on the server's",
        )
    except TimeoutError:
        watched = alice.store.signed_in.reactions._chats[chat]
        raise AssertionError(f"{alice.store.reactions(chat)} {timeline.get(question)} {watched.who}") from None


async def test_another_users_reaction_arrives_live_with_their_name(make_layer: LayerFactory) -> None:
    alice, bob, chat = await alice_and_bob_in_a_new_chat(make_layer)
    timeline = await alice.store.open_chat(chat)
    said = await alice.store.send(chat, "Shipped it")
    await eventually(lambda: stored(timeline, said) is not None, what="stored")
    bob_timeline = await bob.store.open_chat(chat)
    await eventually(lambda: stored(bob_timeline, said) is not None, what="bob has it")
    await bob.store.toggle_reaction(chat, said, "🎉")
    await eventually(
        lambda: (
            [(r.emoji, r.count, r.mine, r.names) for r in alice.store.reactions(chat).get(said, ())]
            == [("🎉", 1, False, ("Bob",))]
        ),
        within=20,
        what="bob's reaction reaches alice's open chat, with his name",
    )
    changed = stored(timeline, said)
    assert changed is not None and [(r.emoji, r.count) for r in changed.reactions] == [("🎉", 1)]
    await bob.store.toggle_reaction(chat, said, "🎉")  # taken back
    await eventually(lambda: said not in alice.store.reactions(chat), within=20, what="and its withdrawal")


async def test_a_chat_first_opened_by_a_jump_shows_reactions_and_read_positions(make_layer: LayerFactory) -> None:
    """A search result or a quoted reply opens a chat at a message (``open_at``) that was never opened
    otherwise: its reactions and read positions are followed as when it is opened at the bottom."""
    alice, bob, chat = await alice_and_bob_in_a_new_chat(make_layer)
    timeline = await alice.store.open_chat(chat)
    said = await alice.store.send(chat, "Find me later")
    await eventually(lambda: stored(timeline, said) is not None, what="stored")
    message = stored(timeline, said)
    assert message is not None and message.seq is not None
    await alice.store.toggle_reaction(chat, said, "👀")
    await eventually(lambda: said in alice.store.reactions(chat), what="alice's reaction shown to her")
    await eventually(
        lambda: (m := stored(timeline, said)) is not None and bool(m.reactions), what="alice's reaction stored"
    )
    alice.store.close_chat(chat)

    jumped = await bob.store.open_at(chat, message.seq)
    await eventually(lambda: stored(jumped, said) is not None, what="the jump's window holds the message")
    await eventually(
        lambda: (
            [(r.emoji, r.count, r.names) for r in bob.store.reactions(chat).get(said, ())] == [("👀", 1, ("Alice",))]
        ),
        within=20,
        what="the reaction with who made it, in a chat opened by a jump",
    )
    await eventually(lambda: bob.store.read_state(chat) is not None, within=20, what="read positions loaded")
    # A second jump within the chat (a quote click) reuses what is loaded: no second load of either.
    await bob.store.signed_in.tasks.settle()
    before = bob.backend.round_trips.snapshot()
    await bob.store.open_at(chat, message.seq)
    await bob.store.signed_in.tasks.settle()
    calls = bob.backend.round_trips.snapshot().since(before).by_call
    assert "rpc read_positions" not in calls and "rpc message_reactions" not in calls, calls


async def test_read_receipts_update_live(make_layer: LayerFactory) -> None:
    alice, bob, chat = await alice_and_bob_in_a_new_chat(make_layer)
    timeline = await alice.store.open_chat(chat)
    said = await alice.store.send(chat, "Read me")
    await eventually(lambda: stored(timeline, said) is not None, what="stored")
    message = stored(timeline, said)
    assert message is not None and message.seq is not None
    await eventually(lambda: alice.store.read_state(chat) is not None, what="positions loaded")
    state = alice.store.read_state(chat)
    assert state is not None and state.one_to_one and state.readers(message.seq, ALICE) == []
    await bob.store.open_chat(chat)
    await bob.store.mark_read(chat, message.seq)
    await eventually(
        lambda: (s := alice.store.read_state(chat)) is not None and s.readers(message.seq or 0, ALICE) == [BOB],
        within=20,
        what="bob's read position reaches alice live",
    )


async def test_read_receipts_of_a_chat_too_big_for_read_events_come_with_the_probe(
    make_layer: LayerFactory, stack: StackHandle
) -> None:
    """In a chat of more than 50 members the database sends no ``read`` event (each read would go to every
    online member): a probe round (here ``catch_up``, as when the window comes to the front) reloads the
    read positions."""
    alice, bob, chat = await alice_and_bob_in_a_new_chat(make_layer)
    conn = await asyncpg.connect(stack.db_url)
    try:
        others = [uuid.uuid4() for _ in range(READ_EVENTS_UP_TO)]
        await conn.execute(
            "insert into auth.users (id, aud, role, email, raw_user_meta_data)"
            " select u, 'authenticated', 'authenticated', 'crowd-' || u || '@example.com',"
            " jsonb_build_object('display_name', 'Crowd')"
            " from unnest($1::uuid[]) u",
            others,
        )
        await conn.execute(
            "insert into public.chat_members (session_id, user_id) select $1, u from unnest($2::uuid[]) u",
            chat,
            others,
        )
    finally:
        await conn.close()
    timeline = await alice.store.open_chat(chat)
    said = await alice.store.send(chat, "Read me, crowd")
    await eventually(lambda: stored(timeline, said) is not None, what="stored")
    message = stored(timeline, said)
    assert message is not None and message.seq is not None
    await eventually(
        lambda: (s := alice.store.read_state(chat)) is not None and s.member_count == READ_EVENTS_UP_TO + 2,
        what="positions of the whole crowd loaded",
    )
    await bob.store.open_chat(chat)
    await bob.store.mark_read(chat, message.seq)
    [row] = await db_fetch(
        stack, "select last_read_seq from public.chat_members where session_id = $1 and user_id = $2", chat, BOB
    )
    assert row["last_read_seq"] >= message.seq  # written: only a reload can tell alice now
    alice.store.catch_up()
    await eventually(
        lambda: (s := alice.store.read_state(chat)) is not None and s.readers(message.seq or 0, ALICE) == [BOB],
        within=20,
        what="bob's read position reaches alice with the probe's round",
    )


async def test_a_reaction_from_outside_the_chat_is_refused_and_leaves_nothing(
    make_layer: LayerFactory, stack: StackHandle
) -> None:
    alice, _bob, chat = await alice_and_bob_in_a_new_chat(make_layer)
    said = await alice.store.send(chat, "members only")
    timeline = await alice.store.open_chat(chat)
    await eventually(lambda: stored(timeline, said) is not None, what="stored")
    carol = await signed_in(make_layer, "carol", CAROL_EMAIL)
    assert await carol.store.toggle_reaction(chat, said, "👍") is True  # queued: only the server can say no
    signed = carol.store.signed_in
    await eventually(lambda: signed.reaction_sender.depth == 0, within=20, what="the refusal came back")
    assert await carol.outbox.reaction_ops(carol.backend.server, carol.store.current_user.id) == []  # type: ignore[union-attr]
    assert await db_reactions(stack, said) == set()
