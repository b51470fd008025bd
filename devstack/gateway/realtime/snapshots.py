"""Keeping the change capture's re-reading short: a running-transactions record about once a second while
changes flow.

``pg_logical_slot_peek_changes`` decodes from the slot's *restart point*, not from where it was confirmed:
everything in between is decoded again and thrown away on every poll. The restart point can only move to
a running-transactions record (``xl_running_xacts``, where decoding can start afresh), and PostgreSQL 15
writes one only every 15 s (the background writer) or at a checkpoint. Under a sustained stream each poll
therefore decoded again 15-25 s of WAL (``bench stream``: 3.5-7.2 MiB p50 and up to 19 MiB per poll at 200
messages/s), and the commit → push time of every batch grew with it.

PostgreSQL 16 has ``pg_log_standby_snapshot()`` for exactly this. On 15 the one way to write that record
without a checkpoint is to create a logical slot (reserving its WAL logs one): ``SnapshotNudger`` creates
a temporary slot and drops it at once, at most every ``NUDGE_SECONDS`` and only after the capture
delivered something since the last one. It runs on a connection of its own: creating a slot waits for the
transactions running at that moment to end, and a long one must never hold the capture up (a statement
timeout ends the wait; the next nudge tries again). The capture's next slot moves
(``pg_replication_slot_advance``) then carry the restart point up to that record.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets

import asyncpg

log = logging.getLogger(__name__)

NUDGE_SECONDS = 1.0
"""At most one running-transactions record this often (the bgwriter's own is every 15 s)."""
RETRY_SECONDS = 5.0
SLOT_PREFIX = "devstack_nudge_"
"""Not ``changes.SLOT_PREFIX``: these are temporary (gone with their session) and never resumed."""


class SnapshotNudger:
    """Writes a running-transactions record when asked (``changes_flowed``), at most every ``interval``."""

    def __init__(self, db_url: str, *, interval: float = NUDGE_SECONDS) -> None:
        self._db_url = db_url
        self._interval = interval
        self._flowed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._conn: asyncpg.Connection | None = None
        self.nudges = 0  # records written (tests, diagnostics)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="realtime-snapshot-nudger")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._close()

    def changes_flowed(self) -> None:
        """The capture delivered a batch: the restart point is worth moving."""
        self._flowed.set()

    async def _run(self) -> None:
        while True:
            await self._flowed.wait()
            self._flowed.clear()
            try:
                await self._nudge()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # the database restarting, say: the capture copes; try again later
                log.debug("realtime: no standby snapshot this time (%s)", error)
                await self._close()
                await asyncio.sleep(RETRY_SECONDS)
                continue
            await asyncio.sleep(self._interval)

    async def _nudge(self) -> None:
        if self._conn is None or self._conn.is_closed():
            self._conn = await asyncpg.connect(
                self._db_url,
                server_settings={"application_name": "devstack realtime snapshots", "statement_timeout": "5s"},
            )
        conn = self._conn
        if conn.get_server_version().major >= 16:
            await conn.execute("select pg_catalog.pg_log_standby_snapshot()")
        else:
            name = f"{SLOT_PREFIX}{os.getpid()}_{secrets.token_hex(4)}"
            # pgoutput: built in, needs no options to create; the slot is never read.
            await conn.execute("select pg_catalog.pg_create_logical_replication_slot($1, 'pgoutput', true)", name)
            await conn.execute("select pg_catalog.pg_drop_replication_slot($1)", name)
        self.nudges += 1

    async def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), timeout=2)
            if not conn.is_closed():
                conn.terminate()
