"""A restarted or crashed gateway: sockets are told (1001) or dropped, clients rejoin and receive again.

These tests restart the session's shared gateway; each leaves it running and serving.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest
import websockets
from realtime import RealtimePostgresChangesListenEvent as Event
from realtime import RealtimeSubscribeStates as State

from devstack.procs import cmdline, pid_alive
from tests.conftest import StackHandle
from tests.integration.realtime.conftest import ALICE, BOB, Db, Inbox, Realtime, record_id, subscribe

pytestmark = pytest.mark.integration

REJOIN_TIMEOUT = 30.0  # the client retries after 1, 2, 4 and 8 s


def server_child(stack: StackHandle) -> int:
    """The pid of the gateway server process under the supervisor."""
    supervisor = stack.stack.gateway.pid()
    assert supervisor is not None
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if parent == supervisor and "devstack.gateway.server" in " ".join(cmdline(int(entry.name))):
            return int(entry.name)
    raise AssertionError("no gateway server process under the supervisor")


async def realtime_slots(db: Db) -> list[str]:
    rows = await db.pool.fetch(
        "select slot_name from pg_replication_slots where slot_name like 'devstack\\_realtime\\_%' order by 1"
    )
    return [row[0] for row in rows]


async def wait_until_one_slot(db: Db) -> list[str]:
    """The slots once only one is left (a killed process's backend may take a moment to go)."""
    async with asyncio.timeout(REJOIN_TIMEOUT):
        slots = await realtime_slots(db)
        while len(slots) != 1:
            await asyncio.sleep(0.05)
            slots = await realtime_slots(db)
    return slots


async def test_a_restarted_gateway_says_going_away_and_clients_rejoin(rt: Realtime, db: Db, stack: StackHandle) -> None:
    chat = await db.new_chat(ALICE, BOB)
    bob = await rt.client(BOB)
    inbox = Inbox()
    channel = bob.channel("restart").on_postgres_changes(
        Event.Insert, inbox, table="chat_messages", filter=f"session_id=eq.{chat}"
    )
    statuses = await subscribe(channel)
    raw = await websockets.connect(
        f"ws://{stack.config.host}:{stack.config.api_port}/realtime/v1/websocket?apikey={stack.anon_key}&vsn=1.0.0"
    )
    slot_before = await realtime_slots(db)

    await asyncio.to_thread(stack.stack.gateway.stop)
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await asyncio.wait_for(raw.recv(), REJOIN_TIMEOUT)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
    await asyncio.to_thread(stack.stack.gateway.start)

    await statuses.wait_for(State.CHANNEL_ERROR, REJOIN_TIMEOUT)  # the socket closed under it
    await statuses.wait_for(State.SUBSCRIBED, REJOIN_TIMEOUT)  # reconnected and rejoined
    assert (await wait_until_one_slot(db)) != slot_before  # the old process's slot went with it
    message = (await db.post(ALICE, chat, "after the restart"))["id"]
    assert record_id(await inbox.next()) == str(message)


async def test_a_crashed_gateway_is_restarted_and_clients_rejoin(rt: Realtime, db: Db, stack: StackHandle) -> None:
    chat = await db.new_chat(ALICE, BOB)
    bob = await rt.client(BOB)
    inbox = Inbox()
    channel = bob.channel("crash").on_postgres_changes(
        Event.Insert, inbox, table="chat_messages", filter=f"session_id=eq.{chat}"
    )
    statuses = await subscribe(channel)
    slot_before = await realtime_slots(db)
    victim = server_child(stack)

    os.kill(victim, signal.SIGKILL)  # no goodbye: the socket just drops
    await statuses.wait_for(State.CHANNEL_ERROR, REJOIN_TIMEOUT)
    await statuses.wait_for(State.SUBSCRIBED, REJOIN_TIMEOUT)  # the supervisor restarted it; rejoined
    assert not pid_alive(victim)
    assert (await wait_until_one_slot(db)) != slot_before
    message = (await db.post(ALICE, chat, "after the crash"))["id"]
    assert record_id(await inbox.next()) == str(message)
