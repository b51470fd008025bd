"""The change capture against a real PostgreSQL: commits it reads before they are visible are not lost.

A transaction's commit record is in the WAL (and decodable) a moment before the transaction is visible
to other sessions: its backend leaves the running set just after writing the record. A change read in
that moment and checked against row level security at once looks invisible to every subscriber. Under
load the moment is microseconds (the 1-in-2,000 push lost under 20 writers); a synchronous standby that
never answers stretches it at will: the commit is written and flushed, and then waits for the standby.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from realtime import RealtimePostgresChangesListenEvent as Event

from devstack.gateway.realtime.changes import SNAPSHOT_SQL
from tests.integration.realtime.conftest import Db, Inbox, Realtime, subscribe

pytestmark = pytest.mark.integration


@pytest.fixture
async def notes(db: Db) -> AsyncIterator[str]:
    """A published table with row level security that lets every signed-in user read every row."""
    table = f"public.rt_notes_{uuid.uuid4().hex[:8]}"
    await db.pool.execute(
        f"""
        create table {table} (id uuid primary key, body text not null);
        alter table {table} enable row level security;
        create policy readable on {table} for select to authenticated using (true);
        grant select on {table} to authenticated;
        create table {table}_probe (id bigint generated always as identity primary key);
        alter publication supabase_realtime add table {table};
        """
    )
    try:
        yield table
    finally:
        await db.pool.execute(f"alter publication supabase_realtime drop table {table}")
        await db.pool.execute(f"drop table {table}, {table}_probe")


async def capture_read_past(db: Db, lsn: str) -> None:
    """Wait until the gateway's capture has read its slot past ``lsn``: it is waiting for a transaction
    read there to become visible (polling snapshots), or it has moved its slot past it."""
    async with asyncio.timeout(30):
        while True:
            done = await db.pool.fetchval(
                "select exists (select from pg_stat_activity where application_name = 'devstack realtime'"
                "                and query = $2)"
                " or exists (select from pg_replication_slots where slot_name like 'devstack\\_realtime\\_%'"
                "            and confirmed_flush_lsn >= $1::text::pg_lsn)",
                lsn,
                SNAPSHOT_SQL,
            )
            if done:
                return
            await asyncio.sleep(0.05)


async def in_sync_rep_wait(db: Db, pid: int, commit: asyncio.Task[None]) -> bool:
    """Whether backend ``pid`` reaches the wait for the standby before ``commit`` finishes."""
    while not commit.done():
        if await db.pool.fetchval("select wait_event from pg_stat_activity where pid = $1", pid) == "SyncRep":
            return True
        await asyncio.sleep(0.02)
    await commit
    return False


async def standby_required(db: Db, url: str, probe: str) -> None:
    """Wait until commits wait for the standby.

    ``pg_reload_conf`` only signals: a commit waits for a synchronous standby once the checkpointer has
    read the new setting, which on a loaded machine can be well after the reload returns. Commit probe
    rows (in a table no subscriber sees) until one waits, then release it.
    """
    conn = await asyncpg.connect(url)
    try:
        pid = await conn.fetchval("select pg_backend_pid()")

        async def commit_a_probe() -> None:
            async with conn.transaction():
                await conn.execute("set local synchronous_commit = on")
                await conn.execute(f"insert into {probe} default values")

        async with asyncio.timeout(30):
            while True:
                commit = asyncio.create_task(commit_a_probe())
                if await in_sync_rep_wait(db, pid, commit):
                    await db.pool.execute("select pg_cancel_backend($1)", pid)
                    await commit
                    return
                await asyncio.sleep(0.05)
    finally:
        await conn.close()


async def test_a_change_read_before_its_commit_is_visible_is_still_pushed(rt: Realtime, db: Db, notes: str) -> None:
    user = await db.new_user("reader")
    client = await rt.client(user)
    inbox = Inbox()
    await subscribe(client.channel("notes").on_postgres_changes(Event.Insert, inbox, table=notes.split(".")[1]))

    writer = await asyncpg.connect(rt.stack.db_url)
    try:
        await db.pool.execute("alter system set synchronous_standby_names = 'devstack_test_standby_that_never_answers'")
        await db.pool.execute("select pg_reload_conf()")
        await standby_required(db, rt.stack.db_url, f"{notes}_probe")
        writer_pid = await writer.fetchval("select pg_backend_pid()")
        note = uuid.uuid4()

        async def commit_held_by_the_standby() -> None:
            async with writer.transaction():
                await writer.execute("set local synchronous_commit = on")
                await writer.execute(f"insert into {notes} (id, body) values ($1, 'held')", note)

        held = asyncio.create_task(commit_held_by_the_standby())
        async with asyncio.timeout(30):
            assert await in_sync_rep_wait(db, writer_pid, held), "the commit did not wait for the standby"
        # The commit is flushed and waits for the standby: in the WAL, not yet visible.
        assert await db.pool.fetchval(f"select count(*) from {notes}") == 0
        await capture_read_past(db, await db.pool.fetchval("select pg_current_wal_flush_lsn()::text"))

        # Cancelling the wait leaves the transaction committed (with a warning); now it is visible.
        await db.pool.execute("select pg_cancel_backend($1)", writer_pid)
        await held
        assert await db.pool.fetchval(f"select count(*) from {notes}") == 1
    finally:
        await db.pool.execute("alter system reset synchronous_standby_names")
        await db.pool.execute("select pg_reload_conf()")
        await writer.close()
    payload = await inbox.next()
    assert payload["data"]["record"] == {"id": str(note), "body": "held"}
