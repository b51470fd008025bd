"""Change capture: row changes read from the database's own WAL, in commit order, none lost.

This is how Supabase Realtime reads changes: a logical replication slot with the wal2json output
plugin, read with ``pg_logical_slot_get_changes``. Whoever made the change (a REST request, psql, a
migration) does not matter, and transactions come out in the order they committed.

The slot is *persistent* and belongs to this gateway process (its name carries the pid): it survives a
restart of PostgreSQL with its confirmed position, so a capture that reconnects resumes exactly where it
stopped and changes committed around the restart are pushed late, not lost. Realtime uses a temporary
slot, recreated at the end of the WAL after a reconnect, which skips them. The slot is read with
``pg_logical_slot_peek_changes`` and moved on (``pg_replication_slot_advance``) only once a batch was
delivered: ``get_changes`` moves it while answering, so a restart (or a crash, which keeps the position
last written to disk) between its answer and our delivery would lose the batch; a batch whose delivery
failed because the database went away is simply read again. The slot is dropped when the gateway
stops; slots of ours whose process is gone (a crash) are dropped at start. If the slot itself is gone
after a reconnect (the cluster was reset), the gap cannot be closed: ``on_gap`` runs so that
subscribers are told.

Delivery is at least once: a batch delivered just before a restart, whose advance did not reach the
disk, is delivered again after it.

Each read decodes again everything since the slot's restart point, which moves only at a running-transactions
record: ``snapshots.SnapshotNudger`` has one written about once a second while changes flow (PostgreSQL
writes one every 15 s by itself), so a read decodes about a second of WAL again rather than up to 25 s.

Polling without burning CPU and without lag: a statement-level trigger on each published table sends a
``NOTIFY`` at commit (see ``schema``), which wakes the poll at once; a timer polls too, for tables
published before their trigger exists. Every poll first commits a tiny transaction of its own
(``pg_logical_emit_message``, synchronous commit ``local``), which flushes the WAL up to and including
every commit before it, even with writers committing asynchronously (throwaway stacks), then reads the
slot *up to that message*. Reading to the current flush position instead can stop inside a record
whose rest is not flushed yet, and the read then waits for the WAL writer (``wal_writer_delay``,
200 ms): that was the ~200 ms of late batches under a sustained stream.

A commit is in the WAL a moment before it is visible to other transactions (its backend removes it from
the running set just after writing the commit record; with synchronous replication, only after the
standby answers). A change decoded in that moment and checked against row level security right away
would be judged invisible, and dropped: so a batch waits until each of its transactions is visible in a
fresh snapshot before it is handed on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Collection
from typing import TYPE_CHECKING

import asyncpg

from devstack.gateway.realtime import schema
from devstack.gateway.realtime.snapshots import SnapshotNudger
from devstack.gateway.realtime.wal import Change, parse_change
from devstack.procs import cmdline, pid_alive

if TYPE_CHECKING:
    from devstack.gateway.realtime.catalog import AnyConnection

log = logging.getLogger(__name__)

SLOT_PREFIX = "devstack_realtime_"
FALLBACK_POLL_SECONDS = 0.5
MAX_CHANGES_PER_POLL = 5000
RETRY_SECONDS = (0.5, 1.0, 2.0, 5.0)
VISIBILITY_WAIT_SECONDS = (0.0005, 0.001, 0.002, 0.004)
"""Pauses between snapshots while a batch's transactions finish committing (usually none is needed; the
last repeats). Short: the commit is only waiting for its backend to get a core again."""
SLOW_VISIBILITY_SECONDS = 10.0
ADVANCE_SECONDS = 0.1
"""How often the slot moves past what was delivered. Moving re-reads the WAL from the slot's restart point
(up to ~15 s of it) as a read does; between moves, reads skip the transactions they return again."""

_PEEK_CHANGES_SQL = (
    "select lsn, data from pg_catalog.pg_logical_slot_peek_changes($1, $2, $3,"
    " 'format-version', '2', 'include-timestamp', '1', 'include-type-oids', '1', 'include-pk', '1',"
    " 'include-xids', '1', 'include-transaction', '1', 'actions', 'insert,update,delete',"
    " 'filter-msg-prefixes', 'devstack_realtime')"  # leaves out our own flush messages (below)
)
_ADVANCE_SQL = "select end_lsn from pg_catalog.pg_replication_slot_advance($1, $2)"
# A poll's first round trip: our flush, the snapshot that tells which decoded commits are visible yet and,
# once a batch was delivered, moving the slot past it (left for this round trip to save one).
_FLUSH_SQL = (
    "select pg_catalog.pg_logical_emit_message(true, 'devstack_realtime', '') as upto,"
    " pg_catalog.pg_current_snapshot()::text as snapshot"
)
_ADVANCE_AND_FLUSH_SQL = (
    "select (select end_lsn from pg_catalog.pg_replication_slot_advance($1, $2)) as moved,"
    " pg_catalog.pg_logical_emit_message(true, 'devstack_realtime', '') as upto,"
    " pg_catalog.pg_current_snapshot()::text as snapshot"
)
_COMMIT_ROW = '{"action":"C"'
"""A transaction's end (``include-transaction``): its ``lsn`` is where the slot may move to after it."""
SNAPSHOT_SQL = "select pg_catalog.pg_current_snapshot()::text"
"""What the capture asks, over and over, while it waits for a commit it read to become visible."""
_SLOT_PATTERN = SLOT_PREFIX.replace("_", "\\_") + "%"
_SLOT_PID = re.compile(re.escape(SLOT_PREFIX) + r"(\d+)_[0-9a-f]+$")

