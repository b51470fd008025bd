"""plan → run → verify on a dirty legacy store, into a hosted-like database, as its non-superuser owner."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import asyncpg
import pytest

from chat_migrate import ids
from chat_migrate.errors import MigrateError
from chat_migrate.migrate import Options, plan, run
from chat_migrate.progress import Reporter
from chat_migrate.verify import verify
from tests.integration.migrate.conftest import Legacy, emails_csv
from tests.legacy.dirt import DOMAIN, T0, DirtyStore
from tests.legacy.hosted import HostedDb, table_fingerprint

pytestmark = pytest.mark.integration


def options(legacy: Legacy, db: HostedDb, tmp_path: Path, **extra: object) -> Options:
    csv = emails_csv(tmp_path, {"dave": f"dave.two@{DOMAIN}"})
    values: dict[str, object] = {"email_domain": DOMAIN, "emails_file": csv, "batch_size": 7}
    values.update(extra)
    return Options(legacy.url, db.url, **values)  # type: ignore[arg-type]


async def fingerprint(db: HostedDb) -> dict[str, tuple[int, str]]:
    return await table_fingerprint(db.admin_url, ("public", "auth"))


async def test_plan_counts_and_writes_nothing(
    legacy: Legacy, dirty: DirtyStore, hosted: HostedDb, quiet: Reporter, tmp_path: Path
) -> None:
    before = await fingerprint(hosted)
    summary, ready = await plan(Options(legacy.url, hosted.url, email_domain=DOMAIN), quiet)
    assert not ready  # Dave and dave would share an address
    assert len(summary["blockers"]) == 2 and all("dave@legacy.example" in b for b in summary["blockers"])
    counts = {category: item["count"] for category, item in summary["quarantine"].items()}
    assert counts == {**dirty.quarantine, "room_without_members": 1}
    assert summary["quarantine"]["not_json"]["examples"][0]["room"] == "0"
    assert summary["would_create"]["chats"] == 4  # general, alice & bob, alice & ghost, book club
    assert summary["would_create"]["messages"] == sum(len(texts) for texts in dirty.texts.values())
    assert summary["notes"]["dates_taken_from_the_score"] == 1

    summary, ready = await plan(options(legacy, hosted, tmp_path), quiet)
    assert ready and summary["blockers"] == []
    # The two messages of the user whose hash is gone (blocked users above had no account either).
    assert summary["notes"]["messages_from_users_who_are_gone"] == 2
    assert summary["would_create"]["users"] == 6  # the gone user has no account
    assert await fingerprint(hosted) == before
    conn = await asyncpg.connect(hosted.admin_url)
    try:
        assert not await conn.fetchval("select exists (select from pg_namespace where nspname = 'chat_migrate')")
    finally:
        await conn.close()


async def test_run_refuses_blocked_users_before_writing(
    legacy: Legacy, dirty: DirtyStore, hosted: HostedDb, quiet: Reporter
) -> None:
    before = await fingerprint(hosted)
    with pytest.raises(MigrateError, match="no usable e-mail address"):
        await run(Options(legacy.url, hosted.url, email_domain=DOMAIN), quiet)
    assert await fingerprint(hosted) == before


async def test_run_migrates_the_dirty_store_exactly(
    legacy: Legacy, dirty: DirtyStore, hosted: HostedDb, quiet: Reporter, tmp_path: Path
) -> None:
    conn = await asyncpg.connect(hosted.admin_url)
    try:
        audit_before = dict(await conn.fetch("select action, count(*) from audit.events group by action"))
        broadcasts_before = [row["id"] for row in await conn.fetch("select id from realtime.messages")]
    finally:
        await conn.close()
    summary = await run(options(legacy, hosted, tmp_path), quiet)
    assert summary["created"]["users"] == 6 and summary["created"]["chats"] == 4
    assert summary["quarantined_messages"] == sum(dirty.quarantine.values())  # incl. the orphan room's one

    conn = await asyncpg.connect(hosted.admin_url)
    try:
        assert await conn.fetchval("select rolsuper from pg_roles where rolname = 'chat_migrator'") is False
        people = {
            row["email"]: row["id"]
            for row in await conn.fetch("select id, email from auth.users where email like '%legacy.example'")
        }
        assert set(people) == {f"{n}@{DOMAIN}" for n in ("alice", "bob", "carol", "dave", "dave.two", "nopass")}
        assert people[f"alice@{DOMAIN}"] == ids.user_id(dirty.users["alice"])
        # The legacy bcrypt hash is carried over as it is; the user without one gets no password.
        hashes = dict(
            await conn.fetch("select email, encrypted_password from auth.users where email like '%legacy.example'")
        )
        assert hashes[f"alice@{DOMAIN}"].startswith("$2b$10$")
        assert legacy.client.hget(f"user:{dirty.users['alice']}", "password").decode() == hashes[f"alice@{DOMAIN}"]
        assert hashes[f"nopass@{DOMAIN}"] == ""
        identities = await conn.fetch(
            "select provider, user_id, identity_data from auth.identities where user_id = any($1::uuid[])",
            list(people.values()),
        )
        assert len(identities) == 6 and {row["provider"] for row in identities} == {"email"}
        names = dict(
            await conn.fetch(
                "select id, display_name from public.profiles where id = any($1::uuid[])", list(people.values())
            )
        )
        assert names[people[f"dave.two@{DOMAIN}"]] == "dave" and names[people[f"dave@{DOMAIN}"]] == "Dave"

        for room, texts in dirty.texts.items():
            rows = await conn.fetch(
                "select content, seq, rev, sender_id, created_at from public.chat_messages"
                " where session_id = $1 order by seq",
                ids.chat_id(room),
            )
            assert [row["content"] for row in rows] == texts, room
            assert [row["seq"] for row in rows] == list(range(1, len(texts) + 1))
            assert [row["rev"] for row in rows] == [row["seq"] for row in rows]
            chat = await conn.fetchrow("select * from public.chat_sessions where id = $1", ids.chat_id(room))
            assert chat["last_seq"] == chat["last_rev"] == len(texts)
            assert chat["last_message_at"] == rows[-1]["created_at"]
            members = await conn.fetch(
                "select user_id, role, last_read_seq from public.chat_members where session_id = $1", ids.chat_id(room)
            )
            assert {m["last_read_seq"] for m in members} == {len(texts)}
            assert chat["created_by"] in {m["user_id"] for m in members if m["role"] == "owner"}

        general = await conn.fetch(
            "select sender_id, created_at, content from public.chat_messages where session_id = $1 order by seq",
            ids.chat_id("0"),
        )
        by_text = {row["content"]: row for row in general}
        assert by_text["a message from someone who left"]["sender_id"] is None
        assert by_text["typed &lt; literally, and &copy; too"]["sender_id"] == people[f"bob@{DOMAIN}"]
        assert by_text["fractional date"]["created_at"] == dt.datetime.fromtimestamp(T0 + 20.25, dt.UTC)
        assert by_text["no date at all"]["created_at"] == dt.datetime.fromtimestamp(T0 + 80, dt.UTC)
        titles = dict(
            await conn.fetch(
                "select id, title from public.chat_sessions where id = any($1::uuid[])",
                [ids.chat_id(r) for r in dirty.texts],
            )
        )
        assert titles[ids.chat_id("0")] == "General"
        assert titles[ids.chat_id(dirty.rooms["alice_bob"])] == "alice & bob"
        assert titles[ids.chat_id(dirty.rooms["alice_ghost"])] == f"alice & deleted user {dirty.gone_user}"
        assert titles[ids.chat_id("5")] == "Book club"
        book = {
            r["user_id"]: r["role"]
            for r in await conn.fetch(
                "select user_id, role from public.chat_members where session_id = $1", ids.chat_id("5")
            )
        }
        # carol and Dave are listed; dave posted without being listed, and is a member too.
        assert book == {
            people[f"carol@{DOMAIN}"]: "owner",
            people[f"dave@{DOMAIN}"]: "member",
            people[f"dave.two@{DOMAIN}"]: "member",
        }
        private = {
            r["role"]
            for r in await conn.fetch(
                "select role from public.chat_members where session_id = $1", ids.chat_id(dirty.rooms["alice_bob"])
            )
        }
        assert private == {"owner"}
        assert not await conn.fetchval(
            "select exists (select from public.chat_sessions where id = $1)", ids.chat_id("998:999")
        )

        # One audit event per chat, none per membership; the triggers are on again.
        audit_after = dict(await conn.fetch("select action, count(*) from audit.events group by action"))
        assert audit_after == {**audit_before, "chat.migrated": 4}
        # Realtime: each new member hears about their chat (on the chat's and their own topic); history is
        # not announced message by message.
        events = dict(
            await conn.fetch(
                "select event, count(*) from realtime.messages where id <> all($1::uuid[]) group by 1",
                broadcasts_before,
            )
        )
        memberships = await conn.fetchval("select count(*) from chat_migrate.members")
        assert events == {"member": 2 * memberships}
        disabled = await conn.fetchval("select count(*) from pg_trigger where tgenabled = 'D'")
        assert disabled == 0
        # Every migrated membership has its chat-list row, sorted by the chat's last message and counting
        # the member's own messages above their read position, as the live triggers would have kept it.
        inbox = await conn.fetch(
            """
            select i.activity_at = coalesce(s.last_message_at, s.created_at) as sorted,
                   i.own_unread = (select count(*) from public.chat_messages x
                                    where x.session_id = m.session_id and x.sender_id = m.user_id
                                      and x.seq > m.last_read_seq) as counted
              from chat_migrate.members g
              join public.chat_members m using (session_id, user_id)
              join public.chat_sessions s on s.id = m.session_id
              left join public.chat_inbox i using (session_id, user_id)
            """
        )
        assert len(inbox) == memberships and all(row["sorted"] and row["counted"] for row in inbox)
        quarantined = dict(await conn.fetch("select category, count(*) from chat_migrate.quarantine group by 1"))
        assert quarantined == dirty.quarantine
    finally:
        await conn.close()

    result, ok = await verify(legacy.url, hosted.url, None, 20, quiet)
    assert ok, result["first_differences"]
    assert result["messages"]["legacy"] == result["messages"]["supabase"] == sum(len(t) for t in dirty.texts.values())


async def test_a_second_run_adds_nothing(
    legacy: Legacy, dirty: DirtyStore, hosted: HostedDb, quiet: Reporter, tmp_path: Path
) -> None:
    await run(options(legacy, hosted, tmp_path), quiet)
    before = await fingerprint(hosted)
    quarantined = "select count(*) from chat_migrate.quarantine"
    conn = await asyncpg.connect(hosted.admin_url)
    try:
        quarantine_before = await conn.fetchval(quarantined)
        again = await run(options(legacy, hosted, tmp_path), quiet)
        # The room nobody could see is not looked at again either (nor quarantined twice).
        assert await conn.fetchval(quarantined) == quarantine_before
    finally:
        await conn.close()
    assert again["created"] == {"users": 0, "profiles": 0, "chats": 0, "memberships": 0, "messages": 0}
    assert again["already_migrated"] == {"users": 6, "rooms": 4}
    assert await fingerprint(hosted) == before


async def test_bookkeeping_is_closed_to_every_api_role(
    legacy: Legacy, dirty: DirtyStore, hosted: HostedDb, quiet: Reporter, tmp_path: Path
) -> None:
    await run(options(legacy, hosted, tmp_path), quiet)
    conn = await asyncpg.connect(hosted.admin_url)
    try:
        for role in ("anon", "authenticated", "service_role"):
            async with conn.transaction():
                await conn.execute(f"set local role {role}")
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await conn.fetch("select * from chat_migrate.users")
    finally:
        await conn.close()


async def test_a_user_whose_address_exists_is_linked_not_duplicated(
    legacy: Legacy, dirty: DirtyStore, hosted: HostedDb, quiet: Reporter, tmp_path: Path
) -> None:
    csv = emails_csv(tmp_path, {"dave": f"dave.two@{DOMAIN}", "carol": "Carol@Example.COM"})
    summary, ready = await plan(Options(legacy.url, hosted.url, email_domain=DOMAIN, emails_file=csv), quiet)
    assert ready and summary["linked_to_existing_supabase_users"][0]["email"] == "carol@example.com"
    account = "select u::text from auth.users u where lower(email) = 'carol@example.com'"
    conn = await asyncpg.connect(hosted.admin_url)
    try:
        before = await conn.fetch(account)
    finally:
        await conn.close()
    result = await run(Options(legacy.url, hosted.url, email_domain=DOMAIN, emails_file=csv), quiet)
    assert result["linked_users"] == 1 and result["created"]["users"] == 5
    conn = await asyncpg.connect(hosted.admin_url)
    try:
        assert await conn.fetch(account) == before  # one account, not a byte of it changed
        carol = await conn.fetchrow("select id from auth.users where lower(email) = 'carol@example.com'")
        assert await conn.fetchval("select display_name from public.profiles where id = $1", carol["id"]) == "Carol"
        members = await conn.fetch("select session_id from public.chat_members where user_id = $1", carol["id"])
        assert ids.chat_id("5") in {row["session_id"] for row in members}
    finally:
        await conn.close()
    result, ok = await verify(legacy.url, hosted.url, None, 20, quiet)
    assert ok, result["first_differences"]
