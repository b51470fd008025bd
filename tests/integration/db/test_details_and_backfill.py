"""Chat details with a member count and the members the chat view needs, members a page at a time, and the
back-fill of many chats in one call (``changes_since``)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import asyncpg
import pytest

from tests.integration.db.conftest import Db

pytestmark = pytest.mark.integration

PAGE = "select * from public.chat_members_page($1, $2, $3, $4)"
CHANGES = "select * from public.changes_since($1::uuid[], $2::bigint[], $3)"


async def big_chat(db: Db, members: int) -> tuple[uuid.UUID, list[uuid.UUID]]:
    """A chat of ``members`` people who joined one after another; the owner joined first."""
    people = [await db.new_user(f"M{n:03}") for n in range(members)]
    chat = await db.new_chat(people[0], title="big")
    await db.pool.execute(
        "insert into public.chat_members (session_id, user_id, joined_at)"
        " select $1, u, now() + n * interval '1 second' from unnest($2::uuid[]) with ordinality t (u, n)",
        chat,
        people[1:],
    )
    return chat, people


async def test_details_count_the_members_and_name_the_first_ones_and_recent_senders(db: Db) -> None:
    chat, people = await big_chat(db, 12)
    late = people[-1]
    await db.post(late, chat, "I joined last")
    async with db.as_user(people[0]) as conn:
        details = json.loads(await conn.fetchval("select public.chat_details($1, $2)", chat, 5))
    assert details["session"]["id"] == str(chat) and details["member_count"] == 12
    shown = [member["user_id"] for member in details["members"]]
    assert shown == [str(user) for user in [*people[:5], late]]  # the first five, then the recent sender
    assert {member["display_name"] for member in details["members"]} == {"M000", "M001", "M002", "M003", "M004", "M011"}
    assert all("last_read_seq" not in member for member in details["members"])  # read positions are no details


async def test_details_and_member_pages_are_for_members_only(db: Db) -> None:
    chat, _ = await big_chat(db, 3)
    outsider = await db.new_user("Out")
    async with db.as_user(outsider) as conn:
        assert await conn.fetchval("select public.chat_details($1)", chat) is None
        assert await conn.fetch(PAGE, chat, None, None, 50) == []
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with db.as_user(None, role="anon") as conn:
            await conn.fetch(PAGE, chat, None, None, 50)


async def test_member_pages_walk_every_member_once_in_joining_order(db: Db) -> None:
    chat, people = await big_chat(db, 23)
    seen: list[asyncpg.Record] = []
    after: tuple[Any, Any] = (None, None)
    while True:
        async with db.as_user(people[7]) as conn:
            page = await conn.fetch(PAGE, chat, *after, 5)
        seen += page
        if len(page) < 5:
            break
        after = (page[-1]["joined_at"], page[-1]["user_id"])
    assert [row["user_id"] for row in seen] == people
    assert seen[0]["role"] == "owner" and {row["role"] for row in seen[1:]} == {"member"}
    assert seen[0]["member_count"] == 23 and {row["member_count"] for row in seen[5:]} == {None}  # counted once
    assert [row["display_name"] for row in seen[:2]] == ["M000", "M001"]


async def test_changes_since_skips_chats_that_did_not_move(db: Db) -> None:
    user, other = await db.new_user("U"), await db.new_user("O")
    chats = [await db.new_chat(user, other, title=f"c{n}") for n in range(6)]
    for chat in chats:
        await db.post(other, chat, "old")
    cursors = [1] * len(chats)
    async with db.as_user(user) as conn:
        assert await conn.fetch(CHANGES, chats, cursors, 500) == []  # nothing moved: no rows at all
    first = await db.post(other, chats[2], "new")
    await db.post(user, chats[4], "mine")
    async with db.as_user(other) as conn:
        await conn.execute("update public.chat_messages set content = 'edited' where id = $1", first["id"])
    async with db.as_user(user) as conn:
        rows = await conn.fetch(CHANGES, chats, cursors, 500)
    assert [(row["chat_id"], row["last_rev"], row["gone"], row["more"]) for row in rows] == [
        (chats[2], 3, False, False),
        (chats[4], 2, False, False),
    ]
    changed = json.loads(rows[0]["messages"])
    assert [(m["seq"], m["rev"], m["content"]) for m in changed] == [(2, 3, "edited")]  # the newest version only


async def test_changes_since_reports_chats_one_can_no_longer_see_once(db: Db) -> None:
    user, owner, stranger = await db.new_user("U"), await db.new_user("Owner"), await db.new_user("S")
    left, deleted, kept = [await db.new_chat(owner, user, title=t) for t in ("left", "deleted", "kept")]
    foreign = await db.new_chat(stranger)
    async with db.as_user(user) as conn:
        await conn.execute("delete from public.chat_members where session_id = $1 and user_id = $2", left, user)
    async with db.as_user(owner) as conn:
        await conn.execute("update public.chat_sessions set deleted_at = now() where id = $1", deleted)
    async with db.as_user(user) as conn:
        rows = await conn.fetch(CHANGES, [left, deleted, kept, foreign], [0, 0, 0, 0], 500)
    assert [(row["chat_id"], row["gone"], row["last_rev"], json.loads(row["messages"])) for row in rows] == [
        (left, True, None, []),
        (deleted, True, None, []),
        (foreign, True, None, []),  # never seen: the same answer as a chat that does not exist
    ]


async def test_changes_since_spends_one_budget_over_the_chats_in_order(db: Db) -> None:
    user, other = await db.new_user("U"), await db.new_user("O")
    chats = [await db.new_chat(user, other, title=f"c{n}") for n in range(3)]
    for chat in chats:
        for i in range(4):
            await db.post(other, chat, f"{i}")

    async def changes(revs: list[int], budget: int) -> list[tuple[int, bool, list[int]]]:
        async with db.as_user(user) as conn:
            rows = await conn.fetch(CHANGES, chats, revs, budget)
        return [
            (chats.index(row["chat_id"]), row["more"], [m["rev"] for m in json.loads(row["messages"])]) for row in rows
        ]

    assert await changes([0, 0, 0], 6) == [(0, False, [1, 2, 3, 4]), (1, True, [1, 2]), (2, True, [])]
    assert await changes([4, 2, 0], 6) == [(1, False, [3, 4]), (2, False, [1, 2, 3, 4])]
    with pytest.raises(asyncpg.InvalidParameterValueError, match="same length"):
        await changes([0, 0], 6)


async def test_the_back_fill_and_the_list_carry_replies_and_reactions(db: Db) -> None:
    """A message back-filled, or shown as a chat's newest, has what any message read has: the one it answers
    and its reaction counts (a client's cache keeps what the back-fill brings)."""
    a, b = await db.new_user("A"), await db.new_user("B")
    chat = await db.new_chat(a, b)
    first = await db.post(a, chat, "question")
    async with db.as_user(b) as conn:
        reply = await conn.fetchval(
            "insert into public.chat_messages (id, session_id, content, reply_to) values ($1, $2, 'answer', $3)"
            " returning id",
            uuid.uuid4(),
            chat,
            first["id"],
        )
        await conn.execute(
            "insert into public.message_reactions (session_id, message_id, emoji) values ($1, $2, '👍')",
            chat,
            reply,
        )
    async with db.as_user(a) as conn:
        rows = await conn.fetch(CHANGES, [chat], [first["rev"]], 500)
        listed = await conn.fetchrow("select last_message from public.chat_list(10, null, null, null, $1)", [chat])
    [change] = rows
    [answer] = json.loads(change["messages"])
    assert (answer["id"], answer["reply_to"], answer["reactions"]) == (
        str(reply),
        str(first["id"]),
        [{"emoji": "👍", "count": 1}],
    )
    assert listed is not None
    newest = json.loads(listed["last_message"])
    assert (newest["reply_to"], newest["reactions"]) == (str(first["id"]), [{"emoji": "👍", "count": 1}])
