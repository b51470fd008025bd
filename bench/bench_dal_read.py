"""dal_read: ChatStore's read path on the whole stack, against its floor and against no cache at all.

One throwaway stack (PostgreSQL, the gateway, its Redis), one data layer built like the app builds it
(``open_data_layer``, realtime off), signed in as alice; 20 chats of alice, bob and carol filled with
realistic messages (``bench_cache.realistic_messages``: short lines, a long tail, some edits and deletions).

1. Page read, cache hit: ``await store.messages(chat)`` (the newest 50 of a chat whose window is cached),
   from Redis (the cache's hot windows dropped before each read) and again from the hot window (a chat
   read before, as when the user goes back to it),
   against two floors measured in the same loop: a bare redis-py ``GET`` of the same 50 envelopes stored
   as one string, and the ``ZRANGE ... WITHSCORES`` of the sorted set the cache really reads, each plus
   the same decode (the cache's ``Codec``: decrypt and validate each message). ``TieredCache.get_messages``
   of the page runs in the loop too, to split the cost between the cache and the data layer.
   Goal: p50 at most 1 ms and within 3x the floor.
2. No cache: ``backend.fetch_messages(chat, None, 50)``, the official client through the gateway, in the
   same loop. Goal: the cached read at least 10x faster.
3. Hit rate of a scripted session: open the 20 chats, then switch among them 500 times (seeded RNG); a
   switch is what the UI does: ``open_chat`` (timeline), ``messages`` (the page), ``chat_details`` (the
   header). Meanwhile bob and carol post (and now and then edit or delete): rows are written with asyncpg
   and the changes reach the store as realtime would bring them, ``live.apply_now`` with the message
   and the chat row (the gateway's realtime service is not in this tree yet). Hits and misses come from
   the metrics registry. Goal: at least 95 %.
4. Redis memory per cached message: measured by ``bench cache`` (``bench/results/cache.json``).

The calls of one loop run in a new random order each round (seeded), so machine noise, and the work one
call leaves behind (the gateway commits after it answered, garbage to collect), fall on all of them alike;
a rotation would keep the cyclic order and put the same call after Supabase every time.
"""

from __future__ import annotations

import asyncio
import random
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from pydantic import SecretStr

from bench.bench_cache import realistic_messages
from bench.stats import summary_ms
from desktop_chat.cache import Codec, load_cache_secret, msgs_key, redis_client
from desktop_chat.config import Settings
from desktop_chat.dal.factory import DataLayer, open_data_layer
from desktop_chat.models import (
    ChangeEvent,
    Chat,
    ChatId,
    ChatUpserted,
    Message,
    MessageUpserted,
    UserId,
)
from desktop_chat.telemetry.metrics import BREAKER_TRANSITIONS, CACHE_HITS, CACHE_MISSES, SUPABASE_LATENCY
from devstack.throwaway import throwaway_stack
from tests.keyrings import MemoryKeyring

SEED = 20261127
PAGE = 50
CHATS = 20
MAIN_HISTORY = 600  # the chat of parts 1 and 2: its cached window is full (cache_max_messages_per_chat)
HISTORY = (40, 400)  # messages in each of the other chats, uniform
WARMUP = 200
RUNS = 1500
SWITCHES = 500
# New changes before each switch: how many (picked uniformly), and which share are edits or deletions.
ARRIVALS = (0, 0, 1, 1, 1, 2, 3)
EDIT_SHARE = 0.05
DELETE_SHARE = 0.01
PASSWORD = "password123"
ALICE_EMAIL = "alice@example.com"
ALICE = UserId(uuid.UUID("a11ce000-0000-4000-8000-000000000001"))
OTHERS = (
    UserId(uuid.UUID("b0b00000-0000-4000-8000-000000000002")),  # bob
    UserId(uuid.UUID("ca201000-0000-4000-8000-000000000003")),  # carol
)
KINDS = ("recent", "chat", "msgs")
TIERS = ("redis", "memory")
MESSAGE_COLUMNS = "id, session_id, sender_id, content, created_at, edited_at, deleted_at, seq, rev"


