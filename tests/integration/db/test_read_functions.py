"""The read-path functions return exactly what row level security lets the caller see."""

from __future__ import annotations

import json

import asyncpg
import pytest

from tests.integration.db.conftest import ALICE, ALICE_BOB_CHAT, BOB, BOOK_CLUB_CHAT, CAROL, FALCON_CHAT, Db

pytestmark = pytest.mark.integration


async def test_recent_chats_lists_the_callers_chats_newest_first(db: Db) -> None:
    # Other tests in this database add chats of Alice's: ask for every one of them (500 is the cap).
    theirs = await db.pool.fetchval("select count(*) from public.chat_members where user_id = $1", ALICE)
    assert theirs <= 500
    async with db.as_user(ALICE) as conn:
        rows = await conn.fetch("select * from public.recent_chats(500)")
    ids = [row["id"] for row in rows]
    assert set(ids) >= {ALICE_BOB_CHAT, FALCON_CHAT}
    assert BOOK_CLUB_CHAT not in ids
    activity = [row["last_message_at"] or row["created_at"] for row in rows]
    assert activity == sorted(activity, reverse=True)
    for row in rows:
        last = json.loads(row["last_message"]) if row["last_message"] else None
        if last is not None:
            assert last["seq"] == row["last_seq"]


async def test_unread_counts_are_arithmetic_without_own_messages(db: Db) -> None:
    """unread = last_seq - last_read_seq - own messages above the read position: own messages never count,
    a message deleted before it was read still does (it shows as "Message deleted")."""
    a, b = await db.new_user("A"), await db.new_user("B")
    chat = await db.new_chat(a, b)
    await db.post(a, chat, "from a")
    second = await db.post(b, chat, "from b")
    await db.post(b, chat, "from b again")
    async with db.as_user(b) as conn:
        await conn.execute("update public.chat_messages set deleted_at = now() where id = $1", second["id"])
    async with db.as_user(a) as conn:
        row_a = await conn.fetchrow("select unread_count, role from public.recent_chats(50) where id = $1", chat)
    async with db.as_user(b) as conn:
        row_b = await conn.fetchrow("select unread_count, role from public.recent_chats(50) where id = $1", chat)
    assert row_a is not None and row_b is not None
    assert (row_a["unread_count"], row_a["role"]) == (2, "owner")  # b's two messages, one of them deleted
    assert (row_b["unread_count"], row_b["role"]) == (1, "member")  # a's message; b's own two skipped


async def test_deleted_chats_leave_the_recent_list(db: Db) -> None:
    a = await db.new_user("A")
    chat = await db.new_chat(a)
    async with db.as_user(a) as conn:
        await conn.execute("update public.chat_sessions set deleted_at = now() where id = $1", chat)
        ids = [row["id"] for row in await conn.fetch("select id from public.recent_chats(50)")]
    assert chat not in ids


async def test_chat_details_has_members_with_names_and_nothing_for_outsiders(db: Db) -> None:
    async with db.as_user(BOB) as conn:
        details = json.loads(await conn.fetchval("select public.chat_details($1)", FALCON_CHAT))
    names = {member["display_name"] for member in details["members"]}
    assert details["session"]["title"] == "Project Falcon"
    assert names == {"Alice", "Bob", "Carol"}
    async with db.as_user(CAROL) as conn:
        assert await conn.fetchval("select public.chat_details($1)", ALICE_BOB_CHAT) is None


async def test_find_profile_by_email_is_exact_and_for_signed_in_users_only(db: Db) -> None:
    async with db.as_user(ALICE) as conn:
        found = await conn.fetch("select * from public.find_profile_by_email('  CAROL@example.com ')")
        partial = await conn.fetch("select * from public.find_profile_by_email('carol@')")
    assert [(row["id"], row["display_name"]) for row in found] == [(CAROL, "Carol")]
    assert partial == []
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with db.as_user(None, role="anon") as conn:
            await conn.fetch("select * from public.find_profile_by_email('carol@example.com')")
