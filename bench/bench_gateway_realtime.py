"""devstack gateway realtime: commit → callback latency and sustained fan-out, with the official client.

Ten clients (official async ``supabase`` client, one socket each) subscribe to every change of
``chat_messages``; row level security decides what each receives.

- Latency: 5 of the 10 are members of the chat written to. One message at a time is inserted as a
  member (RLS, like a REST insert); the clock starts when COMMIT returns to the writer and stops in
  each member's callback. The 5 others must receive nothing, which a control message at the end shows.
- Throughput: all 10 are members of 4 chats; 4 writers, one per chat, insert as fast as they can, each
  message in its own transaction. Every subscriber must get every message exactly once, and each
  chat's messages in ``seq`` (commit) order.
- Sustained (issue 13): a writer in another process inserts 200 messages/s into one chat (one transaction
  each, on a fixed schedule, committing asynchronously as throwaway stacks do); a raw V1 socket
  subscribed like the app (every event of its four tables, RLS deciding) times commit → push for each
  message. 30 s against this gateway and 30 s against the one of ``BASELINE_REV`` (before the capture
  read exactly up to its own flush and waited for commits to be visible, started from ``git archive``),
  in alternating 15 s phases on the same stack, one gateway running at a time (a second gateway's
  capture would flush the WAL for the first and hide its stalls).
- Fan-out under load (issue 10): 20 writers × 100 messages into one chat, 20 member subscribers (raw
  sockets, one claims group each), several runs: every subscriber must get all 2,000.

Writers and clients share one process and one event loop, on the same (shared, 2-core) machine as
PostgreSQL and the gateway: the figures include the client's own frame parsing.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import websockets
from realtime import RealtimePostgresChangesListenEvent, RealtimeSubscribeStates
from supabase import AsyncClient, acreate_client

from bench.stats import summary_ms
from devstack.gateway.jwt import issue_access_token
from devstack.procs import free_port, wait_for_port
from devstack.stack import Stack
from devstack.throwaway import throwaway_stack

SUBSCRIBERS = 10
VISIBLE = 5
LATENCY_MESSAGES = 1000
THROUGHPUT_MESSAGES = 2000
WRITERS = 4
TIMEOUT = 30.0

SUSTAINED_RATE = 200  # messages per second
SUSTAINED_SECONDS = 30
BASELINE_REV = "6c3f728"
"""The gateway before the fixes of issues 10 and 13 in the change capture, measured beside this one."""
APP_TABLES = ("chat_messages", "chat_sessions", "chat_members", "profiles")
FANOUT_WRITERS = 20
FANOUT_MESSAGES = 100  # per writer
FANOUT_SUBSCRIBERS = 20
FANOUT_RUNS = 5


class Subscriber:
    """One client socket with a channel on chat_messages; records (perf_counter, record) per push."""

    def __init__(self, client: AsyncClient) -> None:
        self.client = client
        self.received: list[tuple[float, dict[str, Any]]] = []
        self.waiters: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []

    def on_change(self, payload: Any) -> None:
        self.received.append((time.perf_counter(), payload["data"]["record"]))
        for predicate, future in list(self.waiters):
            if not future.done() and predicate():
                future.set_result(None)

    async def wait_for(self, count: int) -> None:
        if len(self.received) >= count:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (lambda: len(self.received) >= count, future)
        self.waiters.append(entry)
        try:
            await asyncio.wait_for(future, TIMEOUT)
        finally:
            self.waiters.remove(entry)


async def _users(conn: asyncpg.Connection, count: int) -> list[uuid.UUID]:
    users = [uuid.uuid4() for _ in range(count)]
    await conn.executemany(
        "insert into auth.users (id, aud, role, email) values ($1, 'authenticated', 'authenticated', $2)",
        [(user, f"bench-{user.hex[:8]}@example.com") for user in users],
    )
    return users


async def _chat(conn: asyncpg.Connection, owner: uuid.UUID, members: list[uuid.UUID]) -> uuid.UUID:
    chat = uuid.uuid4()
    await conn.execute("insert into public.chat_sessions (id, title, created_by) values ($1, 'bench', $2)", chat, owner)
    await conn.executemany(
        "insert into public.chat_members (session_id, user_id) values ($1, $2)",
        [(chat, m) for m in members if m != owner],  # the owner is added by a trigger
    )
    return chat


async def _subscriber(info: dict[str, Any], user: uuid.UUID) -> Subscriber:
    client = await acreate_client(str(info["api_url"]), str(info["anon_key"]))
    token, _ = issue_access_token(str(info["jwt_secret"]), user_id=user, email=None, session_id=uuid.uuid4(), ttl=3600)
    await client.realtime.set_auth(token)
    subscriber = Subscriber(client)
    channel = client.channel(f"user:{user}").on_postgres_changes(
        RealtimePostgresChangesListenEvent.Insert, subscriber.on_change, table="chat_messages", schema="public"
    )
    statuses: list[RealtimeSubscribeStates] = []
    await channel.subscribe(lambda status, error: statuses.append(status))
    if statuses[:1] != [RealtimeSubscribeStates.SUBSCRIBED]:
        raise RuntimeError(f"subscribe failed: {statuses}")
    return subscriber


async def _post(pool: asyncpg.Pool, user: uuid.UUID, chat: uuid.UUID, text: str) -> float:
    """Insert as ``user`` through RLS; the time COMMIT returned."""
    async with pool.acquire() as conn:
        async with conn.transaction():
            await conn.execute(
                "select set_config('role', 'authenticated', true), set_config('request.jwt.claims', $1, true)",
                json.dumps({"sub": str(user), "role": "authenticated"}),
            )
            await conn.execute(
                "insert into public.chat_messages (id, session_id, content) values ($1, $2, $3)",
                uuid.uuid4(),
                chat,
                text,
            )
        return time.perf_counter()


async def _latency(pool: asyncpg.Pool, subs: list[Subscriber], users: list[uuid.UUID]) -> dict[str, Any]:
    writer = users[0]
    async with pool.acquire() as conn:
        chat = await _chat(conn, writer, users[:VISIBLE])
        others = await _chat(conn, users[VISIBLE], users[VISIBLE:])
    members, strangers = subs[:VISIBLE], subs[VISIBLE:]
    base = [len(s.received) for s in subs]
    per_callback, slowest = [], []
    for i in range(LATENCY_MESSAGES):
        committed = await _post(pool, writer, chat, f"latency {i}")
        for sub, start in zip(members, base, strict=False):
            await sub.wait_for(start + i + 1)
        arrivals = [sub.received[start + i][0] - committed for sub, start in zip(members, base, strict=False)]
        per_callback.extend(arrivals)
        slowest.append(max(arrivals))
    # Absence, shown by order: a control message the strangers may see comes after all of the above.
    await _post(pool, users[VISIBLE], others, "control")
    for sub, start in zip(strangers, base[VISIBLE:], strict=True):
        await sub.wait_for(start + 1)
        records = [record for _, record in sub.received[start:]]
        if [r["content"] for r in records] != ["control"]:
            raise AssertionError(f"a non-member received {len(records) - 1} messages it may not see")
    for sub, start in zip(members, base, strict=False):
        contents = [record["content"] for _, record in sub.received[start:]]
        if contents != [f"latency {i}" for i in range(LATENCY_MESSAGES)]:
            raise AssertionError("a member lost or reordered messages")
    return {
        "messages": LATENCY_MESSAGES,
        "subscribers": len(subs),
        "subscribers_that_may_see": VISIBLE,
        "per_callback": summary_ms(per_callback),
        "slowest_of_5_per_message": summary_ms(slowest),
        "non_members_received": 0,
        "goal": "p50 <= 10 ms, p99 <= 50 ms",
    }


async def _throughput(pool: asyncpg.Pool, subs: list[Subscriber], users: list[uuid.UUID]) -> dict[str, Any]:
    async with pool.acquire() as conn:
        chats = [await _chat(conn, users[w], users) for w in range(WRITERS)]
    base = [len(s.received) for s in subs]
    counter = iter(range(THROUGHPUT_MESSAGES))
    last_commit = 0.0

    async def writer(user: uuid.UUID, chat: uuid.UUID) -> None:
        nonlocal last_commit
        for i in counter:
            last_commit = max(last_commit, await _post(pool, user, chat, f"burst {i}"))

    started = time.perf_counter()
    await asyncio.gather(*(writer(users[w], chats[w]) for w in range(WRITERS)))
    for sub, start in zip(subs, base, strict=True):
        await sub.wait_for(start + THROUGHPUT_MESSAGES)
    delivered = max(sub.received[-1][0] for sub in subs)
    lost = reordered = 0
    for sub, start in zip(subs, base, strict=True):
        records = [record for _, record in sub.received[start:]]
        lost += THROUGHPUT_MESSAGES - len({record["id"] for record in records})
        for chat in chats:
            # seq follows commit order within a chat: each socket must see 1, 2, 3, ... in order.
            seqs = [record["seq"] for record in records if record["session_id"] == str(chat)]
            reordered += sum(1 for a, b in itertools.pairwise(seqs) if b != a + 1)
    if lost or reordered:
        raise AssertionError(f"{lost} messages lost and {reordered} out of order")
    elapsed = delivered - started
    return {
        "messages": THROUGHPUT_MESSAGES,
        "writers": WRITERS,
        "chats": len(chats),
        "subscribers": len(subs),
        "insert_rate_per_s": round(THROUGHPUT_MESSAGES / (last_commit - started), 1),
        "messages_per_s_delivered_to_all": round(THROUGHPUT_MESSAGES / elapsed, 1),
        "callbacks_per_s": round(THROUGHPUT_MESSAGES * len(subs) / elapsed, 1),
        "last_delivery_after_last_commit_ms": round(max(0.0, delivered - last_commit) * 1000, 1),
        "lost": lost,
        "reordered": reordered,
    }


async def _run(info: dict[str, Any]) -> dict[str, Any]:
    pool = await asyncpg.create_pool(str(info["db_url"]), min_size=WRITERS, max_size=WRITERS + 2)
    subs: list[Subscriber] = []
    try:
        async with pool.acquire() as conn:
            users = await _users(conn, SUBSCRIBERS)
        subs = [await _subscriber(info, user) for user in users]
        latency = await _latency(pool, subs, users)
        throughput = await _throughput(pool, subs, users)
        return {"latency_commit_to_callback": latency, "throughput": throughput}
    finally:
        for sub in subs:
            await sub.client.realtime.remove_all_channels()
        await pool.close()


# --- sustained stream, side by side with the baseline gateway ----------------------------------------


@contextlib.contextmanager
def baseline_gateway(stack: Stack, rev: str) -> Iterator[str]:
    """The gateway of commit ``rev`` (from ``git archive``) on a free port, against ``stack``'s database.

    Yields its websocket URL. Run it only while this checkout's gateway is stopped: the old capture drops
    every idle slot of ours when it starts, which would take the new gateway's persistent one.
    """
    repo = Path(__file__).resolve().parent.parent
    root = Path(tempfile.mkdtemp(prefix="gateway-baseline-"))
    process: subprocess.Popen[bytes] | None = None
    try:
        archive = subprocess.run(
            ["git", "-C", str(repo), "archive", rev, "devstack"], capture_output=True, check=True
        ).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(root, filter="data")
        settings = json.loads(stack.gateway.settings_file.read_text())
        settings["port"] = free_port()
        (root / "settings.json").write_text(json.dumps(settings))
        log = (stack.config.logs_dir / "gateway-baseline.log").open("ab")
        process = subprocess.Popen(
            [sys.executable, "-m", "devstack.gateway.server", "--settings", str(root / "settings.json")],
            cwd=root,
            env={**os.environ, "PYTHONPATH": str(root)},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        wait_for_port(settings["host"], settings["port"], timeout=60, pid=process.pid)
        yield f"ws://{settings['host']}:{settings['port']}/realtime/v1/websocket"
    finally:
        if process is not None:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(root, ignore_errors=True)


class RawSubscriber:
    """A raw V1 socket joined like the app (every event of its tables); notes when each message arrives."""

    def __init__(self) -> None:
        self.arrivals: dict[str, float] = {}
        self.errors: list[dict[str, Any]] = []
        self.ws: Any = None
        self._task: asyncio.Task[None] | None = None

    async def open(self, url: str, apikey: str, token: str, topic: str) -> None:
        self.ws = await websockets.connect(f"{url}?apikey={apikey}&vsn=1.0.0", max_size=None)
        bindings = [{"event": "*", "schema": "public", "table": table} for table in APP_TABLES]
        join = {"config": {"postgres_changes": bindings}, "access_token": token}
        await self.ws.send(
            json.dumps({"topic": topic, "event": "phx_join", "payload": join, "ref": "1", "join_ref": "1"})
        )
        while True:
            frame = json.loads(await asyncio.wait_for(self.ws.recv(), TIMEOUT))
            if frame["event"] == "system":
                if frame["payload"]["status"] != "ok":
                    raise RuntimeError(f"subscribe failed: {frame}")
                break
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for raw in self.ws:
            now = time.perf_counter()
            frame = json.loads(raw)
            if frame["event"] == "postgres_changes":
                data = frame["payload"]["data"]
                if data["table"] == "chat_messages" and data["type"] == "INSERT":
                    self.arrivals.setdefault(data["record"]["content"], now)
            elif frame["event"] == "system":
                self.errors.append(frame["payload"])

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self.ws is not None:
            await self.ws.close()


def _stream_writer(db_url: str, user: str, chat: str, rate: int, seconds: int, out: str, label: str) -> None:
    """In another process: insert ``rate`` messages/s for ``seconds`` as ``user``; save commit times."""

    async def write() -> list[float]:
        conn = await asyncpg.connect(db_url)
        claims = json.dumps({"sub": user, "role": "authenticated"})
        commits: list[float] = []
        try:
            start = time.perf_counter() + 0.1
            for n in range(rate * seconds):
                if (wait := start + n / rate - time.perf_counter()) > 0:
                    await asyncio.sleep(wait)
                async with conn.transaction():
                    await conn.execute(
                        "select set_config('role', 'authenticated', true), set_config('request.jwt.claims', $1, true)",
                        claims,
                    )
                    await conn.execute(
                        "insert into public.chat_messages (id, session_id, content) values ($1, $2, $3)",
                        uuid.uuid4(),
                        uuid.UUID(chat),
                        f"{label} {n:05d}",
                    )
                commits.append(time.perf_counter())  # CLOCK_MONOTONIC: comparable across processes
        finally:
            await conn.close()
        return commits

    Path(out).write_text(json.dumps(asyncio.run(write())))


async def _sustained_setup(info: dict[str, Any]) -> tuple[uuid.UUID, uuid.UUID, str]:
    """A chat of alice (the writer) and bob (the subscriber), and bob's token."""
    conn = await asyncpg.connect(str(info["db_url"]))
    try:
        alice, bob = await _users(conn, 2)
        chat = await _chat(conn, alice, [alice, bob])
    finally:
        await conn.close()
    token, _ = issue_access_token(str(info["jwt_secret"]), user_id=bob, email=None, session_id=uuid.uuid4(), ttl=3600)
    return alice, chat, token


