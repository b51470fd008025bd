"""Row level security, checked as PostgREST would run each request (role + JWT claims).

Every policy has a test that it grants what it should (so dropping it fails a test) and a test that
it refuses what it should (so loosening it, or disabling RLS, fails a test).
"""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from tests.integration.db.conftest import ALICE, ALICE_BOB_CHAT, BOB, CAROL, FALCON_CHAT, Db

pytestmark = pytest.mark.integration


async def test_member_sees_chat_members_and_messages(db: Db) -> None:
    async with db.as_user(ALICE) as conn:
        chats = await conn.fetch("select id from public.chat_sessions")
        members = await conn.fetch("select user_id from public.chat_members where session_id = $1", ALICE_BOB_CHAT)
        messages = await conn.fetch("select id from public.chat_messages where session_id = $1", ALICE_BOB_CHAT)
    assert ALICE_BOB_CHAT in {row["id"] for row in chats}
    assert {row["user_id"] for row in members} == {ALICE, BOB}
    assert len(messages) >= 5  # the seed's five, plus whatever other suites posted


async def test_non_member_sees_no_chat_member_or_message(db: Db) -> None:
    async with db.as_user(CAROL) as conn:
        chats = await conn.fetch("select id from public.chat_sessions where id = $1", ALICE_BOB_CHAT)
        members = await conn.fetch("select 1 from public.chat_members where session_id = $1", ALICE_BOB_CHAT)
        messages = await conn.fetch("select 1 from public.chat_messages where session_id = $1", ALICE_BOB_CHAT)
    assert chats == []
    assert members == []
    assert messages == []


async def test_a_new_user_sees_only_their_own_profile_and_nothing_else(db: Db) -> None:
    dave = await db.new_user("Dave")
    async with db.as_user(dave) as conn:
        profiles = await conn.fetch("select id from public.profiles")
        assert await conn.fetch("select 1 from public.chat_sessions") == []
        assert await conn.fetch("select 1 from public.chat_members") == []
        assert await conn.fetch("select 1 from public.chat_messages") == []
    assert [row["id"] for row in profiles] == [dave]


async def test_profiles_are_visible_to_people_sharing_a_chat(db: Db) -> None:
    async with db.as_user(CAROL) as conn:
        visible = {row["id"] for row in await conn.fetch("select id from public.profiles")}
    assert {ALICE, BOB, CAROL} <= visible


async def test_users_update_only_their_own_profile(db: Db) -> None:
    erin = await db.new_user("Erin")
    frank = await db.new_user("Frank")
    await db.new_chat(erin, frank)
    async with db.as_user(erin) as conn:
        mine = await conn.execute("update public.profiles set display_name = 'Erin E.' where id = $1", erin)
        theirs = await conn.execute("update public.profiles set display_name = 'Hacked' where id = $1", frank)
    assert mine == "UPDATE 1"
    assert theirs == "UPDATE 0"


async def test_anon_reads_and_writes_nothing(db: Db) -> None:
    for table in ("profiles", "chat_sessions", "chat_members", "chat_messages"):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            async with db.as_user(None, role="anon") as conn:
                await conn.fetch(f"select * from public.{table}")


async def test_member_posts_as_themselves(db: Db) -> None:
    row = await db.post(ALICE, FALCON_CHAT, "posting as myself")
    assert row["sender_id"] == ALICE


async def test_member_cannot_post_as_someone_else(db: Db) -> None:
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security"):
        async with db.as_user(ALICE) as conn:
            await conn.execute(
                "insert into public.chat_messages (id, session_id, sender_id, content) values ($1, $2, $3, 'hi')",
                uuid.uuid4(),
                ALICE_BOB_CHAT,
                BOB,
            )


async def test_non_member_cannot_post_into_a_chat(db: Db) -> None:
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security"):
        async with db.as_user(CAROL) as conn:
            await conn.execute(
                "insert into public.chat_messages (id, session_id, content) values ($1, $2, 'let me in')",
                uuid.uuid4(),
                ALICE_BOB_CHAT,
            )


async def test_clients_cannot_choose_order_or_timestamps(db: Db) -> None:
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with db.as_user(ALICE) as conn:
            await conn.execute(
                "insert into public.chat_messages (id, session_id, content, seq) values ($1, $2, 'x', 1)",
                uuid.uuid4(),
                FALCON_CHAT,
            )
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with db.as_user(ALICE) as conn:
            await conn.execute("update public.chat_sessions set last_seq = 0 where id = $1", FALCON_CHAT)


