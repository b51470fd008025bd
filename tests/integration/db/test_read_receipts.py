"""Read receipts: read positions, "seen by N" per message, the names behind N, and the live `read` event."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from tests.integration.db.conftest import Db
from tests.integration.db.test_realtime_broadcasts import sent

pytestmark = pytest.mark.integration


async def read_to(db: Db, user: uuid.UUID, chat: uuid.UUID, seq: int) -> None:
    async with db.as_user(user) as conn:
        await conn.execute(
            "update public.chat_members set last_read_seq = $3 where session_id = $1 and user_id = $2", chat, user, seq
        )


async def test_seen_by_counts_other_members_at_or_past_each_message(db: Db) -> None:
    a, b, c, d = [await db.new_user(name) for name in "ABCD"]
    chat = await db.new_chat(a, b, c, d)
    posts = [await db.post(a if n % 2 == 0 else b, chat, f"m{n}") for n in range(6)]  # seq 1..6, a: odd seqs
    await read_to(db, a, chat, 6)
    await read_to(db, b, chat, 4)
    await read_to(db, c, chat, 2)
    async with db.as_user(d) as conn:
        rows = await conn.fetch("select * from public.read_receipts($1, 1, 6)", chat)
    got = [(row["seq"], row["read_count"], row["member_count"]) for row in rows]
    # Senders are left out of their own messages: a sent 1, 3, 5; b sent 2, 4, 6.
    assert got == [(1, 2, 3), (2, 2, 3), (3, 1, 3), (4, 1, 3), (5, 0, 3), (6, 1, 3)]
    assert [p["seq"] for p in posts] == [1, 2, 3, 4, 5, 6]

    async with db.as_user(d) as conn:
        readers = await conn.fetch("select * from public.message_readers($1, 2, 10)", chat)
        positions = await conn.fetch("select * from public.read_positions($1)", chat)
    assert [(row["user_id"], row["display_name"]) for row in readers] == [(a, "A"), (c, "C")]
    assert [(row["user_id"], row["last_read_seq"]) for row in positions][:3] == [(a, 6), (b, 4), (c, 2)]
    assert {row["member_count"] for row in positions} == {4}


async def test_a_window_only_shows_its_messages_and_is_bounded(db: Db) -> None:
    a, b = await db.new_user("A"), await db.new_user("B")
    chat = await db.new_chat(a, b)
    for n in range(5):
        await db.post(a, chat, f"m{n}")
    await read_to(db, b, chat, 3)
    async with db.as_user(a) as conn:
        rows = await conn.fetch("select seq, read_count from public.read_receipts($1, 2, 4)", chat)
    assert [(row["seq"], row["read_count"]) for row in rows] == [(2, 1), (3, 1), (4, 0)]
    for window, error in (((1, 501), "at most 500"), ((5, 1), "range of seq")):
        with pytest.raises(asyncpg.InvalidParameterValueError, match=error):
            async with db.as_user(a) as conn:
                await conn.fetch("select * from public.read_receipts($1, $2, $3)", chat, *window)


async def test_outsiders_learn_nothing(db: Db) -> None:
    a, b, mallory = await db.new_user("A"), await db.new_user("B"), await db.new_user("M")
    chat = await db.new_chat(a, b)
    await db.post(a, chat, "private")
    await read_to(db, b, chat, 1)
    async with db.as_user(mallory) as conn:
        assert await conn.fetch("select * from public.read_receipts($1, 1, 10)", chat) == []
        assert await conn.fetch("select * from public.message_readers($1, 1)", chat) == []
        assert await conn.fetch("select * from public.read_positions($1)", chat) == []
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with db.as_user(None, role="anon") as conn:
            await conn.fetch("select * from public.read_positions($1)", chat)


async def test_a_read_position_reaches_a_small_chat_as_a_compact_read_event(db: Db) -> None:
    a, b = await db.new_user("A"), await db.new_user("B")
    chat = await db.new_chat(a, b)
    await db.post(a, chat, "hello")
    before = len(await sent(db, f"chat:{chat}"))
    own_before = len(await sent(db, f"user:{b}"))
    await read_to(db, b, chat, 1)
    events = (await sent(db, f"chat:{chat}"))[before:]
    assert len(events) == 1
    event, payload = events[0]
    assert event == "read"
    assert payload.pop("id")
    assert payload == {"chat_id": str(chat), "user_id": str(b), "last_read_seq": 1}
    # The member's own topic still gets the member row (their other devices).
    assert [event for event, _ in (await sent(db, f"user:{b}"))[own_before:]] == ["member"]
    # No change, no event.
    await read_to(db, b, chat, 1)
    assert len(await sent(db, f"chat:{chat}")) == before + 1


async def test_a_big_chat_sends_no_read_events(db: Db) -> None:
    owner = await db.new_user("Owner")
    crowd = [await db.new_user(f"M{n}") for n in range(50)]
    chat = await db.new_chat(owner, *crowd)  # 51 members
    await db.post(owner, chat, "announcement")
    before = len(await sent(db, f"chat:{chat}"))
    await read_to(db, crowd[0], chat, 1)
    assert [event for event, _ in (await sent(db, f"chat:{chat}"))[before:]] == []
    async with db.as_user(crowd[1]) as conn:
        [row] = await conn.fetch("select read_count, member_count from public.read_receipts($1, 1, 1)", chat)
    assert (row["read_count"], row["member_count"]) == (1, 50)
