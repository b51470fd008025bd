"""seq and rev: gap-free, in commit order under concurrency, and untouched by retried sends."""

from __future__ import annotations

import asyncio
import random
import uuid

import asyncpg
import pytest

from tests.integration.db.conftest import Db

pytestmark = pytest.mark.integration

WRITERS = 8
PER_WRITER = 25


async def test_seq_and_rev_are_gap_free_and_follow_commit_order(db: Db) -> None:
    users = [await db.new_user(f"W{i}") for i in range(WRITERS)]
    chat = await db.new_chat(users[0], *users[1:])
    stop = asyncio.Event()
    seen_by_reader: list[int] = []

    async def writer(user: uuid.UUID) -> None:
        rng = random.Random(user.int)
        for _ in range(PER_WRITER):
            async with db.as_user(user) as conn:
                await conn.execute(
                    "insert into public.chat_messages (id, session_id, content) values ($1, $2, 'hi')",
                    uuid.uuid4(),
                    chat,
                )
                # Hold the transaction open a little so commits interleave with other writers.
                await asyncio.sleep(rng.random() * 0.004)

    async def reader(user: uuid.UUID) -> None:
        # A client following "rev > cursor": if revs were handed out out of commit order, it would see
        # a higher rev before a lower one committed, move its cursor past it and never see it.
        cursor = 0
        while True:
            done = stop.is_set()
            async with db.as_user(user) as conn:
                rows = await conn.fetch(
                    "select rev from public.chat_messages where session_id = $1 and rev > $2 order by rev",
                    chat,
                    cursor,
                )
            for row in rows:
                seen_by_reader.append(row["rev"])
                cursor = row["rev"]
            if done:
                return
            await asyncio.sleep(0.001)

    reading = asyncio.create_task(reader(users[0]))
    try:
        await asyncio.gather(*(writer(user) for user in users))
    finally:
        stop.set()
        await reading

    total = WRITERS * PER_WRITER
    rows = await db.pool.fetch("select seq, rev from public.chat_messages where session_id = $1 order by seq", chat)
    assert [row["seq"] for row in rows] == list(range(1, total + 1))
    assert [row["rev"] for row in rows] == list(range(1, total + 1))
    assert seen_by_reader == list(range(1, total + 1))
    counters = await db.pool.fetchrow("select last_seq, last_rev from public.chat_sessions where id = $1", chat)
    assert counters is not None
    assert (counters["last_seq"], counters["last_rev"]) == (total, total)


async def test_inserting_the_same_id_twice_leaves_one_row_and_no_gap(db: Db) -> None:
    a = await db.new_user("A")
    chat = await db.new_chat(a)
    message_id = uuid.uuid4()
    statement = (
        "insert into public.chat_messages (id, session_id, content) values ($1, $2, 'once')"
        " on conflict (id, session_id) do nothing returning seq"
    )
    async with db.as_user(a) as conn:
        first = await conn.fetchval(statement, message_id, chat)
    async with db.as_user(a) as conn:
        second = await conn.fetchval(statement, message_id, chat)
    with pytest.raises(asyncpg.UniqueViolationError):
        async with db.as_user(a) as conn:
            await conn.execute(
                "insert into public.chat_messages (id, session_id, content) values ($1, $2, 'twice')",
                message_id,
                chat,
            )
    after = await db.post(a, chat, "next")
    assert first == 1
    assert second is None
    assert after["seq"] == 2
    assert await db.pool.fetchval("select count(*) from public.chat_messages where id = $1", message_id) == 1


async def test_concurrent_retries_of_one_send_store_it_once(db: Db) -> None:
    a = await db.new_user("A")
    chat = await db.new_chat(a)
    message_id = uuid.uuid4()

    async def attempt() -> None:
        async with db.as_user(a) as conn:
            await conn.execute(
                "insert into public.chat_messages (id, session_id, content) values ($1, $2, 'retry')"
                " on conflict (id, session_id) do nothing",
                message_id,
                chat,
            )

    await asyncio.gather(*(attempt() for _ in range(10)))
    after = await db.post(a, chat, "next")
    assert await db.pool.fetchval("select count(*) from public.chat_messages where session_id = $1", chat) == 2
    assert after["seq"] == 2


async def test_edits_bump_rev_but_not_seq(db: Db) -> None:
    a = await db.new_user("A")
    chat = await db.new_chat(a)
    first = await db.post(a, chat, "one")
    async with db.as_user(a) as conn:
        edited = await conn.fetchrow(
            "update public.chat_messages set content = 'uno' where id = $1 returning seq, rev", first["id"]
        )
        unchanged = await conn.fetchrow(
            "update public.chat_messages set content = 'uno' where id = $1 returning seq, rev", first["id"]
        )
    second = await db.post(a, chat, "two")
    assert edited is not None and unchanged is not None
    assert (edited["seq"], edited["rev"]) == (1, 2)
    assert (unchanged["seq"], unchanged["rev"]) == (1, 2)  # a no-op update is not a revision
    assert (second["seq"], second["rev"]) == (2, 3)
