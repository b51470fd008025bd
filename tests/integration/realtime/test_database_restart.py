"""PostgreSQL restarts (cleanly or after a crash) under a stream of inserts: every committed change is pushed.

The capture's replication slot is persistent: it survives the restart with its position, and the
capture resumes from it once the database answers again, so changes committed just before the
restart, and those whose permission checks the restart interrupted, are pushed late rather than lost.
Each test runs on a stack of its own, since it takes the database away from everything else.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest
from realtime import RealtimePostgresChangesListenEvent as Event
from realtime import RealtimeSubscribeStates as State
from supabase import AsyncClientOptions, acreate_client

from devstack.gateway.jwt import issue_access_token
from devstack.procs import run_as_service_user
from devstack.throwaway import throwaway_stack
from devstack.tools import pg_tool
from tests.conftest import StackHandle
from tests.integration.realtime.conftest import Inbox, Statuses

pytestmark = pytest.mark.integration

WRITE_PERIOD = 0.02
RESTART_AFTER = 1.0
WRITE_AFTER_RESTART = 2.0
DELIVERY_TIMEOUT = 60.0


@pytest.fixture(scope="module")
def own_stack() -> Iterator[StackHandle]:
    with throwaway_stack() as (stack, info):
        yield StackHandle(stack, info)


def restart_postgres(stack: StackHandle, mode: str) -> None:
    """Stop PostgreSQL (``fast``: a clean shutdown; ``immediate``: as if it crashed) and start it again."""
    postgres = stack.stack.postgres
    run_as_service_user(
        [pg_tool("pg_ctl"), "--pgdata", str(stack.config.pg_data), f"--mode={mode}", "--wait", "stop"], timeout=90
    )
    assert not postgres.running()
    postgres.start()


class Writer:
    """Inserts one message every ``WRITE_PERIOD`` as a chat member (through RLS), reconnecting as needed.

    ``committed`` holds the ids whose COMMIT returned; an insert whose connection broke may or may not
    have committed, so the truth is read back from the database at the end.
    """

    def __init__(self, db_url: str, user: uuid.UUID, chat: uuid.UUID) -> None:
        self.db_url = db_url
        self.claims = json.dumps({"sub": str(user), "role": "authenticated"})
        self.chat = chat
        self.committed: list[uuid.UUID] = []
        self.failures = 0
        self.stop = asyncio.Event()

    async def run(self) -> None:
        conn: asyncpg.Connection | None = None
        try:
            while not self.stop.is_set():
                try:
                    if conn is None or conn.is_closed():
                        conn = await asyncpg.connect(self.db_url)
                    message = uuid.uuid4()
                    async with conn.transaction():
                        await conn.execute(
                            "select set_config('role', 'authenticated', true),"
                            " set_config('request.jwt.claims', $1, true)",
                            self.claims,
                        )
                        await conn.execute(
                            "insert into public.chat_messages (id, session_id, content) values ($1, $2, 'stream')",
                            message,
                            self.chat,
                        )
                    self.committed.append(message)
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError):
                    self.failures += 1
                    conn = None
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stop.wait(), WRITE_PERIOD)
        finally:
            if conn is not None and not conn.is_closed():
                await conn.close()


async def setup_chat(db_url: str) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID]:
    alice, bob, chat = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    conn = await asyncpg.connect(db_url)
    try:
        for user in (alice, bob):
            await conn.execute(
                "insert into auth.users (id, aud, role, email) values ($1, 'authenticated', 'authenticated', $2)",
                user,
                f"{user.hex[:12]}@example.com",
            )
        await conn.execute(
            "insert into public.chat_sessions (id, title, created_by) values ($1, 'restart', $2)", chat, alice
        )
        await conn.execute("insert into public.chat_members (session_id, user_id) values ($1, $2)", chat, bob)
    finally:
        await conn.close()
    return alice, bob, chat


async def stored(db_url: str, chat: uuid.UUID) -> set[str]:
    conn = await asyncpg.connect(db_url)
    try:
        rows = await conn.fetch("select id from public.chat_messages where session_id = $1", chat)
    finally:
        await conn.close()
    return {str(row["id"]) for row in rows}


@pytest.mark.parametrize("mode", ["fast", "immediate"], ids=["clean-restart", "crash-restart"])
async def test_changes_committed_around_a_restart_are_all_pushed(own_stack: StackHandle, mode: str) -> None:
    alice, bob, chat = await setup_chat(own_stack.db_url)
    client = await acreate_client(own_stack.api_url, own_stack.anon_key, AsyncClientOptions(auto_refresh_token=False))
    token, _ = issue_access_token(
        str(own_stack.info["jwt_secret"]), user_id=bob, email=None, session_id=uuid.uuid4(), ttl=3600
    )
    await client.realtime.set_auth(token)
    pushed: set[str] = set()
    arrived = Inbox()

    def on_insert(payload: dict[str, Any]) -> None:
        pushed.add(payload["data"]["record"]["id"])
        arrived(payload)

    statuses = Statuses()
    channel = client.channel(f"restart-{mode}").on_postgres_changes(
        Event.Insert, on_insert, table="chat_messages", filter=f"session_id=eq.{chat}"
    )
    await channel.subscribe(statuses)
    assert (await statuses.next())[0] == State.SUBSCRIBED
    writer = Writer(own_stack.db_url, alice, chat)
    writing = asyncio.create_task(writer.run())
    try:
        await asyncio.sleep(RESTART_AFTER)
        await asyncio.to_thread(restart_postgres, own_stack, mode)
        await asyncio.sleep(WRITE_AFTER_RESTART)
    finally:
        writer.stop.set()
        await writing
    truth = await stored(own_stack.db_url, chat)
    assert writer.failures > 0  # the stream did run into the restart
    assert {str(message) for message in writer.committed} <= truth
    try:
        with contextlib.suppress(TimeoutError):  # what never came is counted below
            async with asyncio.timeout(DELIVERY_TIMEOUT):
                while not truth <= pushed:
                    await arrived.next(DELIVERY_TIMEOUT)
    finally:
        await client.realtime.remove_all_channels()
    assert truth <= pushed, f"{len(truth - pushed)} of {len(truth)} committed messages never pushed"
    # Resumed without a gap: the subscriber was never told to rejoin.
    assert all(status == State.SUBSCRIBED for status, _ in statuses.items), statuses.items


async def drop_the_capture_slot(db_url: str, *, disconnect: bool) -> None:
    """Drop the capture's slot (after cutting its connection, or under it): changes may be missed now."""
    conn = await asyncpg.connect(db_url)
    try:
        slot = await conn.fetchval(
            "select slot_name from pg_replication_slots where slot_name like 'devstack\\_realtime\\_%'"
        )
        if disconnect:
            await conn.execute(
                "select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'devstack realtime'"
            )
        async with asyncio.timeout(30):
            while True:
                try:
                    await conn.execute("select pg_drop_replication_slot($1)", slot)
                    return
                except asyncpg.ObjectInUseError:  # being read right now, or let go of by a terminated backend
                    await asyncio.sleep(0.001)
    finally:
        await conn.close()


