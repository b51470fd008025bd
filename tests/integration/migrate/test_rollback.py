"""rollback removes exactly what a run created and leaves every public (and auth) table as it was."""

from __future__ import annotations

import uuid
from pathlib import Path

import asyncpg
import pytest

from chat_migrate import ids
from chat_migrate.errors import MigrateError
from chat_migrate.migrate import Options, run
from chat_migrate.progress import Reporter
from chat_migrate.rollback import rollback
from tests.integration.migrate.conftest import Legacy, emails_csv
from tests.legacy.dirt import DOMAIN, DirtyStore
from tests.legacy.hosted import HostedDb, table_fingerprint

pytestmark = pytest.mark.integration


def options(legacy: Legacy, db: HostedDb, tmp_path: Path) -> Options:
    # carol is linked to the seed's existing account, which rollback must leave alone.
    csv = emails_csv(tmp_path, {"dave": f"dave.two@{DOMAIN}", "carol": "carol@example.com"})
    return Options(legacy.url, db.url, email_domain=DOMAIN, emails_file=csv, batch_size=5)


async def state(db: HostedDb) -> dict[str, tuple[int, str]]:
    """Row counts and checksums of every public table and of GoTrue's users and identities."""
    tables = await table_fingerprint(db.admin_url, ("public", "auth"))
    return {
        name: value
        for name, value in tables.items()
        if name.startswith("public.") or name in ("auth.users", "auth.identities")
    }


async def test_rollback_leaves_the_database_as_before(
    legacy: Legacy, dirty: DirtyStore, hosted: HostedDb, quiet: Reporter, tmp_path: Path
) -> None:
    before = await state(hosted)
    summary = await run(options(legacy, hosted, tmp_path), quiet)
    assert await state(hosted) != before
    result = await rollback(hosted.url, summary["run"], False, quiet)
    assert result["removed"]["chats"] == 4 and result["removed"]["users"] == 5
    assert await state(hosted) == before
    conn = await asyncpg.connect(hosted.admin_url)
    try:
        assert (
            await conn.fetchval("select status from chat_migrate.runs where id = $1", summary["run"]) == "rolled_back"
        )
        assert await conn.fetchval("select count(*) from chat_migrate.chats") == 0
        events = dict(await conn.fetch("select action, count(*) from audit.events group by 1"))
        assert events["chat.migrated"] == events["chat.migration_rolled_back"] == 4
        assert "message.purged" not in events and "member.removed" not in events
        assert await conn.fetchval("select count(*) from pg_trigger where tgenabled = 'D'") == 0
    finally:
        await conn.close()

    # And the store can be migrated again afterwards, from scratch.
    again = await run(options(legacy, hosted, tmp_path), quiet)
    assert again["created"]["chats"] == 4 and again["run"] != summary["run"]


async def test_rollback_refuses_after_people_posted_unless_forced(
    legacy: Legacy, dirty: DirtyStore, hosted: HostedDb, quiet: Reporter, tmp_path: Path
) -> None:
    before = await state(hosted)
    summary = await run(options(legacy, hosted, tmp_path), quiet)
    alice = ids.user_id(dirty.users["alice"])
    conn = await asyncpg.connect(hosted.admin_url)
    try:
        async with conn.transaction():  # alice posts in General through RLS, as the app would
            await conn.execute(
                "select set_config('role', 'authenticated', true),"
                " set_config('request.jwt.claims',"
                "            json_build_object('sub', $1::text, 'role', 'authenticated')::text, true)",
                str(alice),
            )
            await conn.execute(
                "insert into public.chat_messages (id, session_id, content) values ($1, $2, 'after the move')",
                uuid.uuid4(),
                ids.chat_id("0"),
            )
    finally:
        await conn.close()
    with pytest.raises(MigrateError, match="1 posted in migrated chats"):
        await rollback(hosted.url, summary["run"], False, quiet)
    assert await state(hosted) != before  # nothing was removed
    result = await rollback(hosted.url, summary["run"], True, quiet)
    assert result["forced"] and result["used_since"] == {"posted_in_migrated_chats": 1}
    assert await state(hosted) == before


async def test_runs_are_rolled_back_newest_first(
    legacy: Legacy, dirty: DirtyStore, hosted: HostedDb, quiet: Reporter, tmp_path: Path
) -> None:
    first = await run(options(legacy, hosted, tmp_path), quiet)
    legacy.writer.send("7", dirty.users["bob"], "a room that appeared later", 1_800_000_000)
    legacy.writer.name_room("7", "Later")
    second = await run(options(legacy, hosted, tmp_path), quiet)
    assert second["created"]["chats"] == 1
    with pytest.raises(MigrateError, match=f"run {second['run']} came after run {first['run']}"):
        await rollback(hosted.url, first["run"], False, quiet)
    await rollback(hosted.url, second["run"], False, quiet)
    await rollback(hosted.url, first["run"], False, quiet)
    with pytest.raises(MigrateError, match="already been rolled back"):
        await rollback(hosted.url, first["run"], False, quiet)
