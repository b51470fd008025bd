"""The REST gateway against PostgreSQL itself: "newest 50 messages of a chat", side by side.

A throwaway stack holds one chat with thousands of messages (among other chats). A signed-in member
asks for the newest 50 through the official async client (``.select("*").eq("session_id", id)
.order("seq", desc=True).limit(50)``); the same query also runs directly with asyncpg in the same
process, as the member (``set_config`` of role and claims in a transaction, as the gateway does it),
and once more as a raw HTTP request without the client library. The three are interleaved, in a
rotating order, so that machine noise falls on all of them alike.

A second section (``writers``, also ``run_writers()`` on its own) measures sends: 1, 4 and 16 writers into
one chat against 16 writers into 16 chats, each send the app's idempotent insert through the official
client, rounds in rotating order. A message insert locks its chat's row until the transaction ends, so the
gap between the statement and its COMMIT is what writers into one chat queue on.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import httpx
from supabase import AsyncClient, AsyncClientOptions, acreate_client

from bench.stats import summary_ms
from devstack.throwaway import throwaway_stack

MESSAGES = 5000
OTHER_CHATS = 200
OTHER_CHAT_MESSAGES = 20
WARMUP = 50
RUNS = 500
BATCH = 1000
PASSWORD = "bench-password"
QUERY = "select * from public.chat_messages where session_id = $1 order by seq desc limit 50"
SET_CALLER = "select set_config('role', $1, true), set_config('request.jwt.claims', $2, true)"


async def _fill(db_url: str, member: uuid.UUID) -> uuid.UUID:
    conn = await asyncpg.connect(db_url)
    try:
        chats = [uuid.uuid4() for _ in range(OTHER_CHATS + 1)]
        await conn.executemany(
            "insert into public.chat_sessions (id, title, created_by) values ($1, $2, $3)",
            [(chat, f"bench chat {i}", member) for i, chat in enumerate(chats)],
        )
        big = chats[0]
        # In batches: every insert bumps the chat row, and one long transaction of that gets slow.
        for start in range(0, MESSAGES, BATCH):
            await conn.execute(
                "insert into public.chat_messages (session_id, sender_id, content)"
                " select $1, $2, 'message number ' || g from generate_series($3::int, $4::int) g",
                big,
                member,
                start + 1,
                min(start + BATCH, MESSAGES),
            )
        await conn.execute(
            "insert into public.chat_messages (session_id, sender_id, content)"
            " select c, $2, 'hello ' || g from unnest($1::uuid[]) c, generate_series(1, $3) g",
            chats[1:],
            member,
            OTHER_CHAT_MESSAGES,
        )
        await conn.execute("analyze")
        return big
    finally:
        await conn.close()


async def _measure(info: dict[str, Any]) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=30) as http:
        client: AsyncClient = await acreate_client(
            info["api_url"], info["anon_key"], AsyncClientOptions(httpx_client=http, auto_refresh_token=False)
        )
        email = f"bench-{uuid.uuid4().hex[:8]}@example.com"
        signed_up = await client.auth.sign_up({"email": email, "password": PASSWORD})
        assert signed_up.session is not None and signed_up.user is not None
        member = uuid.UUID(signed_up.user.id)
        token = signed_up.session.access_token
        fill_started = time.perf_counter()
        chat = await _fill(info["db_url"], member)
        fill_s = time.perf_counter() - fill_started

        direct = await asyncpg.connect(str(info["db_url"]).replace("postgres:postgres@", "authenticator:postgres@"))
        claims = json.dumps({"sub": str(member), "role": "authenticated", "aud": "authenticated"})
        raw_headers = {"apikey": info["anon_key"], "Authorization": f"Bearer {token}", "Accept-Profile": "public"}
        raw_params = {"select": "*", "session_id": f"eq.{chat}", "order": "seq.desc", "limit": "50"}

        async def through_client() -> int:
            response = await (
                client.table("chat_messages")
                .select("*")
                .eq("session_id", str(chat))
                .order("seq", desc=True)
                .limit(50)
                .execute()
            )
            return len(response.data)

        async def through_asyncpg() -> int:
            async with direct.transaction():
                await direct.execute(SET_CALLER, "authenticated", claims)
                rows = await direct.fetch(QUERY, chat)
            return len(rows)

        async def through_http() -> int:
            response = await http.get(f"{info['rest_url']}/chat_messages", params=raw_params, headers=raw_headers)
            response.raise_for_status()
            return len(response.json())

        paths: dict[str, Callable[[], Awaitable[int]]] = {
            "client": through_client,
            "asyncpg": through_asyncpg,
            "raw_http": through_http,
        }
        times: dict[str, list[float]] = {name: [] for name in paths}
        names = list(paths)
        for run in range(WARMUP + RUNS):
            # Rotate who goes first, so no path always follows another one's cache effects.
            for name in names[run % 3 :] + names[: run % 3]:
                started = time.perf_counter()
                rows = await paths[name]()
                elapsed = time.perf_counter() - started
                assert rows == 50, (name, rows)
                if run >= WARMUP:
                    times[name].append(elapsed)
        await direct.close()

    summaries = {name: summary_ms(values) for name, values in times.items()}
    return {
        "query": ".select('*').eq('session_id', id).order('seq', desc=True).limit(50)",
        "messages_in_chat": MESSAGES,
        "messages_total": MESSAGES + OTHER_CHATS * OTHER_CHAT_MESSAGES,
        "fill_s": round(fill_s, 1),
        "client": summaries["client"],
        "asyncpg": summaries["asyncpg"],
        "raw_http": summaries["raw_http"],
        "client_p50_ms": summaries["client"]["p50_ms"],
        "asyncpg_p50_ms": summaries["asyncpg"]["p50_ms"],
        "ratio_p50": round(summaries["client"]["p50_ms"] / summaries["asyncpg"]["p50_ms"], 2),
        "ratio_p99": round(summaries["client"]["p99_ms"] / summaries["asyncpg"]["p99_ms"], 2),
        "goal": "client p50 within 3x of asyncpg p50",
        "note": (
            "asyncpg: BEGIN, set_config(role, claims), the query (rows decoded by asyncpg), COMMIT on one "
            "connection as `authenticator`; client: the official supabase client (httpx, HTTP/1.1 keep-alive) "
            "through the gateway, JSON decoded (the gateway sets role and claims, then runs the read as one "
            "statement that commits in its own round trip); "
            "raw_http: the same request with httpx alone"
        ),
    }


def run() -> dict[str, Any]:
    with throwaway_stack() as (_, info):
        figures = asyncio.run(_measure(info))
    figures["writers"] = run_writers()
    figures["lock_held"] = run_lock_probe()
    return figures


# --- Writers: how a hot chat's row lock limits sends through the gateway ------------------------------------
#
# Every message insert locks its chat's row (the seq/rev trigger) until COMMIT. When the gateway sends COMMIT
# as a round trip of its own, the lock is held across that round trip and writers into one chat queue behind
# each other; 16 chats spread the same load over 16 locks. Each writer sends the app's idempotent insert
# (``upsert(..., on_conflict="id,session_id", ignore_duplicates=True)``) through the official client, one at a time.

WRITER_MESSAGES = 120
WRITER_ROUNDS = 3
WRITER_SCENARIOS: tuple[tuple[str, int, int], ...] = (
    ("1 writer, 1 chat", 1, 1),
    ("4 writers, 1 chat", 4, 1),
    ("16 writers, 1 chat", 16, 1),
    ("16 writers, 16 chats", 16, 16),
)


async def _writer_chats(db_url: str, owner: uuid.UUID, count: int) -> list[uuid.UUID]:
    conn = await asyncpg.connect(db_url)
    try:
        chats = [uuid.uuid4() for _ in range(count)]
        await conn.executemany(
            "insert into public.chat_sessions (id, title, created_by) values ($1, $2, $3)",
            [(chat, f"writers {i}", owner) for i, chat in enumerate(chats)],
        )
        return chats
    finally:
        await conn.close()


async def _measure_writers(info: dict[str, Any]) -> dict[str, Any]:
    # Idle connections are dropped before uvicorn's 5 s keep-alive ends, so no send races a server-side close.
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64, keepalive_expiry=2.0)
    async with httpx.AsyncClient(timeout=60, limits=limits) as http:
        client: AsyncClient = await acreate_client(
            info["api_url"], info["anon_key"], AsyncClientOptions(httpx_client=http, auto_refresh_token=False)
        )
        email = f"bench-writer-{uuid.uuid4().hex[:8]}@example.com"
        signed_up = await client.auth.sign_up({"email": email, "password": PASSWORD})
        assert signed_up.user is not None
        owner = uuid.UUID(signed_up.user.id)

        async def writer(chat: uuid.UUID, latencies: list[float]) -> None:
            for i in range(WRITER_MESSAGES):
                row = {"id": str(uuid.uuid4()), "session_id": str(chat), "content": f"message {i}"}
                started = time.perf_counter()
                response = await (
                    client.table("chat_messages")
                    .upsert(row, on_conflict="id,session_id", ignore_duplicates=True)
                    .execute()
                )
                latencies.append(time.perf_counter() - started)
                assert len(response.data) == 1

        rates: dict[str, list[float]] = {name: [] for name, _, _ in WRITER_SCENARIOS}
        latencies: dict[str, list[float]] = {name: [] for name, _, _ in WRITER_SCENARIOS}
        for round_ in range(WRITER_ROUNDS):
            # Rotate the order, so no scenario always runs first (cold) or last (warm, bloated tables).
            order = list(WRITER_SCENARIOS[round_ % 4 :] + WRITER_SCENARIOS[: round_ % 4])
            for name, writers, chat_count in order:
                chats = await _writer_chats(info["db_url"], owner, chat_count)
                started = time.perf_counter()
                await asyncio.gather(*(writer(chats[w % chat_count], latencies[name]) for w in range(writers)))
                elapsed = time.perf_counter() - started
                rates[name].append(writers * WRITER_MESSAGES / elapsed)

    figures: dict[str, Any] = {}
    for name, _, _ in WRITER_SCENARIOS:
        figures[name] = {
            "messages_per_s": round(statistics.median(rates[name]), 1),
            "rounds_messages_per_s": [round(rate, 1) for rate in rates[name]],
            **summary_ms(latencies[name]),
        }
    single = figures["1 writer, 1 chat"]["messages_per_s"]
    hot = figures["16 writers, 1 chat"]["messages_per_s"]
    spread = figures["16 writers, 16 chats"]["messages_per_s"]
    figures["hot_chat_vs_single_writer"] = round(hot / single, 2)
    figures["hot_chat_vs_16_chats"] = round(hot / spread, 2)
    figures["note"] = (
        f"{WRITER_MESSAGES} sends per writer, {WRITER_ROUNDS} rounds in rotating order; messages_per_s is the "
        "median round, latencies pool all rounds. Each send is the app's idempotent insert through the official "
        "client and the gateway; client, gateway and PostgreSQL share the machine."
    )
    return figures


def run_writers() -> dict[str, Any]:
    with throwaway_stack() as (_, info):
        return asyncio.run(_measure_writers(info))


# --- How long a send holds its chat's row lock ---------------------------------------------------------------
#
# One writer sends back to back through the official client while a probe on its own connection asks, again
# and again, whether the chat row can be share-locked right now (``for share nowait``). The share of refused
# probes is the share of time the row was locked: the insert statement and its commit, plus whatever lies
# between them (a COMMIT sent as a round trip of its own waits for the gateway's event loop and the network).

PROBE_SENDS = 400


async def _measure_lock_held(info: dict[str, Any]) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=60) as http:
        client: AsyncClient = await acreate_client(
            info["api_url"], info["anon_key"], AsyncClientOptions(httpx_client=http, auto_refresh_token=False)
        )
        signed_up = await client.auth.sign_up(
            {"email": f"bench-probe-{uuid.uuid4().hex[:8]}@example.com", "password": PASSWORD}
        )
        assert signed_up.user is not None
        [chat] = await _writer_chats(info["db_url"], uuid.UUID(signed_up.user.id), 1)
        probe = await asyncpg.connect(info["db_url"])
        counts = {"held": 0, "free": 0}
        done = asyncio.Event()

        async def probing() -> None:
            while not done.is_set():
                try:
                    await probe.fetchval(
                        "select exists (select from public.chat_sessions where id = $1 for share nowait)", chat
                    )
                    counts["free"] += 1
                except asyncpg.LockNotAvailableError:
                    counts["held"] += 1
                await asyncio.sleep(0)

        prober = asyncio.create_task(probing())
        started = time.perf_counter()
        for i in range(PROBE_SENDS):
            row = {"id": str(uuid.uuid4()), "session_id": str(chat), "content": f"probe {i}"}
            await (
                client.table("chat_messages").upsert(row, on_conflict="id,session_id", ignore_duplicates=True).execute()
            )
        elapsed = time.perf_counter() - started
        done.set()
        await prober
        await probe.close()
    probes = counts["held"] + counts["free"]
    return {
        "sends": PROBE_SENDS,
        "sends_per_s": round(PROBE_SENDS / elapsed, 1),
        "probes": probes,
        "locked_share_pct": round(100 * counts["held"] / probes, 2),
        "locked_ms_per_send": round(elapsed * 1000 * counts["held"] / probes / PROBE_SENDS, 3),
    }


def run_lock_probe() -> dict[str, Any]:
    with throwaway_stack() as (_, info):
        return asyncio.run(_measure_lock_held(info))