@pytest.mark.parametrize("disconnect", [True, False], ids=["while-disconnected", "while-connected"])
async def test_a_lost_slot_tells_subscribers_to_rejoin(own_stack: StackHandle, disconnect: bool) -> None:
    alice, bob, chat = await setup_chat(own_stack.db_url)
    client = await acreate_client(own_stack.api_url, own_stack.anon_key, AsyncClientOptions(auto_refresh_token=False))
    token, _ = issue_access_token(
        str(own_stack.info["jwt_secret"]), user_id=bob, email=None, session_id=uuid.uuid4(), ttl=3600
    )
    await client.realtime.set_auth(token)
    arrived = Inbox()
    statuses = Statuses()
    channel = client.channel("lost-slot").on_postgres_changes(
        Event.Insert, arrived, table="chat_messages", filter=f"session_id=eq.{chat}"
    )
    await channel.subscribe(statuses)
    try:
        assert (await statuses.next())[0] == State.SUBSCRIBED
        await drop_the_capture_slot(own_stack.db_url, disconnect=disconnect)
        status, error = await statuses.next(DELIVERY_TIMEOUT)
        assert status == State.CHANNEL_ERROR and "lost its replication slot" in str(error)
        await statuses.wait_for(State.SUBSCRIBED, DELIVERY_TIMEOUT)  # the client rejoined (and would back-fill)
        writer = Writer(own_stack.db_url, alice, chat)
        writing = asyncio.create_task(writer.run())
        first = await arrived.next(DELIVERY_TIMEOUT)
        writer.stop.set()
        await writing
        message = writer.committed[0]
        assert first["data"]["record"]["id"] == str(message)
    finally:
        await client.realtime.remove_all_channels()