# Errors that mean the database or the connection to it went away, not that a query is wrong: a batch
# that hits one is delivered again once the database answers.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.TooManyConnectionsError,
)


def new_slot_name() -> str:
    """This process's slot: the pid tells other gateways whether its owner still runs."""
    return f"{SLOT_PREFIX}{os.getpid()}_{secrets.token_hex(4)}"


def owner_gone(slot_name: str) -> bool:
    """Whether the gateway that named ``slot_name`` has ended (names not of this form count as gone).

    Its pid alone does not tell: after a reboot the number may belong to any process, and a slot kept for
    it would hold WAL for good; the process must still run the gateway's server (or this process, tests).
    """
    match = _SLOT_PID.match(slot_name)
    if match is None:
        return True
    pid = int(match.group(1))
    if pid == os.getpid():
        return False
    if not pid_alive(pid):
        return True
    return not any("devstack.gateway" in part for part in cmdline(pid))


def invisible_xids(xids: Collection[int], snapshot: str) -> set[int]:
    """Those of ``xids`` (32-bit, as the WAL has them) that ``snapshot`` (``xmin:xmax:xip,...``, 64-bit)
    does not see yet: not below ``xmax``, or still in progress."""
    _, xmax_text, xip_text = snapshot.split(":")
    xmax = int(xmax_text)
    in_progress = {int(item) for item in xip_text.split(",") if item}
    epoch = xmax >> 32
    invisible = set()
    for xid in xids:
        full = (epoch << 32) | xid
        if full > xmax + 2**31:  # the xid is from before the epoch turned over
            full -= 2**32
        if full >= xmax or full in in_progress:
            invisible.add(xid)
    return invisible


ChangesHandler = Callable[[list[Change]], Awaitable[None]]
CatalogHandler = Callable[[asyncpg.Connection], Awaitable[None]]


