"""Fan-out at scale: one chat, N online members, one writer at 20 messages/s (``python -m bench fanout``).

For N = 50, 200 and 500 members, every member online on a raw V1 socket of its own, the sockets spread
over ``WORKERS`` processes (each with its own event loop, so the clients do not queue behind one
another in one loop; more processes than cores would only add scheduling noise on this machine), the
same writer sends ``MESSAGES`` messages at 20 a second, delivered side by side in one run:

- ``postgres_changes`` (today's path): every member subscribed to the chat's inserts, each change
  checked against each member's row level security;
- Broadcast from the database: every member joined privately to ``chat:<id>`` (authorized once, at
  join), the message sent by the schema's trigger.

Measured per message: commit (the writer's COMMIT returned) → the last member's socket has the frame,
p50/p99 (wall clock, one machine); messages lost; the database's work from its own counters
(``pg_stat_user_functions``: function calls and time; ``pg_stat_user_tables``: rows written).

Then a reconnect storm: every member's socket of the Broadcast run drops at once and comes back with its
two private joins (``user:<id>`` and ``chat:<id>``): joins issued, authorization checks run
(``_realtime.topic_policies`` calls) and the time until all are joined again. The back-fill that follows
a reconnect is the app's (``rev`` back-fill) and is measured with it.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import queue
import time
import uuid
from typing import Any

import asyncpg
import websockets

from bench.stats import percentile, summary_ms
from devstack.gateway.jwt import issue_access_token
from devstack.throwaway import throwaway_stack

MEMBER_COUNTS = (50, 200, 500)
WORKERS = 4
RATE = 20.0
MESSAGES = 200
TIMEOUT = 60.0
STATS_IDLE_SECONDS = 11.0
PRO_JOINS_PER_SECOND = 500


# --- worker processes ------------------------------------------------------------------------------


def _join_frame(topic: str, token: str, ref: int, method: str, chat: str) -> str:
    config: dict[str, Any] = {"broadcast": None, "presence": {"key": "", "enabled": False}, "private": True}
    if method == "postgres_changes":
        binding = {"event": "INSERT", "schema": "public", "table": "chat_messages", "filter": f"session_id=eq.{chat}"}
        config = config | {"private": False, "postgres_changes": [binding]}
    payload = {"config": config, "access_token": token}
    return json.dumps({"topic": f"realtime:{topic}", "event": "phx_join", "payload": payload, "ref": str(ref)})


class Member:
    """One member's socket: joins, then notes when each message (by its text) arrived."""

    def __init__(self, url: str, token: str, topics: list[str], method: str, chat: str) -> None:
        self.url, self.token, self.topics, self.method, self.chat = url, token, topics, method, chat
        self.arrivals: dict[str, float] = {}
        self.ws: Any = None
        self.reader: asyncio.Task[None] | None = None

    async def connect(self) -> int:
        """Open the socket and join its topics; the number of joins refused."""
        self.ws = await websockets.connect(self.url, max_queue=None, open_timeout=TIMEOUT)
        refused = 0
        for ref, topic in enumerate(self.topics, start=1):
            await self.ws.send(_join_frame(topic, self.token, ref, self.method, self.chat))
            while True:
                frame = json.loads(await asyncio.wait_for(self.ws.recv(), TIMEOUT))
                if frame["event"] == "phx_reply" and frame["ref"] == str(ref):
                    refused += frame["payload"]["status"] != "ok"
                    break
        self.reader = asyncio.create_task(self._read())
        return refused

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                arrived = time.time()
                frame = json.loads(raw)
                if frame["event"] == "postgres_changes":
                    text = frame["payload"]["data"]["record"]["content"]
                elif frame["event"] == "broadcast" and frame["payload"].get("event") == "message":
                    text = frame["payload"]["payload"]["record"]["content"]
                else:
                    continue
                self.arrivals.setdefault(text, arrived)
        except websockets.ConnectionClosed:
            pass

    async def close(self) -> None:
        if self.reader is not None:
            self.reader.cancel()
        if self.ws is not None:
            await self.ws.close()


async def _worker_main(spec: dict[str, Any], commands: Any, results: Any) -> None:
    members = [Member(spec["url"], token, topics, spec["method"], spec["chat"]) for token, topics in spec["members"]]
    loop = asyncio.get_running_loop()
    refused = sum(await asyncio.gather(*(member.connect() for member in members)))
    results.put(("ready", refused))
    while True:
        command = await loop.run_in_executor(None, commands.get)
        if command == "report":
            arrivals: dict[str, list[float]] = {}
            for member in members:
                for text, arrived in member.arrivals.items():
                    arrivals.setdefault(text, []).append(arrived)
            results.put(("report", arrivals))
        elif command == "storm":
            await asyncio.gather(*(member.close() for member in members))
            started = time.time()
            refused = sum(await asyncio.gather(*(member.connect() for member in members)))
            results.put(("storm", {"started": started, "done": time.time(), "refused": refused}))
        elif command == "stop":
            await asyncio.gather(*(member.close() for member in members))
            results.put(("stopped", None))
            return


