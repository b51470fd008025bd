"""devstack: ``up`` from cold and from warm, and the plan and time of "newest 50 messages of a chat".

The query runs as a member, exactly as the REST gateway would run it (role ``authenticated`` plus JWT
claims), on a chat with 100,000 messages among 1,000 chats.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg

from bench.stats import summary_ms
from devstack.config import REPO_ROOT, StackConfig
from devstack.stack import Stack
from devstack.throwaway import throwaway_config, throwaway_stack

RUNS = 3
CHATS = 1000
BIG_CHAT_MESSAGES = 100_000
OTHER_CHAT_MESSAGES = 20
QUERY_RUNS = 50
BATCH = 1000


def _cli(config: StackConfig, *args: str) -> float:
    env = {
        "DEVSTACK_DB_PORT": str(config.db_port),
        "DEVSTACK_REDIS_PORT": str(config.redis_port),
        "DEVSTACK_API_PORT": str(config.api_port),
    }
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "devstack", "--state-dir", str(config.state_dir), *args],
        check=True,
        capture_output=True,
        cwd=REPO_ROOT,
        env={**os.environ, **env},
        timeout=300,
    )
    return time.perf_counter() - started


def measure_up() -> dict[str, Any]:
    cold, warm, hot = [], [], []
    for _ in range(RUNS):
        state_dir = Path(tempfile.mkdtemp(prefix="bench-devstack-"))
        config = throwaway_config(state_dir, ephemeral=False)
        try:
            cold.append(_cli(config, "up"))  # nothing exists: initdb, migrations, seed, start all
            hot.append(_cli(config, "up"))  # everything runs: the idempotent no-op
            _cli(config, "down")
            warm.append(_cli(config, "up"))  # cluster exists, services stopped
        finally:
            Stack(config).destroy()
            shutil.rmtree(state_dir, ignore_errors=True)
    return {
        "runs": RUNS,
        "cold_up_s": round(statistics.median(cold), 3),
        "warm_up_s": round(statistics.median(warm), 3),
        "already_up_s": round(statistics.median(hot), 3),
        "all_cold_s": [round(v, 3) for v in cold],
        "all_warm_s": [round(v, 3) for v in warm],
        "note": "wall time of `python -m devstack up` (interpreter start included), gateway included",
    }


async def _fill(conn: asyncpg.Connection) -> tuple[uuid.UUID, uuid.UUID]:
    owner = uuid.uuid4()
    await conn.execute(
        "insert into auth.users (id, aud, role, email) values ($1, 'authenticated', 'authenticated', $2)",
        owner,
        f"bench-{owner.hex[:8]}@example.com",
    )
    chats = [uuid.uuid4() for _ in range(CHATS)]
    await conn.executemany(
        "insert into public.chat_sessions (id, title, created_by) values ($1, $2, $3)",
        [(chat, f"chat {i}", owner) for i, chat in enumerate(chats)],
    )
    big = chats[0]
    # In batches: each insert takes the chat row's lock and bumps its counters, and one transaction
    # that bumps the same row n times walks an n-long chain of row versions (see docs/architecture.md).
    for start in range(0, BIG_CHAT_MESSAGES, BATCH):
        await conn.execute(
            "insert into public.chat_messages (session_id, sender_id, content)"
            " select $1, $2, 'message number ' || g from generate_series($3::int, $4::int) g",
            big,
            owner,
            start + 1,
            min(start + BATCH, BIG_CHAT_MESSAGES),
        )
    await conn.execute(
        "insert into public.chat_messages (session_id, sender_id, content)"
        " select c, $2, 'hello ' || g from unnest($1::uuid[]) c, generate_series(1, $3) g",
        chats[1:],
        owner,
        OTHER_CHAT_MESSAGES,
    )
    await conn.execute("analyze")
    return owner, big


def _node_types(plan: dict[str, Any]) -> list[str]:
    kinds = [str(plan["Node Type"])]
    for child in plan.get("Plans", []):
        kinds += _node_types(child)
    return kinds


async def measure_query(db_url: str) -> dict[str, Any]:
    conn = await asyncpg.connect(db_url)
    try:
        fill_started = time.perf_counter()
        owner, big = await _fill(conn)
        fill_s = time.perf_counter() - fill_started
        claims = json.dumps({"sub": str(owner), "role": "authenticated"})
        query = "select * from public.chat_messages where session_id = $1 order by seq desc limit 50"
        times, plans = [], []
        for _ in range(QUERY_RUNS):
            async with conn.transaction():
                await conn.execute(
                    "select set_config('role', 'authenticated', true), set_config('request.jwt.claims', $1, true)",
                    claims,
                )
                raw = await conn.fetchval(f"explain (analyze, buffers, format json) {query}", big)
            plan = json.loads(raw)[0]
            plans.append(plan)
            times.append(plan["Execution Time"] / 1000)
        text_plan = None
        async with conn.transaction():
            await conn.execute(
                "select set_config('role', 'authenticated', true), set_config('request.jwt.claims', $1, true)",
                claims,
            )
            rows = await conn.fetch(f"explain (analyze, costs off, timing off, summary off) {query}", big)
            text_plan = [row[0] for row in rows]
            count = len(await conn.fetch(query, big))
        nodes = _node_types(plans[-1]["Plan"])
        return {
            "chats": CHATS,
            "messages_in_chat": BIG_CHAT_MESSAGES,
            "messages_total": BIG_CHAT_MESSAGES + (CHATS - 1) * OTHER_CHAT_MESSAGES,
            "rows_returned": count,
            "fill_s": round(fill_s, 1),
            "execution": summary_ms(times),
            "uses_index": any("Index" in kind for kind in nodes),
            "seq_scan": any(kind == "Seq Scan" for kind in nodes),
            "plan": text_plan,
        }
    finally:
        await conn.close()


def run() -> dict[str, Any]:
    figures: dict[str, Any] = {"devstack_up": measure_up()}
    with throwaway_stack(gateway=False) as (_, info):
        figures["newest_50_messages"] = asyncio.run(measure_query(str(info["db_url"])))
    return figures