class ChangeCapture:
    """One capture connection: slot, LISTEN, and the poll loop handing batches to ``on_changes``.

    ``on_changes`` is the one way out for captured changes (the router fans them out); an exception of
    ``TRANSIENT_ERRORS`` from it means "deliver this batch again later", any other is a bug (logged; the
    batch is dropped). ``on_catalog`` runs on the capture connection at start and after DDL, before the
    next batch, so batches are always interpreted with a catalog at least as new as the DDL that preceded
    them. ``on_gap`` runs when changes may have been missed (the slot was gone after a reconnect).
    """

    def __init__(
        self,
        db_url: str,
        on_changes: ChangesHandler,
        on_catalog: CatalogHandler,
        *,
        on_gap: Callable[[], None] | None = None,
        fallback_seconds: float = FALLBACK_POLL_SECONDS,
    ) -> None:
        self._db_url = db_url
        self._fallback_seconds = fallback_seconds
        self._on_changes = on_changes
        self._on_catalog = on_catalog
        self._on_gap = on_gap
        self._wake = asyncio.Event()
        self._catalog_stale = True
        self._task: asyncio.Task[None] | None = None
        self._conn: asyncpg.Connection | None = None
        self._had_slot = False
        self._delivered_to: int | None = None
        """Everything committed before this LSN was delivered: the slot may move there, and transactions
        a read returns again before it has (it moves at most every ``ADVANCE_SECONDS``) are skipped."""
        self._moved_to: int | None = None
        self._moved_at = 0.0
        self.slot_name = new_slot_name()
        # Keeps the slot's restart point near its confirmed position, so a poll decodes little again.
        self.nudger = SnapshotNudger(db_url)
        self.running = asyncio.Event()
        """Set while the slot exists and is being polled; cleared while reconnecting."""

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="realtime-change-capture")
        self.nudger.start()

    async def stop(self) -> None:
        await self.nudger.stop()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        conn = self._conn
        if conn is not None and not conn.is_closed():
            # The slot would keep WAL for no one; a gateway that cannot drop it leaves it to the next.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(
                    conn.execute("select pg_catalog.pg_drop_replication_slot($1)", self.slot_name), timeout=2
                )
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
                # The slot dropped under us: reconnecting finds it gone, recreates it and reports the gap.
                slot_gone = isinstance(error, asyncpg.UndefinedObjectError) and self.slot_name in str(error)
                if (
                    self._connection_alive()
                    and not slot_gone
                    and not isinstance(error, asyncpg.PostgresConnectionError)
                ):
                    # A query failed on a healthy connection (a table dropped under a catalog read, the
                    # permission checks' connections broken by a restart, ...): the slot still holds every
                    # change not delivered, so just try again.
                    log.warning("realtime change capture: %s; retrying in %.1f s", error, delay)
                else:
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
            lost = await self._prepare(conn)
        except BaseException:
            conn.terminate()
            raise
        self._conn = conn
        self.running.set()
        if lost:
            log.warning("realtime: the replication slot was gone after a reconnect; changes may have been missed")
            if self._on_gap is not None:
                self._on_gap()
        log.info("realtime change capture running with slot %s", self.slot_name)

    async def _prepare(self, conn: asyncpg.Connection) -> bool:
        """Set the session up, resume or create the slot; True when a slot of ours was lost."""
        # UTC for wal2json's timestamps. Local synchronous commit: the flush must reach this server's
        # disk but never wait for a standby (synchronous_standby_names would stall the capture).
        await conn.execute("set timezone = 'UTC'; set synchronous_commit = local")
        await self._drop_stale_slots(conn)
        await conn.add_listener(schema.WAKE_CHANNEL, self._on_notify)
        exists = await conn.fetchval(
            "select true from pg_catalog.pg_replication_slots where slot_name = $1", self.slot_name
        )
        lost = self._had_slot and not exists
        if not exists:
            await conn.execute(
                "select pg_catalog.pg_create_logical_replication_slot($1, 'wal2json', false)", self.slot_name
            )
            self._had_slot = True
            self._delivered_to = self._moved_to = None  # a new slot starts at the end of the WAL, after that
        self._catalog_stale = True
        await self._refresh_catalog(conn)
        return lost

    async def _drop_stale_slots(self, conn: asyncpg.Connection) -> None:
        """Drop slots of ours whose gateway process has ended: they would keep WAL for no one."""
        names = await conn.fetch(
            "select slot_name from pg_catalog.pg_replication_slots"
            " where slot_name like $1 and not active and slot_name <> $2",
            _SLOT_PATTERN,
            self.slot_name,
        )
        for (name,) in names:
            if owner_gone(name):
                # Dropped meanwhile, or taken by a gateway that resumed it: both fine.
                with contextlib.suppress(asyncpg.UndefinedObjectError, asyncpg.ObjectInUseError):
                    await conn.execute("select pg_catalog.pg_drop_replication_slot($1)", name)

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
            self._wake.clear()
            if self._catalog_stale:
                await self._refresh_catalog(conn)
            # Every commit before our message is flushed once this returns; read exactly up to it.
            delivered = self._delivered_to
            if delivered is not None and delivered != self._moved_to and self._may_move():
                row = await conn.fetchrow(_ADVANCE_AND_FLUSH_SQL, self.slot_name, delivered)
                self._moved(delivered)
            else:
                row = await conn.fetchrow(_FLUSH_SQL)
            assert row is not None
            upto, snapshot = row["upto"], row["snapshot"]
            while True:
                rows = await conn.fetch(_PEEK_CHANGES_SQL, self.slot_name, upto, MAX_CHANGES_PER_POLL)
                changes, last_commit = self._unread(rows)
                if changes:
                    await self._until_visible(conn, changes, snapshot)
                    await self._deliver(changes)
                    self.nudger.changes_flowed()
                if len(rows) < MAX_CHANGES_PER_POLL or last_commit is None:
                    self._delivered_to = upto
                    break
                # Cut short (the peek stops after the transaction that reached the limit): move past the
                # whole transactions read, and read on.
                await conn.fetchval(_ADVANCE_SQL, self.slot_name, last_commit)
                self._moved(last_commit)
                self._delivered_to = last_commit
                snapshot = None

    def _may_move(self) -> bool:
        return time.monotonic() - self._moved_at >= ADVANCE_SECONDS

    def _moved(self, lsn: int) -> None:
        self._moved_to = lsn
        self._moved_at = time.monotonic()

    def _unread(self, rows: list[asyncpg.Record]) -> tuple[list[Change], int | None]:
        """The changes of the transactions in ``rows`` not delivered yet, and the last commit's LSN.

        Rows come in whole transactions (``B``, changes, ``C``); a transaction that committed before
        ``_delivered_to`` was delivered by an earlier poll, read again because the slot has not moved yet.
        """
        changes: list[Change] = []
        transaction: list[str] = []
        last_commit = None
        for lsn, data in rows:
            if not data.startswith(_COMMIT_ROW):
                transaction.append(data)
                continue
            last_commit = lsn
            if self._delivered_to is None or lsn > self._delivered_to:
                changes.extend(change for change in map(parse_change, transaction) if change is not None)
            transaction = []
        return changes, last_commit

    async def _until_visible(self, conn: asyncpg.Connection, changes: list[Change], snapshot: str | None) -> None:
        """Wait until every transaction of ``changes`` is visible to new snapshots.

        ``snapshot`` was taken with this poll's flush: what it sees is visible for good (the usual case: no
        round trip); a transaction it does not see (still committing then) is asked about again.
        """
        xids = {change.xid for change in changes if change.xid}
        if snapshot is not None and not invisible_xids(xids, snapshot):
            return
        started = time.monotonic()
        pauses = iter(VISIBILITY_WAIT_SECONDS)
        warned = False
        while waiting := invisible_xids(xids, await conn.fetchval(SNAPSHOT_SQL)):
            if not warned and time.monotonic() - started > SLOW_VISIBILITY_SECONDS:
                # A commit waiting on a standby that does not answer, say: the stream waits with it.
                log.warning("realtime: waiting for transactions %s to become visible", sorted(waiting))
                warned = True
            await asyncio.sleep(next(pauses, VISIBILITY_WAIT_SECONDS[-1]))

    async def _deliver(self, changes: list[Change]) -> None:
        try:
            await self._on_changes(changes)
        except TRANSIENT_ERRORS:
            raise  # the slot has not moved: the batch is read again once the database answers
        except Exception:
            log.exception("realtime: delivering %d changes failed", len(changes))