async def _sustained_phase(
    info: dict[str, Any], url: str, setup: tuple[uuid.UUID, uuid.UUID, str], label: str, seconds: int
) -> tuple[list[float], int, int]:
    """One phase against the gateway at ``url``: (commit → push lags, messages lost, system errors)."""
    alice, chat, token = setup
    subscriber = RawSubscriber()
    out = Path(tempfile.mkdtemp(prefix="bench-sustained-")) / "commits.json"
    try:
        await subscriber.open(url, str(info["anon_key"]), token, f"realtime:{label}")
        writer = multiprocessing.get_context("spawn").Process(
            target=_stream_writer,
            args=(str(info["db_url"]), str(alice), str(chat), SUSTAINED_RATE, seconds, str(out), label),
            name="sustained-writer",
        )
        writer.start()
        await asyncio.to_thread(writer.join)
        if writer.exitcode != 0:
            raise RuntimeError(f"the writer failed with exit code {writer.exitcode}")
        commits: list[float] = json.loads(out.read_text())
        expected = [f"{label} {n:05d}" for n in range(len(commits))]
        await _settled(lambda: len(subscriber.arrivals) == len(expected) or bool(subscriber.errors))
    finally:
        await subscriber.close()
        shutil.rmtree(out.parent, ignore_errors=True)
    lags = [
        subscriber.arrivals[text] - committed
        for text, committed in zip(expected, commits, strict=True)
        if text in subscriber.arrivals
    ]
    return lags, len(expected) - len(lags), len(subscriber.errors)