# --- the data ----------------------------------------------------------------------------------------
async def fill(conn: asyncpg.Connection, rng: random.Random) -> list[ChatId]:
    """20 chats owned by alice with bob and carol in them; the first one has the longest history."""
    chats = [ChatId(uuid.uuid4()) for _ in range(CHATS)]
    people = (ALICE, *OTHERS)
    for index, chat in enumerate(chats):
        await conn.execute(
            "insert into public.chat_sessions (id, title, created_by) values ($1, $2, $3)",
            chat,
            f"bench chat {index + 1}",
            ALICE,
        )
        await conn.executemany(
            "insert into public.chat_members (session_id, user_id) values ($1, $2)",
            [(chat, other) for other in OTHERS],
        )
        count = MAIN_HISTORY if index == 0 else rng.randint(*HISTORY)
        history = realistic_messages(chat, count, rng)
        # The same shape of history, moved to end an hour ago, from the chat's three members.
        shift = datetime.now(UTC) - timedelta(hours=1) - history[-1].created_at
        await conn.execute(
            "insert into public.chat_messages (session_id, sender_id, content, created_at)"
            " select $1, s, c, t from unnest($2::uuid[], $3::text[], $4::timestamptz[])"
            " with ordinality as m(s, c, t, n) order by n",
            chat,
            [rng.choice(people) for _ in history],
            [m.content or "(deleted later)" for m in history],
            [m.created_at + shift for m in history],
        )
        # Edits and deletions take the chat's next revs, as they would have over the chat's life.
        edited = [m.seq for m in history if m.edited and not m.deleted]
        deleted = [m.seq for m in history if m.deleted]
        await conn.execute(
            "update public.chat_messages set content = content || ' (edited)'"
            " where session_id = $1 and seq = any($2::bigint[])",
            chat,
            edited,
        )
        await conn.execute(
            "update public.chat_messages set deleted_at = now() where session_id = $1 and seq = any($2::bigint[])",
            chat,
            deleted,
        )
    await conn.execute("analyze")
    return chats


class Arrivals:
    """Bob and carol writing into alice's chats while she reads; each change reaches the store like a push."""

    def __init__(self, conn: asyncpg.Connection, layer: DataLayer, chats: list[ChatId], rng: random.Random):
        self._conn = conn
        self._layer = layer
        self._chats = chats
        self._rng = rng
        self.inserted = 0
        self.edited = 0
        self.deleted = 0

    async def arrive(self, count: int) -> None:
        events: list[ChangeEvent] = []
        touched: set[ChatId] = set()
        for _ in range(count):
            chat = self._rng.choice(self._chats)
            touched.add(chat)
            roll = self._rng.random()
            if roll < EDIT_SHARE + DELETE_SHARE:
                # One of the newest messages of the chat (the ones people still edit).
                change = "content = content || ' (edited)'" if roll < EDIT_SHARE else "deleted_at = now()"
                row = await self._conn.fetchrow(
                    f"update public.chat_messages set {change} where id = ("
                    "  select id from public.chat_messages where session_id = $1 and deleted_at is null"
                    "  order by seq desc offset $2 limit 1)"
                    f" returning {MESSAGE_COLUMNS}",
                    chat,
                    self._rng.randrange(10),
                )
                if row is None:
                    continue
                if roll < EDIT_SHARE:
                    self.edited += 1
                else:
                    self.deleted += 1
            else:
                row = await self._conn.fetchrow(
                    "insert into public.chat_messages (session_id, sender_id, content) values ($1, $2, $3)"
                    f" returning {MESSAGE_COLUMNS}",
                    chat,
                    self._rng.choice(OTHERS),
                    realistic_messages(chat, 1, self._rng)[0].content or "ok",
                )
                self.inserted += 1
            assert row is not None
            events.append(MessageUpserted(message=Message.model_validate(dict(row))))
        if not events:
            return
        # Realtime pushes the chat row too: every change moved its counters (last_seq, last_rev).
        rows = await self._conn.fetch("select * from public.chat_sessions where id = any($1::uuid[])", list(touched))
        events += [ChatUpserted(chat=Chat.model_validate(dict(row))) for row in rows]
        await self._layer.store.signed_in.live.apply_now(events)


def _scored(reply: Any) -> list[tuple[int, bytes]]:
    """A ``ZRANGE ... WITHSCORES`` reply as (seq, envelope) pairs."""
    return [(int(score), bytes(member)) for member, score in reply]