async def test_anyone_signed_in_creates_a_chat_and_becomes_its_owner(db: Db) -> None:
    gina = await db.new_user("Gina")
    chat = uuid.uuid4()
    async with db.as_user(gina) as conn:
        created = await conn.fetchrow(
            "insert into public.chat_sessions (id, title) values ($1, 'mine') returning id, created_by", chat
        )
        role = await conn.fetchval(
            "select role from public.chat_members where session_id = $1 and user_id = $2", chat, gina
        )
    assert created is not None
    assert created["created_by"] == gina
    assert role == "owner"


async def test_nobody_creates_a_chat_in_someone_elses_name(db: Db) -> None:
    hank = await db.new_user("Hank")
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with db.as_user(hank) as conn:
            await conn.execute(
                "insert into public.chat_sessions (id, title, created_by) values ($1, 'x', $2)",
                uuid.uuid4(),
                ALICE,
            )


async def test_only_owners_add_members(db: Db) -> None:
    owner, member, outsider = (
        await db.new_user("Owner"),
        await db.new_user("Member"),
        await db.new_user("Out"),
    )
    chat = await db.new_chat(owner, member)
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security"):
        async with db.as_user(member) as conn:
            await conn.execute("insert into public.chat_members (session_id, user_id) values ($1, $2)", chat, outsider)
    async with db.as_user(owner) as conn:
        await conn.execute("insert into public.chat_members (session_id, user_id) values ($1, $2)", chat, outsider)
    async with db.as_user(outsider) as conn:
        assert await conn.fetchval("select count(*) from public.chat_sessions where id = $1", chat) == 1


async def test_only_owners_remove_others_but_anyone_may_leave(db: Db) -> None:
    owner, a, b = await db.new_user("Owner"), await db.new_user("A"), await db.new_user("B")
    chat = await db.new_chat(owner, a, b)
    async with db.as_user(a) as conn:
        kicked = await conn.execute("delete from public.chat_members where session_id = $1 and user_id = $2", chat, b)
        left = await conn.execute("delete from public.chat_members where session_id = $1 and user_id = $2", chat, a)
    async with db.as_user(owner) as conn:
        removed = await conn.execute("delete from public.chat_members where session_id = $1 and user_id = $2", chat, b)
    assert kicked == "DELETE 0"
    assert left == "DELETE 1"
    assert removed == "DELETE 1"


async def test_the_last_owner_leaving_hands_the_chat_over(db: Db) -> None:
    owner, a, b = await db.new_user("Owner"), await db.new_user("A"), await db.new_user("B")
    chat = await db.new_chat(owner, a, b)
    async with db.as_user(owner) as conn:
        await conn.execute("delete from public.chat_members where session_id = $1 and user_id = $2", chat, owner)
        # Having left, the creator no longer sees the chat.
        assert await conn.fetchval("select count(*) from public.chat_sessions where id = $1", chat) == 0
    roles = await db.pool.fetch("select user_id, role from public.chat_members where session_id = $1", chat)
    owners = [row["user_id"] for row in roles if row["role"] == "owner"]
    assert len(owners) == 1
    assert owners[0] in {a, b}


async def test_only_owners_rename_or_delete_a_chat(db: Db) -> None:
    owner, member = await db.new_user("Owner"), await db.new_user("Member")
    chat = await db.new_chat(owner, member)
    async with db.as_user(member) as conn:
        renamed = await conn.execute("update public.chat_sessions set title = 'mine now' where id = $1", chat)
        deleted = await conn.execute("update public.chat_sessions set deleted_at = now() where id = $1", chat)
    assert (renamed, deleted) == ("UPDATE 0", "UPDATE 0")
    async with db.as_user(owner) as conn:
        assert await conn.execute("update public.chat_sessions set title = 'renamed' where id = $1", chat) == "UPDATE 1"
        assert await conn.execute("update public.chat_sessions set deleted_at = now() where id = $1", chat) == (
            "UPDATE 1"
        )
    # Nobody posts into a deleted chat.
    with pytest.raises(asyncpg.PostgresError):
        await db.post(owner, chat, "anyone there?")


async def test_hard_delete_is_not_granted_to_clients(db: Db) -> None:
    owner = await db.new_user("Owner")
    chat = await db.new_chat(owner)
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with db.as_user(owner) as conn:
            await conn.execute("delete from public.chat_sessions where id = $1", chat)
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with db.as_user(owner) as conn:
            await conn.execute("delete from public.chat_messages where session_id = $1", chat)