def _sustained(stack: Stack, info: dict[str, Any]) -> dict[str, Any]:
    """Alternating phases, baseline first; only the measured gateway runs during a phase."""
    current = f"ws://{stack.config.host}:{stack.config.api_port}/realtime/v1/websocket"
    setup = asyncio.run(_sustained_setup(info))
    phase_seconds = SUSTAINED_SECONDS // 2
    results: dict[str, dict[str, Any]] = {
        name: {"lags": [], "lost": 0, "errors": 0} for name in ("baseline", "current")
    }
    for index, name in enumerate(["baseline", "current"] * 2):
        label = f"{name}-{index}"
        if name == "baseline":
            stack.gateway.stop()
            with baseline_gateway(stack, BASELINE_REV) as url:
                lags, lost, errors = asyncio.run(_sustained_phase(info, url, setup, label, phase_seconds))
        else:
            stack.gateway.start()
            lags, lost, errors = asyncio.run(_sustained_phase(info, current, setup, label, phase_seconds))
        results[name]["lags"] += lags
        results[name]["lost"] += lost
        results[name]["errors"] += errors
    figures: dict[str, Any] = {
        "rate_per_s": SUSTAINED_RATE,
        "seconds_per_gateway": 2 * phase_seconds,
        "phases": "baseline, current, baseline, current",
    }
    for name, result in results.items():
        lags = result["lags"]
        figures[name] = {
            "commit_to_push": summary_ms(lags),
            "over_50_ms": sum(1 for lag in lags if lag > 0.05),
            "over_150_ms": sum(1 for lag in lags if lag > 0.15),
            "lost": result["lost"],
            "system_errors": result["errors"],
        }
    figures["baseline"]["rev"] = BASELINE_REV
    current_p99 = figures["current"]["commit_to_push"]["p99_ms"]
    figures["p99_baseline_over_current"] = round(figures["baseline"]["commit_to_push"]["p99_ms"] / current_p99, 2)
    figures["goal"] = "the gateway's part of commit → view p99 <= 50 ms, none lost"
    return figures


