"""The chat list (``chat_list``): keyset pages from the inbox index, search and lookups over all of a user's
chats, unread counts as arithmetic kept exact by the triggers, and the inbox's own row level security."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import uuid
from typing import Any

import asyncpg
import pytest

from tests.integration.db.conftest import ALICE, BOB, Db

pytestmark = pytest.mark.integration

LIST = "select * from public.chat_list($1, $2, $3, $4, $5)"


async def many_chats(db: Db, owner: uuid.UUID, count: int, title: str) -> list[uuid.UUID]:
    """``count`` chats of ``owner``'s titled ``<title> <n>``; chat n had its last message n minutes ago."""
    partner = await db.new_user("Partner")
    chats = [uuid.uuid4() for _ in range(count)]
    await db.pool.execute(
        "insert into public.chat_sessions (id, title, created_by, created_at)"
        " select c, $2 || ' ' || n, $3, now() - interval '1 day' from unnest($1::uuid[]) with ordinality t (c, n)",
        chats,
        title,
        owner,
    )
    await db.pool.execute(
        "insert into public.chat_members (session_id, user_id) select c, $2 from unnest($1::uuid[]) c", chats, partner
    )
    await db.pool.execute(
        "insert into public.chat_messages (session_id, sender_id, content, created_at)"
        " select c, $2, 'hi', now() - n * interval '1 minute' from unnest($1::uuid[]) with ordinality t (c, n)",
        chats,
        partner,
    )
    return chats


async def pages(db: Db, user: uuid.UUID, size: int, search: str | None = None) -> list[list[asyncpg.Record]]:
    """Every page of ``user``'s chat list, each asked after the last row of the one before."""
    found: list[list[asyncpg.Record]] = []
    before: tuple[Any, Any] = (None, None)
    while True:
        async with db.as_user(user) as conn:
            page = await conn.fetch(LIST, size, *before, search, None)
        found.append(page)
        if len(page) < size:
            return found
        before = (page[-1]["activity_at"], page[-1]["id"])


async def test_pages_walk_every_chat_once_newest_first(db: Db) -> None:
    owner = await db.new_user("Owner")
    chats = await many_chats(db, owner, 57, "Paged")
    gone = chats[20]
    async with db.as_user(owner) as conn:
        await conn.execute("update public.chat_sessions set deleted_at = now() where id = $1", gone)
    walked = await pages(db, owner, 10)
    assert [len(page) for page in walked] == [10, 10, 10, 10, 10, 6]
    ids = [row["id"] for page in walked for row in page]
    assert ids == [chat for chat in chats if chat != gone]  # newest first, each once, the deleted one left out
    keys = [(row["activity_at"], row["id"]) for page in walked for row in page]
    assert keys == sorted(keys, reverse=True)
    assert all(row["last_message"] is not None and row["unread_count"] == 1 for page in walked for row in page)


async def test_a_search_looks_at_every_chat_and_pages_too(db: Db) -> None:
    owner = await db.new_user("Owner")
    chats = await many_chats(db, owner, 120, "Searchable")
    async with db.as_user(owner) as conn:
        oldest = await conn.fetch(LIST, 50, None, None, "  SEARCHABLE 120 ", None)
        none = await conn.fetch(LIST, 50, None, None, "no such chat", None)
    assert [row["id"] for row in oldest] == [chats[119]]  # the oldest chat, far beyond a first page
    assert none == []
    walked = await pages(db, owner, 4, "searchable 1")  # 1, 10..19, 100..120
    assert [row["title"] for page in walked for row in page] == [
        f"Searchable {n}" for n in [1, *range(10, 20), *range(100, 121)]
    ]


async def test_asking_for_chats_by_id_returns_only_ones_own(db: Db) -> None:
    owner, stranger = await db.new_user("Owner"), await db.new_user("Stranger")
    chats = await many_chats(db, owner, 30, "Mine")
    theirs = await db.new_chat(stranger)
    asked = [chats[29], chats[3], theirs, uuid.uuid4(), chats[3]]
    async with db.as_user(owner) as conn:
        rows = await conn.fetch(LIST, 50, None, None, None, asked)
    assert [row["id"] for row in rows] == [chats[3], chats[29]]  # by activity, once each, no one else's
    with pytest.raises(asyncpg.InvalidParameterValueError, match="at most 500"):
        async with db.as_user(owner) as conn:
            await conn.fetch(LIST, 50, None, None, None, [uuid.uuid4() for _ in range(501)])


async def test_a_chat_moves_up_for_every_member_on_the_first_message_of_a_two_second_window(db: Db) -> None:
    a, b = await db.new_user("A"), await db.new_user("B")
    chat = await db.new_chat(a, b)
    start = dt.datetime(2030, 1, 1, 12, 0, 0, tzinfo=dt.UTC)

    async def post_at(at: dt.datetime) -> None:
        await db.pool.execute(
            "insert into public.chat_messages (session_id, sender_id, content, created_at) values ($1, $2, 'x', $3)",
            chat,
            a,
            at,
        )

    async def activity() -> set[dt.datetime]:
        rows = await db.pool.fetch("select activity_at from public.chat_inbox where session_id = $1", chat)
        return {row["activity_at"] for row in rows}

    await post_at(start)
    assert await activity() == {start}
    await post_at(start + dt.timedelta(seconds=1.5))  # same 2-second window: members' rows are not touched
    assert await activity() == {start}
    await post_at(start + dt.timedelta(seconds=2.1))  # the next window: every member's row moves
    assert await activity() == {start + dt.timedelta(seconds=2.1)}
    last = await db.pool.fetchval("select last_message_at from public.chat_sessions where id = $1", chat)
    assert last == start + dt.timedelta(seconds=2.1)


