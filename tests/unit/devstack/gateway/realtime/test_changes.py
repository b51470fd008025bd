"""The capture's poll loop, with a stand-in for its database connection."""

from __future__ import annotations

import asyncio
from typing import Any

from devstack.gateway.realtime.changes import ChangeCapture
from devstack.gateway.realtime.wal import Change

INSERT = (
    '{"action":"I","timestamp":"2026-11-26 18:39:31.33+00","schema":"public","table":"t",'
    '"columns":[{"name":"id","type":"integer","typeoid":23,"value":%d}],"pk":[{"name":"id","typeoid":23}]}'
)


class Slot:
    """Answers the flush and the slot reads; records what was asked, in order."""

    def __init__(self, capture: ChangeCapture, slow_first_read: float) -> None:
        self.capture = capture
        self.calls: list[str] = []
        self.pending: list[str] = []
        self.slow_first_read = slow_first_read
        self.third_read = asyncio.Event()

    async def fetchval(self, sql: str, *args: Any) -> None:
        self.calls.append("flush")

    async def fetch(self, sql: str, *args: Any) -> list[tuple[str]]:
        self.calls.append("read")
        if self.calls.count("read") == 3:
            self.third_read.set()
        if self.slow_first_read:
            # A commit (and its NOTIFY) lands while a long read runs.
            await asyncio.sleep(self.slow_first_read)
            self.slow_first_read = 0
            self.pending.append(INSERT % 1)
            self.capture._wake.set()
            return []
        rows, self.pending = [(line,) for line in self.pending], []
        return rows


async def test_a_wake_during_a_long_read_is_followed_by_a_flushed_read() -> None:
    delivered: asyncio.Queue[list[Change]] = asyncio.Queue()

    async def on_changes(changes: list[Change]) -> None:
        delivered.put_nowait(changes)

    async def on_catalog(conn: Any) -> None:
        return None

    # The first read outlasts the fallback interval, so the next wait has no time left; the wake
    # must still count as one (a flush first), or the commit could wait for the WAL writer.
    capture = ChangeCapture("unused", on_changes, on_catalog, fallback_seconds=0.05)
    slot = Slot(capture, slow_first_read=0.1)
    capture._conn = slot  # type: ignore[assignment]
    capture._catalog_stale = False
    task = asyncio.create_task(capture._poll_forever())
    try:
        (change,) = await asyncio.wait_for(delivered.get(), 5)
    finally:
        task.cancel()
    assert change.record == {"id": 1}
    assert slot.calls[:3] == ["read", "flush", "read"]


async def test_woken_polls_flush_and_timer_polls_do_not() -> None:
    async def on_changes(changes: list[Change]) -> None:
        return None

    async def on_catalog(conn: Any) -> None:
        return None

    capture = ChangeCapture("unused", on_changes, on_catalog, fallback_seconds=0.01)
    slot = Slot(capture, slow_first_read=0)
    capture._conn = slot  # type: ignore[assignment]
    capture._catalog_stale = False
    capture._wake.set()
    task = asyncio.create_task(capture._poll_forever())
    try:
        await asyncio.wait_for(slot.third_read.wait(), 5)
    finally:
        task.cancel()
    assert slot.calls[:2] == ["flush", "read"]  # woken: flush, then read
    assert "flush" not in slot.calls[2:4]  # timer polls only read