# --- measuring ---------------------------------------------------------------------------------------
def counters(layer: DataLayer) -> dict[str, float]:
    metrics = layer.metrics
    out: dict[str, float] = {}
    for kind in KINDS:
        for tier in TIERS:
            out[f"hits.{kind}.{tier}"] = metrics.value(CACHE_HITS, tier=tier, kind=kind)
            out[f"misses.{kind}.{tier}"] = metrics.value(CACHE_MISSES, tier=tier, kind=kind)
    for op in ("msgs", "chat", "recent", "messages_since", "messages_page"):
        out[f"supabase.{op}"] = layer.metrics.histogram(SUPABASE_LATENCY, op=op).count
    out["breaker_transitions"] = metrics.total(BREAKER_TRANSITIONS)
    return out


def hit_rates(before: dict[str, float], after: dict[str, float]) -> dict[str, Any]:
    delta = {name: after[name] - before[name] for name in after}

    def rate(hits: float, misses: float) -> dict[str, Any]:
        total = hits + misses
        return {
            "hits": int(hits),
            "misses": int(misses),
            "hit_rate": round(hits / total, 4) if total else None,
        }

    by_kind = {}
    for kind in KINDS:
        hits = sum(delta[f"hits.{kind}.{tier}"] for tier in TIERS)
        misses = sum(delta[f"misses.{kind}.{tier}"] for tier in TIERS)
        if hits + misses:
            by_kind[kind] = rate(hits, misses)
    by_tier = {}
    for tier in TIERS:
        hits = sum(delta[f"hits.{kind}.{tier}"] for kind in KINDS)
        misses = sum(delta[f"misses.{kind}.{tier}"] for kind in KINDS)
        if hits + misses:
            by_tier[tier] = rate(hits, misses)
    total_hits = sum(value for name, value in delta.items() if name.startswith("hits."))
    total_misses = sum(value for name, value in delta.items() if name.startswith("misses."))
    return {
        **rate(total_hits, total_misses),
        "by_kind": by_kind,
        "by_tier": by_tier,
        "supabase_loads": {
            name.removeprefix("supabase."): int(value)
            for name, value in delta.items()
            if name.startswith("supabase.") and value
        },
        "breaker_transitions": int(delta["breaker_transitions"]),
    }


async def session(
    layer: DataLayer, conn: asyncpg.Connection, chats: list[ChatId], rng: random.Random
) -> dict[str, Any]:
    """Part 3: open the 20 chats, then 500 switches among them while changes arrive."""
    store = layer.store
    arrivals = Arrivals(conn, layer, chats, rng)
    current: ChatId | None = None
    switch_times: list[float] = []

    async def switch(chat: ChatId) -> None:
        nonlocal current
        started = time.perf_counter()
        if current is not None:
            store.close_chat(current)
        timeline = await store.open_chat(chat)
        page = await store.messages(chat)
        details = await store.chat_details(chat)
        switch_times.append(time.perf_counter() - started)
        assert page.messages and len(timeline) >= len(page.messages) and details.chat.id == chat
        current = chat

    start = counters(layer)
    for chat in chats:
        await switch(chat)
    opened = counters(layer)
    first_opens = len(switch_times)
    for _ in range(SWITCHES):
        await arrivals.arrive(rng.choice(ARRIVALS))
        assert current is not None
        await switch(rng.choice([chat for chat in chats if chat != current]))
    await store.settle()
    end = counters(layer)

    # The cache agrees with the database at the end: every write-through landed, nothing was lost.
    for chat in chats:
        newest = await conn.fetchval("select max(seq) from public.chat_messages where session_id = $1", chat)
        page = await store.messages(chat)
        assert page.messages[-1].seq == newest, (chat, page.messages[-1].seq, newest)

    return {
        "chats": len(chats),
        "switches": SWITCHES,
        "switch": "close the previous chat, open_chat, messages (page of 50), chat_details",
        "changes_arrived": {"inserted": arrivals.inserted, "edited": arrivals.edited, "deleted": arrivals.deleted},
        "delivery": (
            "asyncpg writes as bob or carol, then live.apply_now([MessageUpserted, ChatUpserted]) as realtime "
            "would push them (devstack/gateway/realtime.py is a placeholder in this tree, so realtime is off)"
        ),
        "whole_session": hit_rates(start, end),
        "first_opens": hit_rates(start, opened),
        "switches_only": hit_rates(opened, end),
        "switch_latency_first_opens": summary_ms(switch_times[:first_opens]),
        "switch_latency": summary_ms(switch_times[first_opens:]),
        "goal": "hit rate at least 95 %",
        "goal_met": (hit_rates(start, end)["hit_rate"] or 0) >= 0.95,
    }