def _worker(spec: dict[str, Any], commands: Any, results: Any) -> None:
    asyncio.run(_worker_main(spec, commands, results))


class Workers:
    """The member sockets, dealt over ``WORKERS`` processes."""

    def __init__(self, info: dict[str, Any], method: str, chat: uuid.UUID, members: list[tuple[str, list[str]]]):
        context = multiprocessing.get_context("spawn")
        self.results: Any = context.Queue()
        self.commands: list[Any] = []
        self.processes = []
        url = f"{info['realtime_url']}?apikey={info['anon_key']}&vsn=1.0.0"
        for index in range(WORKERS):
            share = members[index::WORKERS]
            commands = context.Queue()
            spec = {"url": url, "method": method, "chat": str(chat), "members": share}
            process = context.Process(target=_worker, args=(spec, commands, self.results), daemon=True)
            process.start()
            self.commands.append(commands)
            self.processes.append(process)

    def collect(self, kind: str) -> list[Any]:
        out = []
        for _ in self.processes:
            try:
                got, value = self.results.get(timeout=TIMEOUT * 2)
            except queue.Empty:
                raise RuntimeError(f"a worker did not answer {kind!r}") from None
            if got != kind:
                raise RuntimeError(f"expected {kind!r} from a worker, got {got!r}")
            out.append(value)
        return out

    def tell(self, command: str) -> list[Any]:
        for commands in self.commands:
            commands.put(command)
        return self.collect({"report": "report", "storm": "storm", "stop": "stopped"}[command])

    def stop(self) -> None:
        try:
            self.tell("stop")
        finally:
            for process in self.processes:
                process.join(timeout=10)
                if process.is_alive():
                    process.kill()


# --- the run ---------------------------------------------------------------------------------------


def _token(info: dict[str, Any], user: uuid.UUID) -> str:
    token, _ = issue_access_token(str(info["jwt_secret"]), user_id=user, email=None, session_id=uuid.uuid4(), ttl=7200)
    return token


async def _setup(pool: asyncpg.Pool, members: int) -> tuple[uuid.UUID, list[uuid.UUID]]:
    users = [uuid.uuid4() for _ in range(members)]
    chat = uuid.uuid4()
    async with pool.acquire() as conn:
        await conn.executemany(
            "insert into auth.users (id, aud, role, email) values ($1, 'authenticated', 'authenticated', $2)",
            [(user, f"fanout-{user.hex[:8]}@example.com") for user in users],
        )
        await conn.execute(
            "insert into public.chat_sessions (id, title, created_by) values ($1, 'fanout', $2)", chat, users[0]
        )
        await conn.executemany(
            "insert into public.chat_members (session_id, user_id) values ($1, $2)", [(chat, u) for u in users[1:]]
        )
    return chat, users


_STATS = """
select (select coalesce(jsonb_object_agg(n.nspname || '.' || f.proname, jsonb_build_array(s.calls, s.total_time)), '{}')
          from pg_stat_user_functions s join pg_proc f on f.oid = s.funcid
          join pg_namespace n on n.oid = f.pronamespace) as functions,
       (select coalesce(sum(n_tup_ins), 0) from pg_stat_user_tables
         where schemaname = 'realtime' and relname like 'messages%') as broadcast_rows
"""


async def _stats(pool: asyncpg.Pool) -> tuple[dict[str, list[float]], float]:
    row = await pool.fetchrow(_STATS)
    assert row is not None
    return json.loads(row["functions"]), float(row["broadcast_rows"])


async def _write(pool: asyncpg.Pool, writer: uuid.UUID, chat: uuid.UUID, label: str) -> dict[str, float]:
    """Send ``MESSAGES`` messages at ``RATE`` a second; text → when its COMMIT returned."""
    committed: dict[str, float] = {}
    claims = json.dumps({"sub": str(writer), "role": "authenticated"})
    started = time.perf_counter()
    async with pool.acquire() as conn:
        for index in range(MESSAGES):
            await asyncio.sleep(max(0.0, started + index / RATE - time.perf_counter()))
            text = f"{label} {index}"
            async with conn.transaction():
                await conn.execute(
                    "select set_config('role', 'authenticated', true), set_config('request.jwt.claims', $1, true)",
                    claims,
                )
                await conn.execute(
                    "insert into public.chat_messages (id, session_id, content) values ($1, $2, $3)",
                    uuid.uuid4(),
                    chat,
                    text,
                )
            committed[text] = time.time()
    return committed


