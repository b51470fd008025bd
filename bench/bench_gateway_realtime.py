"""devstack gateway realtime: commit → callback latency and sustained fan-out, with the official client.

Ten clients (official async ``supabase`` client, one socket each) subscribe to every change of
``chat_messages``; row level security decides what each receives.

- Latency: 5 of the 10 are members of the chat written to. One message at a time is inserted as a
  member (RLS, like a REST insert); the clock starts when COMMIT returns to the writer and stops in
  each member's callback. The 5 others must receive nothing, which a control message at the end shows.
- Throughput: all 10 are members of 4 chats; 4 writers, one per chat, insert as fast as they can, each
  message in its own transaction. Every subscriber must get every message exactly once, and each
  chat's messages in ``seq`` (commit) order.

Writers and clients share one process and one event loop, on the same (shared, 2-core) machine as
PostgreSQL and the gateway: the figures include the client's own frame parsing.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import asyncpg
from realtime import RealtimePostgresChangesListenEvent, RealtimeSubscribeStates
from supabase import AsyncClient, acreate_client

from bench.stats import summary_ms
from devstack.gateway.jwt import issue_access_token
from devstack.throwaway import throwaway_stack

SUBSCRIBERS = 10
VISIBLE = 5
LATENCY_MESSAGES = 1000
THROUGHPUT_MESSAGES = 2000
WRITERS = 4
TIMEOUT = 30.0


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


def run() -> dict[str, Any]:
    with throwaway_stack() as (_, info):
        return asyncio.run(_run(info))