async def test_only_the_sender_edits_or_deletes_a_message(db: Db) -> None:
    a, b = await db.new_user("A"), await db.new_user("B")
    chat = await db.new_chat(a, b)
    message = await db.post(a, chat, "original")
    async with db.as_user(b) as conn:
        edited = await conn.execute("update public.chat_messages set content = 'forged' where id = $1", message["id"])
        deleted = await conn.execute("update public.chat_messages set deleted_at = now() where id = $1", message["id"])
    assert (edited, deleted) == ("UPDATE 0", "UPDATE 0")

    async with db.as_user(a) as conn:
        row = await conn.fetchrow(
            "update public.chat_messages set content = 'fixed' where id = $1 returning content, edited_at, rev",
            message["id"],
        )
    assert row is not None
    assert row["content"] == "fixed"
    assert row["edited_at"] is not None
    assert row["rev"] > message["rev"]

    async with db.as_user(a) as conn:
        gone = await conn.fetchrow(
            "update public.chat_messages set deleted_at = now() where id = $1 returning content, rev",
            message["id"],
        )
    assert gone is not None
    assert gone["content"] == ""
    assert gone["rev"] > row["rev"]
    with pytest.raises(asyncpg.CheckViolationError):
        async with db.as_user(a) as conn:
            await conn.execute("update public.chat_messages set content = 'back' where id = $1", message["id"])


async def test_members_update_only_their_own_read_position(db: Db) -> None:
    a, b = await db.new_user("A"), await db.new_user("B")
    chat = await db.new_chat(a, b)
    for _ in range(3):
        await db.post(a, chat)
    async with db.as_user(b) as conn:
        other = await conn.execute(
            "update public.chat_members set last_read_seq = 3 where session_id = $1 and user_id = $2", chat, a
        )
        own = await conn.fetchval(
            "update public.chat_members set last_read_seq = 99 where session_id = $1 and user_id = $2"
            " returning last_read_seq",
            chat,
            b,
        )
        back = await conn.fetchval(
            "update public.chat_members set last_read_seq = 1 where session_id = $1 and user_id = $2"
            " returning last_read_seq",
            chat,
            b,
        )
    assert other == "UPDATE 0"
    assert own == 3  # clamped to the newest message
    assert back == 3  # and never moves backwards


async def test_content_and_title_limits_are_enforced_by_the_database(db: Db) -> None:
    a = await db.new_user("A")
    chat = await db.new_chat(a)
    await db.post(a, chat, "x" * 8000)
    for bad in ("", "   \n\t", "x" * 8001):
        with pytest.raises(asyncpg.CheckViolationError):
            await db.post(a, chat, bad)
    for title in ("", "  ", "t" * 201):
        with pytest.raises(asyncpg.CheckViolationError):
            async with db.as_user(a) as conn:
                await conn.execute("insert into public.chat_sessions (id, title) values ($1, $2)", uuid.uuid4(), title)
    with pytest.raises(asyncpg.CheckViolationError):
        async with db.as_user(a) as conn:
            await conn.execute("update public.profiles set display_name = ' ' where id = $1", a)


@pytest.mark.parametrize("role", ["anon", "authenticated", "service_role"])
async def test_no_client_role_reads_or_writes_the_audit_trail(db: Db, role: str) -> None:
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with db.as_user(ALICE, role=role) as conn:
            await conn.fetch("select * from audit.events")
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with db.as_user(ALICE, role=role) as conn:
            await conn.execute("insert into audit.events (action) values ('forged')")


async def test_the_audit_trail_records_membership_deletions_and_edits(db: Db) -> None:
    owner, member = await db.new_user("Owner"), await db.new_user("Member")
    chat = await db.new_chat(owner, member)
    message = await db.post(owner, chat, "draft")
    async with db.as_user(owner) as conn:
        await conn.execute("update public.chat_messages set content = 'final' where id = $1", message["id"])
        await conn.execute("update public.chat_messages set deleted_at = now() where id = $1", message["id"])
        await conn.execute("delete from public.chat_members where session_id = $1 and user_id = $2", chat, member)
        await conn.execute("update public.chat_sessions set deleted_at = now() where id = $1", chat)
    rows = await db.pool.fetch(
        "select action, actor_id, target_id from audit.events where session_id = $1 order by id", chat
    )
    assert [row["action"] for row in rows] == [
        "member.added",  # the owner, by the creation trigger
        "member.added",
        "message.edited",
        "message.deleted",
        "member.removed",
        "chat.deleted",
    ]
    assert all(row["actor_id"] == owner for row in rows)
