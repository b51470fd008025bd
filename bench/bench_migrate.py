"""chat-migrate on a legacy store of 1,000,000 messages in 10,000 rooms with 2,000 users.

The store is written by the test suite's legacy fixture generator (the server's exact bytes, pipelined)
into a redis-server of its own; the database is a throwaway stack's (no gateway, so no realtime slot
decoding the load). ``chat-migrate run`` runs as a separate process, as an operator runs it, so its wall
time includes start-up and its peak RSS is its own (``wait4``). Each of the three rounds is
run → no-op re-run → rollback; verify runs once after the last round.

The floor, measured in the same process run on the same machine: the very rows the migration wrote
(read back from ``chat_messages``), sent with a bare binary ``COPY`` into a table of the same columns
without any index, constraint or trigger. The run's own split (survey, users, rooms, and of the rooms the
time waiting for the database) shows where the rest of the time goes. Goals (issue 15): run ≤ 60 s,
≥ 30 % of the floor's rate, peak RSS ≤ 300 MB, no-op re-run ≤ 10 s, verify ≤ 30 s.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

import asyncpg

from devstack.config import REPO_ROOT
from devstack.throwaway import throwaway_stack
from tests.legacy.generate import generate
from tests.legacy.server import legacy_redis

USERS = 2_000
ROOMS = 10_000
MESSAGES = 1_000_000
ROUNDS = 3
FLOOR_CHUNK = 20_000


def chat_migrate(env: dict[str, str], *args: str) -> tuple[float, float, dict[str, Any]]:
    """Run the CLI; (wall seconds, peak RSS in MB, its --json summary)."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "chat_migrate", *args, "--json", "--quiet"],
        cwd=REPO_ROOT,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    out = process.stdout.read()
    err = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    if process.returncode not in (0, 1):
        raise RuntimeError(f"chat-migrate {args[0]} exited {process.returncode}: {err.decode()[-2000:]}")
    return wall, usage.ru_maxrss / 1024, json.loads(out)


async def floor(db_url: str) -> tuple[list[float], float]:
    """Seconds to COPY the migrated rows into an unindexed table (three times), and once into a table with
    chat_messages' indexes and checks but without its foreign keys (what per-row key checks cost)."""
    conn = await asyncpg.connect(db_url)
    try:
        rows = await conn.fetch(
            "select id, session_id, sender_id, content, created_at, seq, rev from public.chat_messages"
            " where session_id in (select session_id from chat_migrate.chats) order by session_id, seq"
        )
        records = [tuple(row) for row in rows]
        del rows
        columns = ["id", "session_id", "sender_id", "content", "created_at", "seq", "rev"]
        times = []
        for _ in range(ROUNDS):
            await conn.execute("drop table if exists bench_floor; create table bench_floor (like public.chat_messages)")
            started = time.perf_counter()
            for start in range(0, len(records), FLOOR_CHUNK):
                await conn.copy_records_to_table(
                    "bench_floor", records=records[start : start + FLOOR_CHUNK], columns=columns
                )
            times.append(time.perf_counter() - started)
        await conn.execute(
            "drop table bench_floor; create table bench_indexed (like public.chat_messages including all)"
        )
        started = time.perf_counter()
        for start in range(0, len(records), FLOOR_CHUNK):
            await conn.copy_records_to_table(
                "bench_indexed", records=records[start : start + FLOOR_CHUNK], columns=columns
            )
        indexed = time.perf_counter() - started
        await conn.execute("drop table bench_indexed")
        return times, indexed
    finally:
        await conn.close()


def run() -> dict[str, Any]:
    with legacy_redis() as server, throwaway_stack(gateway=False) as (_, info):
        started = time.perf_counter()
        generate(server.client(), users=USERS, rooms=ROOMS, messages=MESSAGES)
        generate_s = time.perf_counter() - started
        redis_mb = server.client().info("memory")["used_memory"] / 2**20
        env = {"CHAT_MIGRATE_REDIS_URL": server.url, "CHAT_MIGRATE_DB_URL": str(info["db_url"])}
        args = ("--email-domain", "legacy.example")
        runs: list[float] = []
        rss: list[float] = []
        noop: list[float] = []
        rollbacks: list[float] = []
        floors: list[float] = []
        indexed_s = 0.0
        timings: list[dict[str, float]] = []
        verify_s = 0.0
        verify_ok = False
        for round_ in range(ROUNDS):
            wall, peak, summary = chat_migrate(env, "run", *args)
            assert summary["created"]["messages"] == MESSAGES, summary
            loaded = int(summary["run"])
            summary_timings = summary["timings_s"]
            runs.append(wall)
            rss.append(peak)
            wall, peak, summary = chat_migrate(env, "run", *args)
            assert summary["created"]["messages"] == 0, summary
            noop.append(wall)
            rss.append(peak)
            timings.append(summary_timings)
            if round_ == ROUNDS - 1:
                verify_s, peak, summary = chat_migrate(env, "verify")
                verify_ok = bool(summary["ok"])
                rss.append(peak)
                # Last, so that no measured process is forked from this one holding a million rows:
                # Linux carries the parent's peak RSS over into the child's ru_maxrss.
                floors, indexed_s = asyncio.run(floor(str(info["db_url"])))
            wall, _, summary = chat_migrate(env, "rollback", "--run", str(loaded))
            rollbacks.append(wall)
    run_s = statistics.median(runs)
    floor_s = statistics.median(floors)
    ratio = floor_s / run_s
    return {
        "store": {
            "users": USERS,
            "rooms": ROOMS,
            "messages": MESSAGES,
            "generate_s": round(generate_s, 1),
            "redis_used_memory_mb": round(redis_mb),
        },
        "run": {
            "rounds": ROUNDS,
            "wall_s_median": round(run_s, 2),
            "all_wall_s": [round(v, 2) for v in runs],
            "messages_per_s": round(MESSAGES / run_s),
        },
        "floor_bare_copy": {
            "wall_s_median": round(floor_s, 2),
            "all_wall_s": [round(v, 2) for v in floors],
            "rows_per_s": round(MESSAGES / floor_s),
        },
        "rate_vs_floor": round(ratio, 3),
        "copy_into_indexed_table_without_foreign_keys_s": round(indexed_s, 2),
        "ceiling_vs_floor_with_indexes_alone": round(floor_s / indexed_s, 3),
        "run_timings_s_median": {key: round(statistics.median(t[key] for t in timings), 2) for key in timings[0]},
        "peak_rss_mb_max": round(max(rss)),
        "noop_rerun_s_median": round(statistics.median(noop), 2),
        "verify_s": round(verify_s, 2),
        "verify_ok": verify_ok,
        "rollback_s_median": round(statistics.median(rollbacks), 2),
        "goals": {
            "run_le_60s": run_s <= 60,
            "rate_ge_30pct_of_floor": ratio >= 0.30,
            "peak_rss_le_300mb": max(rss) <= 300,
            "noop_rerun_le_10s": statistics.median(noop) <= 10,
            "verify_le_30s": verify_s <= 30,
        },
        "note": (
            "wall times of `python -m chat_migrate` as a process (interpreter start included); each round is"
            " run, no-op re-run, rollback; the floor copies the same rows the run wrote, bare, in the same run"
        ),
    }
