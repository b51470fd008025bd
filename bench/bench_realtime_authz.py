"""Realtime Authorization and Broadcast from the database: what a private join costs, and what a message
costs the database, next to postgres_changes (``python -m bench realtime_authz``).

Against a throwaway stack, with raw V1 sockets (the official client's own overhead left out):

- **Joins**: phx_join → phx_reply of a private join of ``chat:<id>`` by a member (read probes for
  broadcast and presence), a refused one by a non-member, and a public join of the same topic, taken
  in turn so the three see the same machine; the re-authorization a new access token causes
  (``access_token`` frame, then a heartbeat whose reply comes once it is done) next to a bare heartbeat.
- **Database work per message**, one chat with N members all online, N = 10, 50, 200: the same
  messages delivered (a) by ``postgres_changes`` (each member subscribed to the chat's inserts) and
  (b) by Broadcast from the database (each member joined to ``chat:<id>``), from PostgreSQL's own
  counters (``pg_stat_user_functions`` with ``track_functions = all``, ``pg_stat_user_tables``):
  function calls and rows per message. Every member must receive every message.
- **Write path**: a message insert's time with the broadcast triggers on and off (side by side), and the
  per-member fan-out written as one set-based insert (``private.broadcast_to_members``) next to one
  ``realtime.send`` per member.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterable
from typing import Any

import asyncpg
import websockets
from websockets.asyncio.client import ClientConnection

from bench.stats import summary_ms
from devstack.gateway.jwt import issue_access_token
from devstack.throwaway import throwaway_stack

JOINS = 300
REAUTHS = 300
MEMBER_COUNTS = (10, 50, 200)
MESSAGES = 20
WRITES = 200
FANOUT_COUNTS = (10, 50, 200, 500)
FANOUT_ROUNDS = 60
TIMEOUT = 30.0
STATS_IDLE_SECONDS = 11.0
"""A backend flushes its statistics at the end of a transaction at most once a second, and an idle one
after 10 s: waiting this long makes every counter complete."""


class Wire:
    """A raw V1 socket with its own ref counter."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.ref = 0
        self.broadcasts = 0
        self.changes = 0

    async def send(self, topic: str, event: str, payload: Any, join_ref: str | None = None) -> str:
        self.ref += 1
        frame = {"topic": topic, "event": event, "payload": payload, "ref": str(self.ref), "join_ref": join_ref}
        await self.ws.send(json.dumps(frame))
        return str(self.ref)

    async def reply(self, ref: str) -> dict[str, Any]:
        while True:
            frame: dict[str, Any] = json.loads(await asyncio.wait_for(self.ws.recv(), TIMEOUT))
            if frame["event"] == "phx_reply" and frame["ref"] == ref:
                return frame
            self._count(frame)

    def _count(self, frame: dict[str, Any]) -> None:
        if frame["event"] == "broadcast" and frame["payload"].get("event") == "message":
            self.broadcasts += 1
        elif frame["event"] == "postgres_changes":
            self.changes += 1

    async def drain_until(self, counter: str, count: int) -> None:
        """Read frames until ``counter`` (``broadcasts`` or ``changes``) reaches ``count``."""
        while getattr(self, counter) < count:
            self._count(json.loads(await asyncio.wait_for(self.ws.recv(), TIMEOUT)))


def _token(info: dict[str, Any], user: uuid.UUID) -> str:
    token, _ = issue_access_token(str(info["jwt_secret"]), user_id=user, email=None, session_id=uuid.uuid4(), ttl=3600)
    return token


async def _connect(info: dict[str, Any]) -> Wire:
    url = f"{info['realtime_url']}?apikey={info['anon_key']}&vsn=1.0.0"
    return Wire(await websockets.connect(url, max_queue=None))


async def _users(conn: asyncpg.Connection, count: int) -> list[uuid.UUID]:
    users = [uuid.uuid4() for _ in range(count)]
    await conn.executemany(
        "insert into auth.users (id, aud, role, email) values ($1, 'authenticated', 'authenticated', $2)",
        [(user, f"bench-{user.hex[:8]}@example.com") for user in users],
    )
    return users


async def _chat(conn: asyncpg.Connection, owner: uuid.UUID, members: Iterable[uuid.UUID]) -> uuid.UUID:
    chat = uuid.uuid4()
    await conn.execute("insert into public.chat_sessions (id, title, created_by) values ($1, 'bench', $2)", chat, owner)
    await conn.executemany(
        "insert into public.chat_members (session_id, user_id) values ($1, $2)",
        [(chat, member) for member in members if member != owner],
    )
    return chat


async def _post(pool: asyncpg.Pool, user: uuid.UUID, chat: uuid.UUID, text: str) -> float:
    """Insert as ``user`` through row level security; seconds until COMMIT returned."""
    started = time.perf_counter()
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "select set_config('role', 'authenticated', true), set_config('request.jwt.claims', $1, true)",
            json.dumps({"sub": str(user), "role": "authenticated"}),
        )
        await conn.execute(
            "insert into public.chat_messages (id, session_id, content) values ($1, $2, $3)", uuid.uuid4(), chat, text
        )
    return time.perf_counter() - started