async def test_unread_is_exact_while_members_send_and_read_at_the_same_time(db: Db) -> None:
    """The counters against a count of the rows, after concurrent sends by both members and read-position
    moves by one of them (own messages above the read position never count)."""
    a, b = await db.new_user("A"), await db.new_user("B")
    chat = await db.new_chat(a, b)
    rng = random.Random(18)

    async def send(user: uuid.UUID, n: int) -> None:
        for i in range(n):
            await db.post(user, chat, f"{i}")

    async def read_now_and_then() -> None:
        for _ in range(25):
            async with db.as_user(a) as conn:
                newest = await conn.fetchval("select last_seq from public.chat_sessions where id = $1", chat)
                await conn.execute(
                    "update public.chat_members set last_read_seq = $2 where session_id = $1 and user_id = $3",
                    chat,
                    rng.randint(0, newest),
                    a,
                )
            await asyncio.sleep(0)

    await asyncio.gather(send(a, 30), send(b, 30), read_now_and_then(), send(a, 10))

    async def check() -> None:
        for user in (a, b):
            async with db.as_user(user) as conn:
                row = await conn.fetchrow(LIST, 50, None, None, None, [chat])
            expected = await db.pool.fetchval(
                "select count(*) from public.chat_messages x join public.chat_members m"
                " on m.session_id = x.session_id and m.user_id = $2"
                " where x.session_id = $1 and x.seq > m.last_read_seq and x.sender_id <> $2",
                chat,
                user,
            )
            assert row is not None and row["unread_count"] == expected, user

    await check()
    for seq in (7, 33, 70):
        async with db.as_user(a) as conn:
            await conn.execute(
                "update public.chat_members set last_read_seq = $2 where session_id = $1 and user_id = $3", chat, seq, a
            )
        await check()
    assert await db.pool.fetchval("select own_unread from public.chat_inbox where user_id = $1", a) == 0


async def test_a_new_member_of_an_old_chat_counts_its_history_but_not_their_own_messages(db: Db) -> None:
    a, b = await db.new_user("A"), await db.new_user("B")
    chat = await db.new_chat(a, b)
    await db.post(a, chat, "one")
    await db.post(b, chat, "two")
    async with db.as_user(a) as conn:
        await conn.execute("delete from public.chat_members where session_id = $1 and user_id = $2", chat, b)
        await conn.execute("insert into public.chat_members (session_id, user_id) values ($1, $2)", chat, b)
    async with db.as_user(b) as conn:
        row = await conn.fetchrow(LIST, 50, None, None, None, [chat])
    assert row is not None and (row["last_read_seq"], row["unread_count"]) == (0, 1)  # a's message only


async def test_a_deleted_chat_leaves_every_members_list_and_a_restored_one_comes_back(db: Db) -> None:
    a, b = await db.new_user("A"), await db.new_user("B")
    chat = await db.new_chat(a, b)
    await db.post(b, chat, "hello")
    async with db.as_user(a) as conn:
        await conn.execute("update public.chat_sessions set deleted_at = now() where id = $1", chat)
    for user in (a, b):
        async with db.as_user(user) as conn:
            assert await conn.fetch(LIST, 50, None, None, None, None) == []
    async with db.as_user(a) as conn:
        await conn.execute("update public.chat_sessions set deleted_at = null where id = $1", chat)
        row = await conn.fetchrow(LIST, 50, None, None, None, None)
    assert row is not None and (row["id"], row["unread_count"]) == (chat, 1)


async def test_the_inbox_is_each_users_own_and_nobody_writes_it(db: Db) -> None:
    async with db.as_user(ALICE) as conn:
        users = {row["user_id"] for row in await conn.fetch("select user_id from public.chat_inbox")}
        assert users == {ALICE}
        for statement in (
            "update public.chat_inbox set own_unread = 0",
            "delete from public.chat_inbox",
            f"insert into public.chat_inbox (session_id, user_id, activity_at) select session_id, '{BOB}', now()"
            " from public.chat_inbox limit 1",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                async with conn.transaction():
                    await conn.execute(statement)
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with db.as_user(None, role="anon") as conn:
            await conn.fetch("select * from public.chat_inbox")
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with db.as_user(None, role="anon") as conn:
            await conn.fetch("select * from public.chat_list()")


async def test_recent_chats_is_the_first_page(db: Db) -> None:
    owner = await db.new_user("Owner")
    chats = await many_chats(db, owner, 12, "Recent")
    async with db.as_user(owner) as conn:
        recent = await conn.fetch("select * from public.recent_chats(5)")
        listed = await conn.fetch(LIST, 5, None, None, None, None)
    assert [row["id"] for row in recent] == [row["id"] for row in listed] == chats[:5]
    assert [dict(row) for row in recent] == [
        {k: v for k, v in dict(row).items() if k != "activity_at"} for row in listed
    ]
