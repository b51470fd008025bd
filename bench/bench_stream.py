"""stream: 200 messages/s into one open chat for 30 s, with the realtime pushes handled inline (as the
library calls back, the old way) and through ``PushInbox`` (handled in slices that give the loop back).

The phase is ``bench live``'s *sustained* (``bench_live.sustained``): a writer in another process inserts
as alice on a fixed schedule; bob's data layer runs in this process with the chat open, a view probe and a
monitor task that sleeps 5 ms and records how late it wakes (event-loop stalls). Both variants run in one
run, one after the other, each into a chat of its own, against the same throwaway stack. Reported for
each: commit → view p50/p99, commit → bob's push (the gateway's share), bob's push → view (the app's),
the loop stalls, lost and reordered. Goals (issue 13): commit → view p99 ≤ 50 ms, stalls ≤ 16 ms, 0 lost.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench.bench_live import ALICE_EMAIL, Clients, new_chat, sustained
from desktop_chat.realtime import inbox
from devstack.throwaway import throwaway_stack

VARIANTS = {"inline": None, "inbox": inbox.PUSH_SLICE}


async def _run(info: dict[str, Any], home: Path) -> dict[str, Any]:
    clients = Clients(info, home)
    default = inbox.PUSH_SLICE
    try:
        owner = await clients.open("alice", ALICE_EMAIL)
        await clients.sign_in(owner, ALICE_EMAIL)
        me = owner.store.current_user
        assert me is not None
        alice_id = uuid.UUID(str(me.id))
        chats = {name: await new_chat(owner, None, f"stream {name}") for name in VARIANTS}
        await clients.close(owner)
        figures: dict[str, Any] = {}
        for name, slice_seconds in VARIANTS.items():
            inbox.PUSH_SLICE = slice_seconds  # read when bob's realtime manager makes its inbox
            started = time.perf_counter()
            figures[name] = await sustained(
                clients, str(info["db_url"]), alice_id, chats[name], home / f"writer-{name}.json"
            )
            print(f"   {name} done in {time.perf_counter() - started:.1f} s", flush=True)
        figures["summary"] = {
            name: {
                "commit_to_view_p50_ms": figures[name]["commit_to_view"]["p50_ms"],
                "commit_to_view_p99_ms": figures[name]["commit_to_view"]["p99_ms"],
                "commit_to_push_p99_ms": figures[name]["commit_to_bob_push"]["p99_ms"],
                "push_to_view_p99_ms": figures[name]["bob_push_to_view"]["p99_ms"],
                "loop_stall_max_ms": figures[name]["loop_stall"]["max_ms"],
                "loop_stall_p99_ms": figures[name]["loop_stall"]["p99_ms"],
                "lost": figures[name].get("lost"),
            }
            for name in VARIANTS
        }
        figures["push_slice_ms"] = default * 1000 if default is not None else None
        return figures
    finally:
        inbox.PUSH_SLICE = default
        await clients.close_all()


def run() -> dict[str, Any]:
    with throwaway_stack() as (_, info), tempfile.TemporaryDirectory(prefix="bench-stream-") as tmp:
        return asyncio.run(_run(info, Path(tmp)))