# --- joins -----------------------------------------------------------------------------------------


async def _joins(info: dict[str, Any], pool: asyncpg.Pool) -> dict[str, Any]:
    async with pool.acquire() as conn:
        member, stranger = await _users(conn, 2)
        chat = await _chat(conn, member, [])
    member_token, stranger_token = _token(info, member), _token(info, stranger)
    wire = await _connect(info)
    topic = f"realtime:chat:{chat}"
    timings: dict[str, list[float]] = {"private_member": [], "private_refused": [], "public": []}
    kinds = [
        ("private_member", member_token, True),
        ("private_refused", stranger_token, True),
        ("public", member_token, False),
    ]
    for _ in range(JOINS):
        for name, token, private in kinds:
            config = {"broadcast": None, "presence": {"key": "", "enabled": True}, "private": private}
            started = time.perf_counter()
            ref = await wire.send(topic, "phx_join", {"config": config, "access_token": token})
            reply = await wire.reply(ref)
            timings[name].append(time.perf_counter() - started)
            if (reply["payload"]["status"] == "ok") != (name != "private_refused"):
                raise AssertionError(f"{name}: {reply}")
            if reply["payload"]["status"] == "ok":
                await wire.reply(await wire.send(topic, "phx_leave", {}))

    # Re-authorization: a new token on a joined private channel (the read probes run again) next to a
    # new token on a public channel (nothing to check) and a bare heartbeat.
    reauth: dict[str, list[float]] = {"private_new_token": [], "public_new_token": [], "heartbeat_only": []}
    private_wire, public_wire = await _connect(info), await _connect(info)
    for target, private in ((private_wire, True), (public_wire, False)):
        config = {"broadcast": None, "presence": {"key": "", "enabled": True}, "private": private}
        reply = await target.reply(
            await target.send(topic, "phx_join", {"config": config, "access_token": member_token})
        )
        if reply["payload"]["status"] != "ok":
            raise AssertionError(reply)
    tokens = [_token(info, member) for _ in range(2 * REAUTHS)]
    for index in range(REAUTHS):
        for name, target in (
            ("private_new_token", private_wire),
            ("public_new_token", public_wire),
            ("heartbeat_only", private_wire),
        ):
            started = time.perf_counter()
            if name != "heartbeat_only":
                token = tokens[2 * index + (name == "public_new_token")]
                await target.send(topic, "access_token", {"access_token": token})
            await target.reply(await target.send("phoenix", "heartbeat", {}))
            reauth[name].append(time.perf_counter() - started)
    for socket in (wire, private_wire, public_wire):
        await socket.ws.close()
    joins = {name: summary_ms(values) for name, values in timings.items()}
    again = {name: summary_ms(values) for name, values in reauth.items()}
    return {
        "join_round_trip": joins,
        "private_over_public_join_p50": round(joins["private_member"]["p50_ms"] / joins["public"]["p50_ms"], 2),
        "reauthorization_round_trip": again,
        "reauthorization_cost_p50_ms": round(
            again["private_new_token"]["p50_ms"] - again["heartbeat_only"]["p50_ms"], 3
        ),
    }


# --- database work per message -------------------------------------------------------------------

_FUNCTION_STATS = """
select n.nspname || '.' || f.proname as name, s.calls, s.total_time
  from pg_stat_user_functions s join pg_proc f on f.oid = s.funcid join pg_namespace n on n.oid = f.pronamespace
"""
_TABLE_STATS = """
select case when relname like 'messages\\_%' and schemaname = 'realtime' then 'realtime.messages'
            else schemaname || '.' || relname end as name,
       sum(n_tup_ins) as inserted, sum(coalesce(idx_tup_fetch, 0) + seq_tup_read) as read,
       sum(coalesce(idx_scan, 0) + seq_scan) as scans
  from pg_stat_user_tables group by 1
"""


async def _stats(conn: asyncpg.Connection) -> dict[str, dict[str, dict[str, float]]]:
    functions = {
        row["name"]: {"calls": float(row["calls"]), "ms": float(row["total_time"])}
        for row in await conn.fetch(_FUNCTION_STATS)
    }
    tables = {
        row["name"]: {"inserted": float(row["inserted"]), "read": float(row["read"]), "scans": float(row["scans"])}
        for row in await conn.fetch(_TABLE_STATS)
    }
    return {"functions": functions, "tables": tables}


def _per_message(before: dict[str, Any], after: dict[str, Any], messages: int) -> dict[str, Any]:
    def diff(kind: str, field: str) -> dict[str, float]:
        out = {}
        for name, values in after[kind].items():
            delta = values[field] - before[kind].get(name, {}).get(field, 0.0)
            if delta:
                out[name] = round(delta / messages, 2)
        return dict(sorted(out.items()))

    return {
        "function_calls": diff("functions", "calls"),
        "function_ms": diff("functions", "ms"),
        "rows_inserted": diff("tables", "inserted"),
        "rows_read": diff("tables", "read"),
        "scans": diff("tables", "scans"),
    }


