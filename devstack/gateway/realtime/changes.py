"""Change capture: row changes read from the database's own WAL, in commit order.

This is how Supabase Realtime reads changes: a logical replication slot with the wal2json output
plugin, read with ``pg_logical_slot_get_changes``. Whoever made the change (a REST request, psql, a
migration) does not matter, and transactions come out in the order they committed.

The slot is *temporary*: it belongs to this process's capture connection and disappears with it, so
a crashed or restarted gateway leaves nothing behind (persistent slots with our prefix that are not in
use, from an older version or a crash mid-creation, are dropped at start). A restarted gateway starts
a new slot at the current end of the WAL; Realtime does not replay missed changes either, and clients
back-fill after they re-subscribe.

Polling without burning CPU and without lag: a statement-level trigger on each published table sends a
``NOTIFY`` at commit (see ``schema``), which wakes the poll at once; a timer polls too, for tables
published before their trigger exists. ``pg_logical_slot_get_changes`` only decodes WAL that has been
flushed, and a commit with ``synchronous_commit = off`` (throwaway stacks) may sit unflushed for up to
``wal_writer_delay``; so a woken poll first commits a tiny transaction of its own with
``synchronous_commit = on``, which flushes the WAL up to and including the commit that woke it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import asyncpg

from devstack.gateway.realtime import schema
from devstack.gateway.realtime.wal import Change, parse_change

if TYPE_CHECKING:
    from devstack.gateway.realtime.catalog import AnyConnection

log = logging.getLogger(__name__)

SLOT_PREFIX = "devstack_realtime_"
FALLBACK_POLL_SECONDS = 0.5
MAX_CHANGES_PER_POLL = 5000
RETRY_SECONDS = (0.5, 1.0, 2.0, 5.0)

_GET_CHANGES_SQL = (
    "select data from pg_catalog.pg_logical_slot_get_changes($1, null, $2,"
    " 'format-version', '2', 'include-timestamp', '1', 'include-type-oids', '1', 'include-pk', '1',"
    " 'include-transaction', '0', 'actions', 'insert,update,delete')"
)
_FLUSH_SQL = "select pg_catalog.pg_logical_emit_message(true, 'devstack_realtime', '')"
_SLOT_PATTERN = SLOT_PREFIX.replace("_", "\\_") + "%"
# Slots of ours that nobody uses: persistent ones from a crash mid-creation or an older version. A
# temporary slot whose session is ending may vanish or still be in use meanwhile; both are fine.
_DROP_STALE_SLOTS_SQL = f"""
do $$
declare
  v_slot text;
begin
  for v_slot in
    select slot_name from pg_catalog.pg_replication_slots
     where slot_name like '{_SLOT_PATTERN}' and not active
  loop
    begin
      perform pg_catalog.pg_drop_replication_slot(v_slot);
    exception when undefined_object or object_in_use then
      null;
    end;
  end loop;