async def page_reads(layer: DataLayer, keyring: MemoryKeyring, chat: ChatId) -> dict[str, Any]:
    """Parts 1 and 2: the cached page against its floor and against Supabase, interleaved."""
    store, cache, backend, settings = layer.store, layer.cache, layer.backend, layer.settings
    codec = Codec(load_cache_secret(settings.config_dir, backend=keyring).secret)
    assert settings.redis_url is not None
    bare = redis_client(url=settings.redis_url, socket_timeout=5)
    key = msgs_key(ALICE, chat)
    blob_key = f"bench:{uuid.uuid4()}"
    try:
        expected = await store.messages(chat)  # fills the window if it is not cached yet
        window = await cache.get_messages(ALICE, chat)
        assert window is not None and window.tier == "redis"
        envelopes = _scored(await bare.zrange(key.redis_key, -PAGE, -1, withscores=True))
        assert len(envelopes) == PAGE
        # The same 50 envelopes as one string, [4-byte length][envelope]..., for the GET floor.
        await bare.set(blob_key, b"".join(len(env).to_bytes(4, "little") + env for _, env in envelopes))
        seqs = [seq for seq, _ in envelopes]
        encoding = (await bare.object("encoding", key.redis_key)).decode()

        def decode_all(items: list[tuple[int, bytes]]) -> list[Message]:
            return [codec.decode_message(key, seq, envelope) for seq, envelope in items]

        async def floor_get() -> int:
            raw = await bare.get(blob_key)
            assert isinstance(raw, bytes)
            items, offset = [], 0
            for seq in seqs:
                size = int.from_bytes(raw[offset : offset + 4], "little")
                items.append((seq, raw[offset + 4 : offset + 4 + size]))
                offset += 4 + size
            return len(decode_all(items))

        async def floor_zrange() -> int:
            return len(decode_all(_scored(await bare.zrange(key.redis_key, -PAGE, -1, withscores=True))))

        async def store_page() -> int:
            cache.forget_hot_windows()  # from Redis, as the floors read
            page = await store.messages(chat)
            return len(page.messages)

        async def store_page_hot() -> int:
            page = await store.messages(chat)  # read just before in this loop or an earlier one: the hot window
            return len(page.messages)

        async def tiered_page() -> int:
            cache.forget_hot_windows()
            hit = await cache.get_messages(ALICE, chat, PAGE)
            assert hit is not None and hit.tier == "redis"
            return len(hit.value)

        async def supabase_page() -> int:
            page = await backend.fetch_messages(chat, None, PAGE)
            return len(page.messages)

        assert tuple(decode_all(envelopes)) == expected.messages
        assert (await backend.fetch_messages(chat, None, PAGE)).messages == expected.messages
        paths: dict[str, Callable[[], Awaitable[int]]] = {
            "store_messages": store_page,
            "store_messages_hot_window": store_page_hot,
            "floor_get": floor_get,
            "floor_zrange": floor_zrange,
            "tiered_get_messages": tiered_page,
            "supabase_fetch_messages": supabase_page,
        }
        names = list(paths)
        order_rng = random.Random(SEED)
        times: dict[str, list[float]] = {name: [] for name in names}
        before = counters(layer)
        for run in range(WARMUP + RUNS):
            for name in order_rng.sample(names, len(names)):
                started = time.perf_counter()
                rows = await paths[name]()
                elapsed = time.perf_counter() - started
                assert rows == PAGE, (name, rows)
                if run >= WARMUP:
                    times[name].append(elapsed)
        after = counters(layer)
    finally:
        await bare.delete(blob_key)
        await bare.aclose()

    figures: dict[str, Any] = {name: summary_ms(values) for name, values in times.items()}
    store_p50 = figures["store_messages"]["p50_ms"]
    figures["window_cached"] = len(window.value)
    figures["page_bytes"] = sum(len(envelope) for _, envelope in envelopes)
    figures["sorted_set_encoding"] = encoding
    figures["ratio_p50_to_floor_get"] = round(store_p50 / figures["floor_get"]["p50_ms"], 2)
    figures["ratio_p99_to_floor_get"] = round(figures["store_messages"]["p99_ms"] / figures["floor_get"]["p99_ms"], 2)
    figures["ratio_p50_to_floor_zrange"] = round(store_p50 / figures["floor_zrange"]["p50_ms"], 2)
    figures["ratio_p50_to_tiered"] = round(store_p50 / figures["tiered_get_messages"]["p50_ms"], 2)
    figures["speedup_p50_vs_supabase"] = round(figures["supabase_fetch_messages"]["p50_ms"] / store_p50, 1)
    figures["speedup_p50_hot_window_vs_supabase"] = round(
        figures["supabase_fetch_messages"]["p50_ms"] / figures["store_messages_hot_window"]["p50_ms"], 1
    )
    figures["goal_hit"] = "store p50 at most 1 ms and within 3x floor_get"
    figures["goal_hit_met"] = store_p50 <= 1.0 and figures["ratio_p50_to_floor_get"] <= 3
    figures["goal_speedup"] = "the cached read at least 10x faster than Supabase (p50)"
    figures["goal_speedup_met"] = figures["speedup_p50_vs_supabase"] >= 10
    figures["floor_speedup_p50_vs_supabase"] = round(
        figures["supabase_fetch_messages"]["p50_ms"] / figures["floor_get"]["p50_ms"], 1
    )
    figures["note"] = (
        "Supabase here is the devstack gateway on loopback with a warm, tiny database (no network, no TLS); "
        "floor_speedup_p50_vs_supabase is the most any cached read can gain against it"
    )
    loop_rates = hit_rates(before, after)
    figures["supabase_loads_during_cached_reads"] = loop_rates["supabase_loads"].get("msgs", 0)
    return figures


