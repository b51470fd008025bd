"""backfill: the event loop while 1,000 missed messages are back-filled after a reconnect, with live sync
applying them in slices (``APPLY_SLICE`` changes, then the loop is given back) against all at once.

``bench live``'s *back-fill* phase (``bench_live.backfill``): bob has the chat open, the gateway is stopped,
alice inserts 1,000 messages straight into PostgreSQL, the gateway starts again, and bob's data layer
back-fills them (``changes_since``, pages of ``BACKFILL_BATCH``) while a monitor task records how late its
5 ms sleeps wake (loop stalls) and the loop thread's CPU between two wake-ups. The two variants alternate,
``ROUNDS`` each, in one run against one throwaway stack, each round into a chat of its own; only
``live.APPLY_SLICE`` differs (a slice larger than any page applies each page at once, as before slicing).
Reported per variant: stall max and p99 and the longest CPU between wake-ups (median over the rounds, and
the worst), start → all shown, and lost / duplicated / out of order (must be 0).
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
from pathlib import Path
from typing import Any

from bench.bench_live import Clients, backfill, new_chat
from desktop_chat.dal import live
from devstack.stack import Stack
from devstack.throwaway import throwaway_stack

ROUNDS = 3
WHOLE = 1_000_000
VARIANTS = {"whole": WHOLE, "sliced": live.APPLY_SLICE}


async def _run(stack: Stack, info: dict[str, Any], home: Path) -> dict[str, Any]:
    clients = Clients(info, home)
    default = live.APPLY_SLICE
    try:
        owner, alice_id = await clients.owner()
        chats = [await new_chat(owner, None, f"back-fill {n}") for n in range(ROUNDS * len(VARIANTS))]
        await clients.close(owner)
        rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in VARIANTS}
        for index, chat in enumerate(chats):
            name = list(VARIANTS)[index % len(VARIANTS)]
            live.APPLY_SLICE = VARIANTS[name]
            result = await backfill(clients, stack, str(info["db_url"]), alice_id, chat)
            rounds[name].append(result)
            stall = result["loop_stall_while_reconnecting_and_back_filling"]
            print(
                f"   {name}: stall max {stall['max_ms']} ms, longest CPU {stall['longest_cpu_between_wakeups_ms']} ms,"
                f" lost {result['lost']}",
                flush=True,
            )
        summary = {}
        for name, results in rounds.items():
            stalls = [r["loop_stall_while_reconnecting_and_back_filling"] for r in results]
            summary[name] = {
                "apply_slice": VARIANTS[name],
                "stall_max_ms_median": statistics.median(s["max_ms"] for s in stalls),
                "stall_max_ms_worst": max(s["max_ms"] for s in stalls),
                "stall_p99_ms_median": statistics.median(s["p99_ms"] for s in stalls),
                "longest_cpu_between_wakeups_ms_median": statistics.median(
                    s["longest_cpu_between_wakeups_ms"] for s in stalls
                ),
                "longest_cpu_between_wakeups_ms_worst": max(s["longest_cpu_between_wakeups_ms"] for s in stalls),
                "start_to_all_shown_ms_median": statistics.median(r["start_to_all_shown_ms"] for r in results),
                "lost": sum(r["lost"] for r in results),
                "duplicates": sum(r["duplicates"] for r in results),
                "out_of_order": sum(r["out_of_order"] for r in results),
            }
        return {"rounds": ROUNDS, "summary": summary, "runs": rounds}
    finally:
        live.APPLY_SLICE = default
        await clients.close_all()


def run() -> dict[str, Any]:
    with throwaway_stack() as (stack, info), tempfile.TemporaryDirectory(prefix="bench-backfill-") as tmp:
        return asyncio.run(_run(stack, info, Path(tmp)))
