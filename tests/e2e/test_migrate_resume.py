"""chat-migrate killed with SIGKILL at several points of a run, then run again: nothing lost, nothing doubled.

Each load transaction commits a batch of rooms together with its bookkeeping, and the triggers it
switches off are switched off inside that transaction only; so after every kill the database must hold
whole rooms only, with their counters right and every trigger enabled, and the next run must resume the
same run id and finish exactly the rest.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time

import asyncpg
import pytest

from chat_migrate.progress import Reporter
from chat_migrate.verify import verify
from devstack.config import REPO_ROOT
from tests.conftest import StackHandle
from tests.legacy.generate import generate
from tests.legacy.hosted import hosted_database
from tests.legacy.server import legacy_redis

pytestmark = pytest.mark.integration

ROOMS = 300
SEED = 3  # supabase/seed.sql's chats and users


def start(redis_url: str, db_url: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "chat_migrate",
            "run",
            "--email-domain",
            "legacy.example",
            "--batch-size",
            "700",
            "--json",
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "CHAT_MIGRATE_REDIS_URL": redis_url, "CHAT_MIGRATE_DB_URL": db_url},
    )


async def wait_then_kill(process: subprocess.Popen[str], conn: asyncpg.Connection, query: str, threshold: int) -> None:
    deadline = time.monotonic() + 120
    while process.poll() is None and time.monotonic() < deadline:
        try:
            if (await conn.fetchval(query) or 0) >= threshold:
                break
        except asyncpg.UndefinedTableError:
            pass  # the bookkeeping schema is not there yet
        await asyncio.sleep(0.01)
    assert process.poll() is None, (
        f"the run finished before the kill: {process.stderr.read() if process.stderr else ''}"
    )
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=30)


async def check_whole_rooms(conn: asyncpg.Connection) -> int:
    """Every chat in the database is a recorded, complete room; the triggers are all on. Returns the count."""
    assert await conn.fetchval("select count(*) from pg_trigger where tgenabled = 'D'") == 0
    rows = await conn.fetch(
        "select c.session_id, c.messages, s.last_seq, (select count(*) from public.chat_messages m"
        "  where m.session_id = c.session_id) as n"
        " from chat_migrate.chats c join public.chat_sessions s on s.id = c.session_id"
    )
    for row in rows:
        assert row["n"] == row["messages"] == row["last_seq"]
    # Nothing unrecorded: the only chats and users the bookkeeping does not know are the seed's three.
    unrecorded_chats = await conn.fetchval(
        "select count(*) from public.chat_sessions where id not in (select session_id from chat_migrate.chats)"
    )
    unrecorded_users = await conn.fetchval(
        "select count(*) from auth.users where id not in (select user_id from chat_migrate.users)"
    )
    assert (unrecorded_chats, unrecorded_users) == (SEED, SEED)
    return len(rows)


async def test_sigkill_at_any_point_then_resume(stack: StackHandle) -> None:
    with legacy_redis() as server:
        generate(server.client(), users=60, rooms=ROOMS, messages=60_000, seed=7)
        async with hosted_database(stack.db_url) as db:
            conn = await asyncpg.connect(db.admin_url)
            try:
                # 1: as soon as the run is registered (users being created, or the first batch loading).
                first = start(server.url, db.url)
                await wait_then_kill(first, conn, "select count(*) from chat_migrate.runs", 1)
                done_1 = await check_whole_rooms(conn)
                # 2 and 3: in the middle of loading rooms.
                second = start(server.url, db.url)
                await wait_then_kill(second, conn, "select count(*) from chat_migrate.chats", max(done_1 + 1, 60))
                done_2 = await check_whole_rooms(conn)
                third = start(server.url, db.url)
                await wait_then_kill(third, conn, "select count(*) from chat_migrate.chats", max(done_2 + 1, 180))
                done_3 = await check_whole_rooms(conn)
                assert done_1 <= done_2 < done_3 < ROOMS
                assert await conn.fetchval("select count(*) from chat_migrate.runs") == 1
                assert await conn.fetchval("select status from chat_migrate.runs") == "running"

                last = start(server.url, db.url)
                out, err = last.communicate(timeout=300)
                assert last.returncode == 0, err
                summary = json.loads(out)
                assert summary["run"] == 1 and summary["resumed"] is True
                assert summary["created"]["chats"] == ROOMS - done_3
                assert await check_whole_rooms(conn) == ROOMS
                assert await conn.fetchval("select status from chat_migrate.runs") == "done"
                total = await conn.fetchval(
                    "select count(*) from public.chat_messages m join chat_migrate.chats c using (session_id)"
                )
                assert total == 60_000  # every legacy message once: the generator writes no dirt
            finally:
                await conn.close()
            result, ok = await verify(server.url, db.url, None, 20, Reporter(quiet=True))
            assert ok, result["first_differences"]
