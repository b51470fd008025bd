"""The capture's poll loop, with a stand-in for its database connection."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest

from devstack.gateway.realtime.changes import ChangeCapture, invisible_xids, owner_gone
from devstack.gateway.realtime.wal import Change

INSERT = (
    '{"action":"I","xid":%d,"timestamp":"2026-11-26 18:39:31.33+00","schema":"public","table":"t",'
    '"columns":[{"name":"id","type":"integer","typeoid":23,"value":%d}],"pk":[{"name":"id","typeoid":23}]}'
)


class Slot:
    """Answers the flush, snapshots, peeks and advances like a replication slot; records the calls.

    ``commit(xid, ids)`` adds a transaction; a peek returns whole transactions (``B``, inserts, ``C`` with
    the commit's LSN) until the row limit is reached; only an advance past a commit forgets it.
    """

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.transactions: list[tuple[int, list[tuple[int, str]]]] = []
        self.lsn = 1000
        self.snapshots: list[str] = []
        self.read = asyncio.Event()

    def commit(self, xid: int, *ids: int) -> None:
        self.lsn += 10
        rows = [(self.lsn, f'{{"action":"B","xid":{xid}}}')]
        rows += [(self.lsn, INSERT % (xid, row_id)) for row_id in ids]
        rows.append((self.lsn, f'{{"action":"C","xid":{xid}}}'))
        self.transactions.append((self.lsn, rows))

    def _advance(self, target: int) -> int:
        self.calls.append(("advance", target))
        self.transactions = [(lsn, rows) for lsn, rows in self.transactions if lsn > target]
        return target

    def _snapshot(self) -> str:
        snapshot = self.snapshots.pop(0) if self.snapshots else "100:100:"
        self.calls.append(("snapshot", snapshot))
        return snapshot

    async def fetchrow(self, sql: str, *args: Any) -> dict[str, Any]:
        """The poll's first statement: [advance,] flush (our message) and a snapshot."""
        assert "emit_message" in sql and "pg_current_snapshot" in sql
        if "advance" in sql:
            self._advance(args[1])
        self.lsn += 100
        self.calls.append(("flush", self.lsn))
        return {"upto": self.lsn, "snapshot": self._snapshot()}

    async def fetchval(self, sql: str, *args: Any) -> Any:
        if "advance" in sql:
            return self._advance(args[1])
        assert "pg_current_snapshot" in sql
        return self._snapshot()

    async def fetch(self, sql: str, slot: str, upto: int, limit: int) -> list[tuple[int, str]]:
        self.calls.append(("read", upto))
        self.read.set()
        rows: list[tuple[int, str]] = []
        for lsn, transaction in self.transactions:
            if lsn > upto or len(rows) >= limit:
                break
            rows += transaction
        return rows


def capture_with(slot: Slot, on_changes: Any) -> ChangeCapture:
    async def on_catalog(conn: Any) -> None:
        return None

    capture = ChangeCapture("unused", on_changes, on_catalog, fallback_seconds=0.01)
    capture._conn = slot  # type: ignore[assignment]
    capture._catalog_stale = False
    return capture


async def test_every_poll_flushes_reads_up_to_its_own_flush_and_moves_the_slot_there() -> None:
    """Reading to the flush position can stop inside a half-flushed record and wait for the WAL writer
    (200 ms); reading up to the poll's own flushed message never does."""
    slot = Slot()
    capture = capture_with(slot, lambda changes: asyncio.sleep(0))
    task = asyncio.create_task(capture._poll_forever())
    try:
        while len([call for call in slot.calls if call[0] == "read"]) < 3:
            slot.read.clear()
            await asyncio.wait_for(slot.read.wait(), 5)
    finally:
        task.cancel()
    moves = [call for call in slot.calls if call[0] != "snapshot"]
    # The slot moves past a poll's read in the next poll's first round trip, with its flush.
    assert moves[:5] == [("flush", 1100), ("read", 1100), ("advance", 1100), ("flush", 1200), ("read", 1200)]


async def test_a_batch_waits_until_its_transactions_are_visible() -> None:
    """A commit is in the WAL a moment before others can see it; checked then, its row looks invisible."""
    delivered: asyncio.Queue[list[Change]] = asyncio.Queue()

    async def on_changes(changes: list[Change]) -> None:
        delivered.put_nowait(changes)

    slot = Slot()
    slot.commit(741, 1)
    slot.commit(742, 2)
    # With the flush: 742 still in progress; asked again: not yet below xmax; then visible.
    slot.snapshots = ["740:743:742", "740:742:", "743:743:"]
    capture = capture_with(slot, on_changes)
    task = asyncio.create_task(capture._poll_forever())
    try:
        changes = await asyncio.wait_for(delivered.get(), 5)
    finally:
        task.cancel()
    assert [change.xid for change in changes] == [741, 742]
    snapshots = [call for call in slot.calls if call[0] == "snapshot"]
    assert [value for _, value in snapshots] == ["740:743:742", "740:742:", "743:743:"]


async def test_a_batch_whose_checks_lost_the_database_is_read_again() -> None:
    attempts: asyncio.Queue[list[int]] = asyncio.Queue()

    async def on_changes(changes: list[Change]) -> None:
        attempts.put_nowait([change.record["id"] for change in changes if change.record])
        if attempts.qsize() == 1:
            raise asyncpg.ConnectionDoesNotExistError("the database restarted")

    slot = Slot()
    slot.commit(5, 1)
    capture = capture_with(slot, on_changes)
    with pytest.raises(asyncpg.ConnectionDoesNotExistError):
        await asyncio.wait_for(capture._poll_forever(), 5)
    assert "advance" not in [kind for kind, _ in slot.calls]  # the slot did not move past it
    slot.commit(6, 2)  # committed meanwhile
    task = asyncio.create_task(capture._poll_forever())
    try:
        seen = [await asyncio.wait_for(attempts.get(), 5) for _ in range(2)]
    finally:
        task.cancel()
    assert seen == [[1], [1, 2]]


async def test_a_bug_in_delivery_drops_the_batch_and_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    attempts: asyncio.Queue[int] = asyncio.Queue()

    async def on_changes(changes: list[Change]) -> None:
        attempts.put_nowait(changes[0].xid)
        if changes[0].xid == 5:
            raise KeyError("a bug")

    slot = Slot()
    slot.commit(5, 1)
    capture = capture_with(slot, on_changes)
    task = asyncio.create_task(capture._poll_forever())
    try:
        assert await asyncio.wait_for(attempts.get(), 5) == 5
        slot.commit(6, 2)
        assert await asyncio.wait_for(attempts.get(), 5) == 6  # not 5 again: dropped
    finally:
        task.cancel()
    assert "delivering 1 changes failed" in caplog.text


async def test_a_long_backlog_is_read_in_whole_transactions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("devstack.gateway.realtime.changes.MAX_CHANGES_PER_POLL", 4)
    monkeypatch.setattr("devstack.gateway.realtime.changes.ADVANCE_SECONDS", 0)
    delivered: asyncio.Queue[list[int]] = asyncio.Queue()

    async def on_changes(changes: list[Change]) -> None:
        delivered.put_nowait([change.xid for change in changes])

    slot = Slot()
    for xid in (1, 2, 3):
        slot.commit(xid, xid * 10, xid * 10 + 1)  # four rows each: B, two inserts, C
    commits = [lsn for lsn, _ in slot.transactions]
    capture = capture_with(slot, on_changes)
    task = asyncio.create_task(capture._poll_forever())
    try:
        batches = [await asyncio.wait_for(delivered.get(), 5) for _ in range(3)]
        while len([call for call in slot.calls if call[0] == "flush"]) < 2:  # the next poll moves the slot
            slot.read.clear()
            await asyncio.wait_for(slot.read.wait(), 5)
    finally:
        task.cancel()
    assert batches == [[1, 1], [2, 2], [3, 3]]
    advances = [lsn for kind, lsn in slot.calls if kind == "advance"]
    flush = next(lsn for kind, lsn in slot.calls if kind == "flush")
    assert advances[:4] == [*commits, flush]  # past each whole transaction, then (next poll) to the flush


async def test_between_moves_of_the_slot_a_read_skips_what_was_delivered(monkeypatch: pytest.MonkeyPatch) -> None:
    """Moving the slot costs a re-read of the WAL from its restart point: it moves at most every
    ``ADVANCE_SECONDS``, and reads in between return delivered transactions again, to be skipped."""
    monkeypatch.setattr("devstack.gateway.realtime.changes.ADVANCE_SECONDS", 3600)
    delivered: asyncio.Queue[list[int]] = asyncio.Queue()

    async def on_changes(changes: list[Change]) -> None:
        delivered.put_nowait([change.xid for change in changes])

    slot = Slot()
    slot.commit(1, 10)
    capture = capture_with(slot, on_changes)
    task = asyncio.create_task(capture._poll_forever())
    try:
        first = await asyncio.wait_for(delivered.get(), 5)
        slot.commit(2, 20)
        second = await asyncio.wait_for(delivered.get(), 5)
        slot.commit(3, 30)
        third = await asyncio.wait_for(delivered.get(), 5)
    finally:
        task.cancel()
    assert (first, second, third) == ([1], [2], [3])  # each once, though read again and again
    flushes = [lsn for kind, lsn in slot.calls if kind == "flush"]
    assert [lsn for kind, lsn in slot.calls if kind == "advance"] == flushes[:1]  # moved once, to the first read


def test_invisible_xids() -> None:
    assert invisible_xids({5, 6}, "5:7:") == set()
    assert invisible_xids({5, 6}, "5:7:6") == {6}
    assert invisible_xids({5, 7}, "5:7:") == {7}  # not below xmax: not finished
    # 64-bit snapshots, 32-bit xids from the WAL: the epoch comes from the snapshot.
    epoch = 3 << 32
    assert invisible_xids({10}, f"{epoch + 5}:{epoch + 11}:") == set()
    assert invisible_xids({2**32 - 2}, f"{epoch + 1}:{epoch + 3}:") == set()  # from before the turn


def test_slots_whose_gateway_ended_are_stale(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    assert not owner_gone(f"devstack_realtime_{os.getpid()}_0a1b2c3d")  # this process's own
    assert owner_gone("devstack_realtime_999999999_0a1b2c3d")  # no such process
    assert owner_gone("devstack_realtime_not_ours")
    # A live process: a gateway keeps its slot, anything else (a pid reused after a reboot) does not.
    parent = os.getppid()
    monkeypatch.setattr("devstack.gateway.realtime.changes.cmdline", lambda pid: ["python", "-m", "pytest"])
    assert owner_gone(f"devstack_realtime_{parent}_0a1b2c3d")
    monkeypatch.setattr(
        "devstack.gateway.realtime.changes.cmdline",
        lambda pid: ["python", "-m", "devstack.gateway.server", "--settings", "x.json"],
    )
    assert not owner_gone(f"devstack_realtime_{parent}_0a1b2c3d")