end
$$
"""  # noqa: S608 - a constant of this module


def new_slot_name() -> str:
    """A slot name of this process, fresh for every capture connection."""
    return f"{SLOT_PREFIX}{os.getpid()}_{secrets.token_hex(4)}"


ChangesHandler = Callable[[list[Change]], Awaitable[None]]
CatalogHandler = Callable[[asyncpg.Connection], Awaitable[None]]


class ChangeCapture:
    """One capture connection: slot, LISTEN, and the poll loop handing batches to ``on_changes``.

    ``on_catalog`` runs on the capture connection at start and after DDL, before the next batch, so
    batches are always interpreted with a catalog at least as new as the DDL that preceded them.
    """

    def __init__(
        self,
        db_url: str,
        on_changes: ChangesHandler,
        on_catalog: CatalogHandler,
        *,
        fallback_seconds: float = FALLBACK_POLL_SECONDS,
    ) -> None:
        self._db_url = db_url
        self._fallback_seconds = fallback_seconds
        self._on_changes = on_changes
        self._on_catalog = on_catalog
        self._wake = asyncio.Event()
        self._catalog_stale = True
        self._task: asyncio.Task[None] | None = None
        self._conn: asyncpg.Connection | None = None
        self.slot_name = new_slot_name()
        self.running = asyncio.Event()
        """Set while the slot exists and is being polled; cleared while reconnecting."""

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="realtime-change-capture")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._close()

    def catalog_changed(self) -> None:
        """Have the catalog re-read before the next batch (e.g. a binding named an unknown table)."""
        self._catalog_stale = True
        self._wake.set()

    async def _run(self) -> None:
        attempt = 0
        while True:
            try:
                if self._conn is None:
                    await self._open()
                attempt = 0
                await self._poll_forever()
            except asyncio.CancelledError:
                raise
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
                delay = RETRY_SECONDS[min(attempt, len(RETRY_SECONDS) - 1)]
                attempt += 1
                if self._connection_alive() and not isinstance(error, asyncpg.PostgresConnectionError):
                    # A query failed on a healthy connection (a table dropped under a catalog read, say):
                    # the slot is intact and keeps every change, so just try again.
                    log.warning("realtime change capture: %s; retrying in %.1f s", error, delay)
                else:
                    # The connection, and with it the temporary slot, is gone: start over with a new one.
                    self.running.clear()
                    log.warning(
                        "realtime change capture lost its connection (%s); reconnecting in %.1f s", error, delay
                    )
                    await self._close()
                await asyncio.sleep(delay)
            except Exception:
                # A bug: keep the gateway serving broadcast and presence, and say so loudly.
                self.running.clear()
                log.exception("realtime change capture crashed; restarting in 5 s")
                await self._close()
                await asyncio.sleep(5)

    def _connection_alive(self) -> bool:
        return self._conn is not None and not self._conn.is_closed()

    async def _open(self) -> None:
        conn = await asyncpg.connect(self._db_url, server_settings={"application_name": "devstack realtime"})
        try:
            await self._prepare(conn)
        except BaseException:
            conn.terminate()
            raise
        self._conn = conn
        self.running.set()
        log.info("realtime change capture started with slot %s", self.slot_name)

    async def _prepare(self, conn: asyncpg.Connection) -> None:
        # UTC for wal2json's timestamps; synchronous commit so that _FLUSH_SQL flushes the WAL.
        await conn.execute("set timezone = 'UTC'; set synchronous_commit = on")
        await conn.execute(_DROP_STALE_SLOTS_SQL)
        await conn.add_listener(schema.WAKE_CHANNEL, self._on_notify)
        self.slot_name = new_slot_name()
        await conn.execute("select pg_catalog.pg_create_logical_replication_slot($1, 'wal2json', true)", self.slot_name)
        self._catalog_stale = True
        await self._refresh_catalog(conn)

    async def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), timeout=2)
            if not conn.is_closed():
                conn.terminate()

    def _on_notify(self, conn: AnyConnection, pid: int, channel: str, payload: object, /) -> None:
        if payload == schema.DDL_PAYLOAD:
            self._catalog_stale = True
        self._wake.set()

    async def _refresh_catalog(self, conn: asyncpg.Connection) -> None:
        self._catalog_stale = False
        try:
            await self._on_catalog(conn)
        except BaseException:
            self._catalog_stale = True
            raise

    async def _poll_forever(self) -> None:
        conn = self._conn
        assert conn is not None
        while True:
            if not self._wake.is_set():
                # (Not wait_for with a zero timeout: it gives up without looking at a set event.)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._fallback_seconds)
            woken = self._wake.is_set()
            self._wake.clear()
            if self._catalog_stale:
                await self._refresh_catalog(conn)
            if woken:
                await conn.fetchval(_FLUSH_SQL)
            while True:
                rows = await conn.fetch(_GET_CHANGES_SQL, self.slot_name, MAX_CHANGES_PER_POLL)
                changes = [change for change in (parse_change(row[0]) for row in rows) if change is not None]
                if changes:
                    try:
                        await self._on_changes(changes)
                    except Exception:
                        log.exception("realtime: delivering %d changes failed", len(changes))
                if len(rows) < MAX_CHANGES_PER_POLL:
                    break
