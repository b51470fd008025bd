"""Sending while the server cannot store messages, and sending a backlog, against a real stack.

A message sent while PostgreSQL is down is answered 503 by the gateway: it stays pending (retried with
backoff, never failed) and is delivered exactly once when the database is back. A backlog goes out in
batched inserts, in send order, each message once even when an earlier attempt had stored some of them,
and a message the server refuses fails alone. Each test takes the database away or writes rows behind
the app's back, so the module runs on a stack of its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from desktop_chat.models import ChatId, DeliveryState, MessageId, UserId, new_message_id
from desktop_chat.sync.lifecycle import PendingEvent, Sending
from desktop_chat.sync.outbox import Outbox
from desktop_chat.sync.sender import Sender
from devstack.procs import run_as_service_user
from devstack.throwaway import throwaway_stack
from devstack.tools import pg_tool
from tests.conftest import StackHandle
from tests.integration.dal.conftest import LayerFactory, alice_and_bob_in_a_new_chat, eventually

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack() -> Iterator[StackHandle]:
    """This module's own stack (it overrides the session's: its database is stopped here)."""
    with throwaway_stack() as (handle, info):
        yield StackHandle(handle, info)


def stop_postgres(stack: StackHandle) -> None:
    run_as_service_user(
        [pg_tool("pg_ctl"), "--pgdata", str(stack.config.pg_data), "--mode=fast", "--wait", "stop"], timeout=90
    )
    assert not stack.stack.postgres.running()


async def stored_rows(stack: StackHandle, chat: ChatId) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(stack.db_url)
    try:
        return list(
            await conn.fetch(
                "select id, content, seq from public.chat_messages where session_id = $1 order by seq", chat
            )
        )
    finally:
        await conn.close()


async def test_a_message_sent_while_the_database_is_down_is_delivered_once_when_it_is_back(
    make_layer: LayerFactory, stack: StackHandle
) -> None:
    alice, bob, chat = await alice_and_bob_in_a_new_chat(make_layer)
    alice_view = await alice.store.open_chat(chat)
    bob_view = await bob.store.open_chat(chat)
    attempts: list[int] = []

    def on_event(event: PendingEvent) -> None:
        if isinstance(event, Sending):
            attempts.append(event.attempt)

    alice.store.signed_in.sender.subscribe(on_event)
    stop_postgres(stack)
    try:
        message_id = await alice.store.send(chat, "sent while the database was down")
        # Answered 503 (PGRST000) at least twice: retried, still pending, never failed.
        await eventually(lambda: len(attempts) >= 2, within=30, what="two attempts against the stopped database")
        entry = await alice.outbox.get(message_id)
        assert entry is not None and entry.state is DeliveryState.PENDING, entry
        assert entry.last_error is not None and "database" in entry.last_error, entry.last_error
        assert alice_view.get(message_id).delivery is DeliveryState.PENDING  # type: ignore[union-attr]
    finally:
        stack.stack.postgres.start()
    await eventually(
        lambda: (m := alice_view.get(message_id)) is not None and m.delivery is DeliveryState.SENT,
        within=60,
        what="delivered once the database is back",
    )
    await eventually(lambda: bob_view.get(message_id) is not None, within=30, what="bob sees it")
    rows = await stored_rows(stack, chat)
    assert [row["id"] for row in rows].count(message_id) == 1
    assert [m.id for m in bob_view.rows].count(message_id) == 1
    assert alice.store.status.outbox_depth == 0


async def test_a_backlog_goes_in_order_each_once_and_a_refused_message_fails_alone(
    make_layer: LayerFactory, stack: StackHandle, tmp_path: Path
) -> None:
    """The sender over the real backend and a backlog already in its outbox (as after a day offline):
    some of it an earlier run had stored (its answer lost), one message the server refuses (whitespace
    only: an older app let it through)."""
    alice, _, chat = await alice_and_bob_in_a_new_chat(make_layer)
    me = alice.store.signed_in.profile.id
    outbox = await Outbox.open(tmp_path / "backlog.sqlite3")
    server = alice.settings.supabase_url
    texts = [f"backlog {n}" for n in range(120)]
    texts[77] = "   "  # refused by the content check
    entries = [await outbox.add(new_message_id(), server, UserId(me), chat, text) for text in texts]
    ids: list[MessageId] = [entry.id for entry in entries]
    # An earlier run got 3 of them through (their answer was lost): the server has them already.
    conn = await asyncpg.connect(stack.db_url)
    try:
        await conn.execute(
            "select set_config('role', 'authenticated', false), set_config('request.jwt.claims', $1, false)",
            f'{{"sub": "{me}", "role": "authenticated"}}',
        )
        for index in (0, 1, 2):
            await conn.execute(
                "insert into public.chat_messages (id, session_id, content) values ($1, $2, $3)",
                ids[index],
                chat,
                texts[index],
            )
    finally:
        await conn.close()
    requests: list[int] = []
    original = alice.backend.insert_messages

    async def counted(chat_id: ChatId, messages: list[tuple[MessageId, str, MessageId | None]]) -> object:
        requests.append(len(messages))
        return await original(chat_id, messages)

    alice.backend.insert_messages = counted  # type: ignore[assignment,method-assign]
    sender = Sender(outbox, alice.backend, server, UserId(me))
    try:
        await sender.start()
        await eventually(
            lambda: (
                sender.depth <= 1
                and all((row := sender.get(m)) is None or row.delivery is not DeliveryState.PENDING for m in ids)
            ),
            within=60,
            what="the backlog delivered",
        )
        failed = sender.get(ids[77])
        assert failed is not None and failed.delivery is DeliveryState.FAILED
        assert failed.error is not None and "refused" in failed.error
    finally:
        await sender.close()
        await outbox.close()
    rows = await stored_rows(stack, chat)
    good = [m for index, m in enumerate(ids) if index != 77]
    assert [row["id"] for row in rows] == good  # each once, in send order (seq follows the outbox's order)
    assert len(requests) < 30  # batches of up to 50 (and the halving around the refused one), not 120 requests