async def _database_work(info: dict[str, Any], pool: asyncpg.Pool, members: int) -> dict[str, Any]:
    async with pool.acquire() as conn:
        users = await _users(conn, members)
        chat = await _chat(conn, users[0], users)
    results = {}
    for method in ("postgres_changes", "broadcast"):
        wires = []
        for user in users:
            wire = await _connect(info)
            if method == "broadcast":
                config: dict[str, Any] = {"broadcast": None, "presence": {"key": "", "enabled": False}, "private": True}
            else:
                binding = {
                    "event": "INSERT",
                    "schema": "public",
                    "table": "chat_messages",
                    "filter": f"session_id=eq.{chat}",
                }
                config = {
                    "broadcast": None,
                    "presence": {"key": "", "enabled": False},
                    "private": False,
                    "postgres_changes": [binding],
                }
            reply = await wire.reply(
                await wire.send(
                    f"realtime:chat:{chat}", "phx_join", {"config": config, "access_token": _token(info, user)}
                )
            )
            if reply["payload"]["status"] != "ok":
                raise AssertionError(reply)
            wires.append(wire)
        await asyncio.sleep(STATS_IDLE_SECONDS)
        async with pool.acquire() as conn:
            before = await _stats(conn)
        for index in range(MESSAGES):
            await _post(pool, users[index % members], chat, f"message {index}")
        field = "broadcasts" if method == "broadcast" else "changes"
        await asyncio.gather(*(wire.drain_until(field, MESSAGES) for wire in wires))
        await asyncio.sleep(STATS_IDLE_SECONDS)
        async with pool.acquire() as conn:
            after = await _stats(conn)
        lost = sum(MESSAGES - getattr(wire, field) for wire in wires)
        for wire in wires:
            await wire.ws.close()
        results[method] = {"lost": lost, **_per_message(before, after, MESSAGES)}
    return results


# --- write path ----------------------------------------------------------------------------------


async def _write_path(pool: asyncpg.Pool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    async with pool.acquire() as conn:
        users = await _users(conn, max(FANOUT_COUNTS))
    for members in (2, 50, 200):
        async with pool.acquire() as conn:
            chat = await _chat(conn, users[0], users[:members])
        timings: dict[str, list[float]] = {"triggers_on": [], "triggers_off": []}
        for index in range(WRITES):
            for name in ("triggers_on", "triggers_off"):
                if name == "triggers_off":
                    await pool.execute(
                        "alter table public.chat_messages disable trigger chat_messages_broadcast_insert"
                    )
                try:
                    timings[name].append(await _post(pool, users[index % members], chat, f"write {index}"))
                finally:
                    if name == "triggers_off":
                        await pool.execute(
                            "alter table public.chat_messages enable trigger chat_messages_broadcast_insert"
                        )
        on, off = summary_ms(timings["triggers_on"]), summary_ms(timings["triggers_off"])
        out[f"members_{members}"] = {
            "insert_commit_triggers_on": on,
            "insert_commit_triggers_off": off,
            "p50_ratio": round(on["p50_ms"] / off["p50_ms"], 2),
        }

    # The per-member fan-out: one set-based insert against one realtime.send per member, each in a
    # transaction rolled back, in turn.
    fanout: dict[str, Any] = {}
    for members in FANOUT_COUNTS:
        async with pool.acquire() as conn:
            chat = await _chat(conn, users[0], users[:members])
        timings = {"set_based": [], "send_per_member": []}
        payload = json.dumps({"chat_id": str(chat), "seq": 1, "preview": "x" * 60})
        async with pool.acquire() as conn:
            for _ in range(FANOUT_ROUNDS):
                for name in timings:
                    sql = (
                        "select private.broadcast_to_members($1, 'activity', $2::jsonb)"
                        if name == "set_based"
                        else "select count(realtime.send($2::jsonb, 'activity', 'user:' || m.user_id, true))"
                        " from public.chat_members m where m.session_id = $1"
                    )
                    transaction = conn.transaction()
                    await transaction.start()
                    started = time.perf_counter()
                    await conn.fetchval(sql, chat, payload)
                    timings[name].append(time.perf_counter() - started)
                    await transaction.rollback()
        set_based, per_member = summary_ms(timings["set_based"]), summary_ms(timings["send_per_member"])
        fanout[f"members_{members}"] = {
            "set_based": set_based,
            "send_per_member": per_member,
            "send_over_set_based_p50": round(per_member["p50_ms"] / set_based["p50_ms"], 2),
        }
    out["fanout_of_one_notice"] = fanout
    return out


async def _run(info: dict[str, Any]) -> dict[str, Any]:
    pool = await asyncpg.create_pool(str(info["db_url"]), min_size=2, max_size=4)
    try:
        await pool.execute("alter system set track_functions = 'all'")
        await pool.execute("select pg_reload_conf()")
        figures: dict[str, Any] = {"joins": await _joins(info, pool)}
        figures["database_work_per_message"] = {
            f"members_{members}": await _database_work(info, pool, members) for members in MEMBER_COUNTS
        }
        figures["write_path"] = await _write_path(pool)
        return figures
    finally:
        await pool.close()


def run() -> dict[str, Any]:
    with throwaway_stack() as (_, info):
        return asyncio.run(_run(info))