async def _measure(info: dict[str, Any], home: Path) -> dict[str, Any]:
    rng = random.Random(SEED)
    conn = await asyncpg.connect(info["db_url"])
    try:
        fill_started = time.perf_counter()
        chats = await fill(conn, rng)
        fill_s = time.perf_counter() - fill_started
        settings = Settings(
            supabase_url=info["api_url"],
            supabase_anon_key=SecretStr(info["anon_key"]),
            redis_url=info["redis_url"],
            data_dir=home / "data",
            config_dir=home / "config",
            log_dir=home / "log",
            runtime_dir=home / "run",
            cache_dir=home / "cache",
        )
        keyring = MemoryKeyring()
        layer = await open_data_layer(settings, keyring_backend=keyring, realtime=False)
        try:
            await layer.store.sign_in(ALICE_EMAIL, PASSWORD)
            await layer.store.settle()  # the sign-in warming
            scripted = await session(layer, conn, chats, rng)
            await layer.store.settle()
            reads = await page_reads(layer, keyring, chats[0])
        finally:
            await layer.close()
    finally:
        await conn.close()
    return {
        "setup": {
            "chats": CHATS,
            "messages_in_main_chat": MAIN_HISTORY,
            "messages_in_other_chats": f"{HISTORY[0]}..{HISTORY[1]}, uniform",
            "fill_s": round(fill_s, 1),
            "redis": "the stack's Redis over TCP loopback, default sorted-set encoding thresholds",
            "cache_max_messages_per_chat": settings.cache_max_messages_per_chat,
        },
        "page_read": reads,
        "session": scripted,
        "redis_memory_per_message": "see cache.json (bench cache: memory_listpack_tuned / memory_default_encoding)",
        "summary": {
            "store_page_hit_p50_ms": reads["store_messages"]["p50_ms"],
            "store_page_hit_p99_ms": reads["store_messages"]["p99_ms"],
            "floor_get_p50_ms": reads["floor_get"]["p50_ms"],
            "ratio_p50_to_floor_get": reads["ratio_p50_to_floor_get"],
            "supabase_page_p50_ms": reads["supabase_fetch_messages"]["p50_ms"],
            "speedup_p50_vs_supabase": reads["speedup_p50_vs_supabase"],
            "session_hit_rate": scripted["whole_session"]["hit_rate"],
            "switches_hit_rate": scripted["switches_only"]["hit_rate"],
            "switch_p50_ms": scripted["switch_latency"]["p50_ms"],
            "goal_hit_met": reads["goal_hit_met"],
            "goal_speedup_met": reads["goal_speedup_met"],
            "goal_hit_rate_met": scripted["goal_met"],
        },
    }


def run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-dal-read-") as tmp, throwaway_stack() as (_, info):
        return asyncio.run(_measure(info, Path(tmp)))
