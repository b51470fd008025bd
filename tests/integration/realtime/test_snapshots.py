"""SnapshotNudger against a real PostgreSQL 15: it writes the running-transactions record that lets the
capture's slot move its restart point (so each poll decodes little WAL again), and leaves no slot behind."""

from __future__ import annotations

import asyncio

import pytest

from devstack.gateway.realtime.snapshots import SLOT_PREFIX, SnapshotNudger
from tests.conftest import StackHandle
from tests.integration.realtime.conftest import Db

pytestmark = pytest.mark.integration

_RUNNING_XACTS = (
    "select count(*) from pg_get_wal_records_info($1::text::pg_lsn, pg_catalog.pg_current_wal_lsn())"
    " where resource_manager = 'Standby' and record_type = 'RUNNING_XACTS'"
)


async def test_a_nudge_writes_a_running_transactions_record_and_leaves_no_slot(stack: StackHandle, db: Db) -> None:
    await db.pool.execute("create extension if not exists pg_walinspect")
    nudger = SnapshotNudger(stack.db_url)
    try:
        before = str(await db.pool.fetchval("select pg_catalog.pg_current_wal_lsn()::text"))
        nudger.start()
        nudger.changes_flowed()  # as the capture does after delivering a batch
        async with asyncio.timeout(10):
            while nudger.nudges < 1:  # noqa: ASYNC110 - polling the nudger's own task
                await asyncio.sleep(0.01)
        assert await db.pool.fetchval(_RUNNING_XACTS, before) >= 1
        leftover = await db.pool.fetchval(
            "select count(*) from pg_catalog.pg_replication_slots where starts_with(slot_name, $1)", SLOT_PREFIX
        )
        assert leftover == 0
    finally:
        await nudger.stop()
        await db.pool.execute("drop extension if exists pg_walinspect")
