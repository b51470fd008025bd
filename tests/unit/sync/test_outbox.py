"""The outbox keeps every unsent message on disk, in order, across restarts, until it is confirmed."""

from __future__ import annotations

import stat
import uuid
from pathlib import Path

import pytest

from desktop_chat.errors import LocalStorageError
from desktop_chat.models import ChatId, DeliveryState, UserId, new_message_id
from desktop_chat.sync.outbox import Outbox

SERVER = "http://127.0.0.1:54321"
ALICE = UserId(uuid.uuid4())
BOB = UserId(uuid.uuid4())
CHAT = ChatId(uuid.uuid4())
OTHER = ChatId(uuid.uuid4())


async def test_entries_survive_a_restart_in_send_order(tmp_path: Path) -> None:
    path = tmp_path / "data" / "outbox.sqlite3"
    outbox = await Outbox.open(path)
    ids = [new_message_id() for _ in range(5)]
    for n, message_id in enumerate(ids):
        await outbox.add(message_id, SERVER, ALICE, CHAT if n % 2 == 0 else OTHER, f"message {n}")
    await outbox.close()

    reopened = await Outbox.open(path)
    try:
        entries = await reopened.entries(SERVER, ALICE)
        assert [entry.id for entry in entries] == ids
        assert [entry.content for entry in await reopened.entries(SERVER, ALICE, CHAT)] == [
            "message 0",
            "message 2",
            "message 4",
        ]
        later = await reopened.add(new_message_id(), SERVER, ALICE, CHAT, "after restart")
        assert later.local_seq > entries[-1].local_seq
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    finally:
        await reopened.close()


async def test_attempts_failures_retry_and_removal(tmp_path: Path) -> None:
    outbox = await Outbox.open(tmp_path / "outbox.sqlite3")
    try:
        entry = await outbox.add(new_message_id(), SERVER, ALICE, CHAT, "hello")
        assert entry.as_message().delivery is DeliveryState.PENDING
        retried = await outbox.record_attempt(entry, "server unreachable", 123.0)
        assert (retried.attempts, retried.next_attempt_at) == (1, 123.0)
        failed = await outbox.mark_failed(retried, "You can no longer post in this chat.")
        stored = await outbox.get(entry.id)
        assert stored == failed
        assert stored is not None and stored.state is DeliveryState.FAILED
        message = stored.as_message()
        assert message.delivery is DeliveryState.FAILED
        assert message.error == "You can no longer post in this chat."
        again = await outbox.mark_pending(entry.id)
        assert again is not None
        assert (again.state, again.id, again.local_seq) == (DeliveryState.PENDING, entry.id, entry.local_seq)
        assert await outbox.depth(SERVER, ALICE) == 1
        assert await outbox.remove(entry.id)
        assert not await outbox.remove(entry.id)
        assert await outbox.depth(SERVER, ALICE) == 0
    finally:
        await outbox.close()


async def test_a_delivered_message_leaves_and_the_next_send_is_still_fully_synchronous(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    outbox = await Outbox.open(path)
    try:
        delivered = await outbox.add(new_message_id(), SERVER, ALICE, CHAT, "delivered")
        waiting = await outbox.add(new_message_id(), SERVER, ALICE, CHAT, "still waiting")
        assert await outbox.remove_delivered(delivered.id)
        assert not await outbox.remove_delivered(delivered.id)
        assert [entry.id for entry in await outbox.entries(SERVER, ALICE)] == [waiting.id]
        # The relaxed durability was for that one delete: a new send is on disk when add() returns.
        full = 2
        assert await outbox._run(lambda db: db.execute("pragma synchronous").fetchone()[0]) == full
    finally:
        await outbox.close()
    reopened = await Outbox.open(path)
    try:
        assert [entry.id for entry in await reopened.entries(SERVER, ALICE)] == [waiting.id]
    finally:
        await reopened.close()


async def test_users_and_servers_are_kept_apart(tmp_path: Path) -> None:
    outbox = await Outbox.open(tmp_path / "outbox.sqlite3")
    try:
        await outbox.add(new_message_id(), SERVER, ALICE, CHAT, "alice here")
        await outbox.add(new_message_id(), SERVER, BOB, CHAT, "bob here")
        await outbox.add(new_message_id(), "https://other.example", ALICE, CHAT, "elsewhere")
        assert [e.content for e in await outbox.entries(SERVER, ALICE)] == ["alice here"]
        assert await outbox.purge_user(SERVER, BOB) == 1
        assert await outbox.entries(SERVER, BOB) == []
    finally:
        await outbox.close()


async def test_an_outbox_from_a_newer_version_is_refused_not_damaged(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "outbox.sqlite3"
    db = sqlite3.connect(path)
    db.execute("pragma user_version = 99")
    db.close()
    with pytest.raises(LocalStorageError, match="newer desktop-chat"):
        await Outbox.open(path)


async def test_a_version_1_outbox_is_upgraded_and_keeps_its_messages(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "outbox.sqlite3"
    old = sqlite3.connect(path)
    old.executescript(
        """
        create table outbox (id text primary key, server text not null, user_id text not null,
          session_id text not null, content text not null, created_at real not null, local_seq integer not null,
          attempts integer not null default 0, state text not null default 'pending', last_error text,
          next_attempt_at real not null default 0);
        pragma user_version = 1;
        """
    )
    kept = new_message_id()
    old.execute(
        "insert into outbox (id, server, user_id, session_id, content, created_at, local_seq) values (?,?,?,?,?,?,?)",
        (str(kept), SERVER, str(ALICE), str(CHAT), "from version 1", 1.0, 1),
    )
    old.commit()
    old.close()
    outbox = await Outbox.open(path)
    try:
        [entry] = await outbox.entries(SERVER, ALICE)
        assert (entry.id, entry.content, entry.reply_to) == (kept, "from version 1", None)
        reply = await outbox.add(new_message_id(), SERVER, ALICE, CHAT, "a reply", reply_to=kept)
        assert (await outbox.get(reply.id)) == reply
        assert reply.as_message().reply_to == kept
    finally:
        await outbox.close()


async def test_reaction_wishes_replace_each_other_and_leave_only_at_their_version(tmp_path: Path) -> None:
    outbox = await Outbox.open(tmp_path / "outbox.sqlite3")
    message = new_message_id()
    try:
        first = await outbox.set_reaction(SERVER, ALICE, CHAT, message, "👍", True)
        second = await outbox.set_reaction(SERVER, ALICE, CHAT, message, "👍", False)
        other = await outbox.set_reaction(SERVER, ALICE, CHAT, message, "🎉", True)
        ops = await outbox.reaction_ops(SERVER, ALICE)
        assert [(op.emoji, op.wanted, op.version) for op in ops] == [("👍", False, 2), ("🎉", True, 1)]
        assert not await outbox.reaction_delivered(first)  # an older version never removes the newer wish
        assert await outbox.reaction_delivered(second)
        assert [op.emoji for op in await outbox.reaction_ops(SERVER, ALICE)] == ["🎉"]
        assert await outbox.reaction_ops(SERVER, BOB) == []
        assert await outbox.purge_user(SERVER, ALICE) == 0  # no messages; the wish goes too
        assert await outbox.reaction_ops(SERVER, ALICE) == []
        assert other.version == 1
    finally:
        await outbox.close()