async def _settled(done: Callable[[], bool]) -> None:
    """Wait until ``done()`` or ``TIMEOUT``; what never arrives is counted as lost by the caller."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        if done() or time.monotonic() > deadline:
            return
        await asyncio.sleep(0.1)


# --- fan-out under load ------------------------------------------------------------------------------


async def _fanout(info: dict[str, Any], url: str) -> dict[str, Any]:
    """20 writers × 100 messages, 20 subscribers, ``FANOUT_RUNS`` runs: what each subscriber missed."""
    pool = await asyncpg.create_pool(str(info["db_url"]), min_size=FANOUT_WRITERS, max_size=FANOUT_WRITERS + 2)
    subscribers: list[RawSubscriber] = []
    try:
        async with pool.acquire() as conn:
            users = await _users(conn, FANOUT_SUBSCRIBERS)
            chat = await _chat(conn, users[0], users)
        for user in users:
            token, _ = issue_access_token(
                str(info["jwt_secret"]), user_id=user, email=None, session_id=uuid.uuid4(), ttl=3600
            )
            subscriber = RawSubscriber()
            await subscriber.open(url, str(info["anon_key"]), token, f"realtime:user:{user}")
            subscribers.append(subscriber)
        total = FANOUT_WRITERS * FANOUT_MESSAGES
        runs = []
        for run in range(FANOUT_RUNS):
            before = [len(sub.arrivals) for sub in subscribers]

            async def writer(index: int, run: int = run) -> None:
                for n in range(FANOUT_MESSAGES):
                    await _post(pool, users[index % len(users)], chat, f"fan-out {run} {index} {n}")

            await asyncio.gather(*(writer(index) for index in range(FANOUT_WRITERS)))

            def all_arrived(before: list[int] = before) -> bool:
                return all(len(sub.arrivals) - start >= total for sub, start in zip(subscribers, before, strict=True))

            await _settled(all_arrived)
            runs.append([total - (len(sub.arrivals) - start) for sub, start in zip(subscribers, before, strict=True)])
        return {
            "writers": FANOUT_WRITERS,
            "messages_per_writer": FANOUT_MESSAGES,
            "subscribers": FANOUT_SUBSCRIBERS,
            "runs": FANOUT_RUNS,
            "deliveries_expected": FANOUT_RUNS * total * FANOUT_SUBSCRIBERS,
            "lost": sum(sum(missed) for missed in runs),
            "lost_per_run": [sum(missed) for missed in runs],
            "system_errors": sum(len(sub.errors) for sub in subscribers),
        }
    finally:
        for subscriber in subscribers:
            await subscriber.close()
        await pool.close()


def run() -> dict[str, Any]:
    with throwaway_stack() as (stack, info):
        figures = asyncio.run(_run(info))
        current = f"ws://{stack.config.host}:{stack.config.api_port}/realtime/v1/websocket"
        figures["fan_out_under_load"] = asyncio.run(_fanout(info, current))
        figures["sustained_commit_to_push"] = _sustained(stack, info)
        return figures
