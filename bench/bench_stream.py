"""stream: 200 messages/s into one open chat for 30 s, with the realtime broadcasts read by the library (its
receive loop parses every frame and calls back, main before issue 13 item 4) and through ``FrameTap`` (the
app takes its topics' broadcasts off the socket before the library parses them, reading in slices).

The phase is ``bench live``'s *sustained* (``bench_live.sustained``): a writer in another process inserts
as alice on a fixed schedule (one statement, one round trip, per message); bob's data layer runs in this
process with the chat open, a view probe and a monitor task that sleeps 5 ms and records how late it wakes
(event-loop stalls). Both variants run in one run, one after the other, each into a chat of its own,
against the same throwaway stack. Reported for each: commit → view p50/p99; commit → the push reaching the
app's code (``RealtimeManager._on_push``: the gateway's share, plus the socket and, for the library, its
parsing of the frames before); push → view (the app's); the loop stalls; lost and reordered. Also the
load average at the start and end of each, whether the writer kept its rate (a run where it did not says
so), and how much WAL each poll of the gateway's change capture decodes again (its slot's
``confirmed_flush_lsn - restart_lsn``, sampled every 0.5 s). Goals (issue 13): commit → view p99 ≤ 50 ms,
stalls ≤ 16 ms, 0 lost.

``full_collection``: what a full collection of the garbage collector stalls the loop for in this process
with bob signed in, with the long-lived heap left to the collector against frozen (as ``ChatStore`` does
while a session is open: ``hold_long_lived``), median of 5 each, side by side. ``BENCH_STREAM_TRACE=1``
also names, for each variant, the event-loop callbacks that used 2 ms of CPU or more and the collections by
generation (``bench.loop_trace``), to tell a long callback from a collection or a wait for a core.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg

from bench.bench_live import BOB_EMAIL, SUSTAINED_RATE, Clients, new_chat, sustained
from bench.loop_trace import LoopTrace
from desktop_chat.dal import live
from desktop_chat.realtime import inbox, manager
from devstack.throwaway import throwaway_stack

VARIANTS = {"library": False, "tap": True}
"""Variant → ``manager.TAP_BROADCASTS``; both hand the pushes to ``PushInbox`` (``inbox.PUSH_SLICE``)."""
SLOT_SAMPLE_SECONDS = 0.5
COLLECTIONS = 5
TRACE = os.environ.get("BENCH_STREAM_TRACE") == "1"


def _load() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


class SlotSampler:
    """Samples the gateway's replication slot: the WAL between its restart point and what it confirmed,
    which every ``pg_logical_slot_peek_changes`` decodes again before it reaches anything new."""

    def __init__(self, db_url: str) -> None:
        self._db_url = db_url
        self.lag_bytes: list[int] = []
        self.wal_bytes_per_s: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> SlotSampler:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="slot-sampler")
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        conn = await asyncpg.connect(self._db_url)
        try:
            last: tuple[float, int] | None = None
            while True:
                row = await conn.fetchrow(
                    "select pg_catalog.pg_wal_lsn_diff(confirmed_flush_lsn, restart_lsn)::bigint as lag,"
                    " pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), '0/0')::bigint as at"
                    " from pg_catalog.pg_replication_slots where slot_name like 'devstack\\_realtime\\_%'"
                    " order by restart_lsn desc limit 1"
                )
                now = time.perf_counter()
                if row is not None and row["lag"] is not None:
                    self.lag_bytes.append(int(row["lag"]))
                    if last is not None:
                        self.wal_bytes_per_s.append((row["at"] - last[1]) / (now - last[0]))
                    last = (now, int(row["at"]))
                await asyncio.sleep(SLOT_SAMPLE_SECONDS)
        finally:
            await conn.close()

    def figures(self) -> dict[str, Any]:
        if not self.lag_bytes:
            return {"samples": 0}
        mib = 1024 * 1024
        return {
            "samples": len(self.lag_bytes),
            "redecoded_per_poll_p50_mib": round(statistics.median(self.lag_bytes) / mib, 2),
            "redecoded_per_poll_max_mib": round(max(self.lag_bytes) / mib, 2),
            "wal_written_p50_mib_per_s": round(statistics.median(self.wal_bytes_per_s) / mib, 2)
            if self.wal_bytes_per_s
            else None,
        }


def _full_collections(count: int = COLLECTIONS) -> dict[str, Any]:
    """Full collections timed with the heap left to the collector, then frozen; median and max in ms."""

    def timed() -> list[float]:
        gc.collect()  # what is garbage now goes first: the timed ones walk what stays
        pauses = []
        for _ in range(count):
            started = time.perf_counter()
            gc.collect()
            pauses.append((time.perf_counter() - started) * 1000)
        return pauses

    frozen_before = gc.get_freeze_count()
    gc.unfreeze()
    try:
        tracked = len(gc.get_objects())
        unfrozen = timed()
        gc.freeze()
        frozen = timed()
    finally:
        gc.unfreeze()
        if frozen_before:
            gc.freeze()
    return {
        "tracked_objects": tracked,
        "unfrozen_p50_ms": round(statistics.median(unfrozen), 2),
        "unfrozen_max_ms": round(max(unfrozen), 2),
        "frozen_p50_ms": round(statistics.median(frozen), 2),
        "frozen_max_ms": round(max(frozen), 2),
    }


async def _run(info: dict[str, Any], home: Path) -> dict[str, Any]:
    clients = Clients(info, home)
    default = manager.TAP_BROADCASTS
    db_url = str(info["db_url"])
    try:
        owner, alice_id = await clients.owner()
        chats = {name: await new_chat(owner, None, f"stream {name}") for name in VARIANTS}
        await clients.close(owner)
        figures: dict[str, Any] = {}
        for name, tap in VARIANTS.items():
            manager.TAP_BROADCASTS = tap  # read when bob's realtime manager makes its socket
            started = time.perf_counter()
            load_start = _load()
            trace = LoopTrace() if TRACE else None
            async with SlotSampler(db_url) as slot:
                result = await sustained(
                    clients, db_url, alice_id, chats[name], home / f"writer-{name}.json", trace=trace
                )
            if trace is not None:
                result["loop_trace"] = trace.figures()
            result["load_average_start"] = load_start
            result["load_average_end"] = _load()
            result["gateway_slot"] = slot.figures()
            figures[name] = result
            print(
                f"   {name} done in {time.perf_counter() - started:.1f} s (load {load_start} → {_load()})", flush=True
            )
            if not result["writer_reached_rate"]:
                print(
                    f"   NOTE: the writer reached only {result['achieved_insert_rate_per_s']} of {SUSTAINED_RATE}"
                    " inserts/s in this variant: its figures are for that lower rate",
                    flush=True,
                )
        figures["summary"] = {
            name: {
                "writer_rate_per_s": figures[name]["achieved_insert_rate_per_s"],
                "writer_reached_rate": figures[name]["writer_reached_rate"],
                "load_average_start_end": [
                    figures[name]["load_average_start"][0],
                    figures[name]["load_average_end"][0],
                ],
                "commit_to_view_p50_ms": figures[name]["commit_to_view"]["p50_ms"],
                "commit_to_view_p99_ms": figures[name]["commit_to_view"]["p99_ms"],
                "commit_to_push_p50_ms": figures[name]["commit_to_bob_push"]["p50_ms"],
                "commit_to_push_p99_ms": figures[name]["commit_to_bob_push"]["p99_ms"],
                "push_to_view_p50_ms": figures[name]["bob_push_to_view"]["p50_ms"],
                "push_to_view_p99_ms": figures[name]["bob_push_to_view"]["p99_ms"],
                "loop_stall_max_ms": figures[name]["loop_stall"]["max_ms"],
                "loop_stall_p99_ms": figures[name]["loop_stall"]["p99_ms"],
                "loop_stall_max_runqueue_wait_ms": figures[name]["loop_stall"].get("max_stall_runqueue_wait_ms"),
                "loop_stall_without_runqueue_wait_max_ms": figures[name]["loop_stall"].get(
                    "stall_without_runqueue_wait_max_ms"
                ),
                "gc_pause_max_ms": figures[name]["gc_pauses"]["max_ms"],
                "lost": figures[name].get("lost"),
            }
            for name in VARIANTS
        }
        bob = await clients.open("bob-collections", BOB_EMAIL)
        await clients.sign_in(bob, BOB_EMAIL)
        figures["full_collection"] = _full_collections()
        await clients.close(bob)
        print(f"   full collection: {figures['full_collection']}", flush=True)
        figures["push_slice_ms"] = inbox.PUSH_SLICE * 1000
        figures["apply_slice"] = live.APPLY_SLICE
        figures["load_average_end"] = _load()
        return figures
    finally:
        manager.TAP_BROADCASTS = default
        await clients.close_all()


def run() -> dict[str, Any]:
    with throwaway_stack() as (_, info), tempfile.TemporaryDirectory(prefix="bench-stream-") as tmp:
        return asyncio.run(_run(info, Path(tmp)))