async def _one(info: dict[str, Any], pool: asyncpg.Pool, members: int, method: str) -> dict[str, Any]:
    chat, users = await _setup(pool, members)

    def topics(user: uuid.UUID) -> list[str]:
        return [f"user:{user}", f"chat:{chat}"] if method == "broadcast" else [f"chat:{chat}"]

    workers = Workers(info, method, chat, [(_token(info, user), topics(user)) for user in users])
    try:
        refused = sum(await asyncio.to_thread(workers.collect, "ready"))
        if refused:
            raise RuntimeError(f"{refused} joins refused")
        await asyncio.sleep(STATS_IDLE_SECONDS)
        functions_before, rows_before = await _stats(pool)
        committed = await _write(pool, users[0], chat, f"{method}-{members}")
        # Every member has every message, or the deadline passed.
        deadline = time.time() + TIMEOUT
        while True:
            reports = await asyncio.to_thread(workers.tell, "report")
            arrivals: dict[str, list[float]] = {}
            for report in reports:
                for text, times in report.items():
                    arrivals.setdefault(text, []).extend(times)
            complete = all(len(arrivals.get(text, ())) == members for text in committed)
            if complete or time.time() > deadline:
                break
            await asyncio.sleep(0.5)
        await asyncio.sleep(STATS_IDLE_SECONDS)
        functions_after, rows_after = await _stats(pool)
        last = [max(arrivals[text]) - at for text, at in committed.items() if len(arrivals.get(text, ())) == members]
        every = [
            arrived - committed[text] for text, times in arrivals.items() if text in committed for arrived in times
        ]
        lost = sum(members - len(arrivals.get(text, ())) for text in committed)
        result: dict[str, Any] = {
            "members": members,
            "messages": MESSAGES,
            "rate_per_s": RATE,
            "commit_to_last_member": summary_ms(last) if last else None,
            "commit_to_each_member_p50_ms": round(percentile(every, 50) * 1000, 3) if every else None,
            "lost": lost,
            "database_per_message": _work(functions_before, functions_after, rows_after - rows_before),
        }
        if method == "broadcast":
            result["reconnect_storm"] = await _storm(pool, workers, members, len(topics(users[0])))
        return result
    finally:
        await asyncio.to_thread(workers.stop)


def _work(before: dict[str, list[float]], after: dict[str, list[float]], broadcast_rows: float) -> dict[str, Any]:
    calls, ms = {}, {}
    for name, (count, total) in after.items():
        earlier = before.get(name, [0, 0.0])
        if count - earlier[0]:
            calls[name] = round((count - earlier[0]) / MESSAGES, 2)
            ms[name] = round((total - earlier[1]) / MESSAGES, 3)
    return {
        "function_calls": dict(sorted(calls.items())),
        "function_ms": dict(sorted(ms.items())),
        "realtime_messages_rows": round(broadcast_rows / MESSAGES, 2),
    }


async def _storm(pool: asyncpg.Pool, workers: Workers, members: int, joins_each: int) -> dict[str, Any]:
    await asyncio.sleep(STATS_IDLE_SECONDS)
    before, _ = await _stats(pool)
    outcomes = await asyncio.to_thread(workers.tell, "storm")
    await asyncio.sleep(STATS_IDLE_SECONDS)
    after, _ = await _stats(pool)
    started = min(outcome["started"] for outcome in outcomes)
    done = max(outcome["done"] for outcome in outcomes)
    checks = after.get("_realtime.topic_policies", [0, 0.0])[0] - before.get("_realtime.topic_policies", [0, 0.0])[0]
    joins = members * joins_each
    seconds = done - started
    return {
        "clients": members,
        "joins_issued": joins,
        "joins_refused": sum(outcome["refused"] for outcome in outcomes),
        "authorization_checks": checks,
        "seconds_until_all_joined": round(seconds, 3),
        "joins_per_second": round(joins / seconds, 1),
        "pro_plan_joins_per_second": PRO_JOINS_PER_SECOND,
        "seconds_needed_at_pro_limit": round(joins / PRO_JOINS_PER_SECOND, 2),
    }


async def _run(info: dict[str, Any]) -> dict[str, Any]:
    pool = await asyncpg.create_pool(str(info["db_url"]), min_size=2, max_size=4)
    try:
        await pool.execute("alter system set track_functions = 'all'")
        await pool.execute("select pg_reload_conf()")
        figures: dict[str, Any] = {"workers": WORKERS}
        for members in MEMBER_COUNTS:
            figures[f"members_{members}"] = {
                method: await _one(info, pool, members, method) for method in ("postgres_changes", "broadcast")
            }
        return figures
    finally:
        await pool.close()


def run() -> dict[str, Any]:
    with throwaway_stack() as (_, info):
        return asyncio.run(_run(info))
