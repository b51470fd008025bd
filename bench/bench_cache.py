"""cache: a 50-message page through TieredCache against the floor, and Redis memory per cached message.

- Read latency, on the app's own Redis (unix socket, as ``ManagedRedis`` runs it) and on devstack's
  (TCP loopback): the floor is a bare redis-py call fetching the same 50 encrypted messages plus the same
  decode (decrypt and validate each); ``TieredCache.get_messages`` adds routing, the head check, the TTL and
  the index touch. Two floors: one ``GET`` of the 50 envelopes stored as one string, and one ``ZRANGE`` of
  the sorted set the cache really reads. Calls alternate so both see the same noise. Goal: within 3x the
  floor and p50 at most 1 ms.
- Memory: Redis ``used_memory`` growth for 200 chats x 200 realistic messages, encrypted, divided by the
  message count; with Redis's default sorted-set encoding thresholds and with the listpack thresholds
  ``ManagedRedis`` sets (reads are measured both ways too).
- Encoding: plaintext bytes per message for pydantic JSON, JSON without defaults and the packed form.
"""

from __future__ import annotations

import asyncio
import math
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from bench.stats import summary_ms
from desktop_chat.cache.breaker import CircuitBreaker
from desktop_chat.cache.codec import Codec
from desktop_chat.cache.keys import msgs_key
from desktop_chat.cache.managed import ManagedRedis
from desktop_chat.cache.memory import MemoryCacheStore
from desktop_chat.cache.packing import pack_message
from desktop_chat.cache.policy import CachePolicy
from desktop_chat.cache.redis_store import RedisCacheStore, redis_client
from desktop_chat.cache.secret import CacheSecret
from desktop_chat.cache.tiered import TieredCache
from desktop_chat.models import ChatId, Message, MessageId, UserId
from desktop_chat.telemetry.metrics import MetricsRegistry
from devstack.redis_server import RedisServer
from devstack.throwaway import throwaway_config

PAGE = 50
WARMUP = 300
RUNS = 3000
CHATS = 200
PER_CHAT = 200
# What ManagedRedis sets for the default cap of 200 messages per chat, and Redis's own defaults.
LISTPACK_TUNING = {"zset-max-listpack-entries": "201", "zset-max-listpack-value": "1024"}
REDIS_DEFAULTS = {"zset-max-listpack-entries": "128", "zset-max-listpack-value": "64"}

_VOCABULARY = tuple(
    " ".join(
        [
            "ok yes no thanks sure the a to and of for on in is it that this we you I can will be meeting",
            "release build test deploy tomorrow today lunch later call review draft ship fix bug cache server",
            "client see sounds good great 👍 let me check looks fine merged pushed",
        ]
    ).split()
)


def realistic_messages(session: ChatId, count: int, rng: random.Random) -> list[Message]:
    """A chat's history: 4 people, mostly short lines, a few long ones, some edits and deletions."""
    people = [UserId(uuid.UUID(int=rng.getrandbits(128))) for _ in range(4)]
    start = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
    out: list[Message] = []
    moment = start
    for seq in range(1, count + 1):
        moment += timedelta(seconds=rng.expovariate(1 / 90))
        # Word counts roughly log-normal: median ~7 words (~40 characters), a long tail.
        words = max(1, min(400, round(rng.lognormvariate(math.log(7), 0.9))))
        content = " ".join(rng.choice(_VOCABULARY) for _ in range(words))
        edited = moment + timedelta(minutes=1) if rng.random() < 0.05 else None
        deleted = moment + timedelta(minutes=3) if rng.random() < 0.01 else None
        out.append(
            Message(
                id=MessageId(uuid.UUID(int=rng.getrandbits(128))),
                chat_id=session,
                sender_id=rng.choice(people),
                content="" if deleted else content,
                created_at=moment,
                edited_at=edited,
                deleted_at=deleted,
                seq=seq,
                rev=seq,
            )
        )
    return out


def encoding_sizes(rng: random.Random) -> dict[str, Any]:
    sample = realistic_messages(ChatId(uuid.uuid4()), 2000, rng)
    codec = Codec(CacheSecret.generate())

    def mean(values: list[int]) -> float:
        return round(statistics.fmean(values), 1)

    return {
        "messages": len(sample),
        "content_bytes": mean([len(m.content.encode()) for m in sample]),
        "pydantic_json_bytes": mean([len(m.model_dump_json().encode()) for m in sample]),
        "json_without_defaults_bytes": mean([len(m.model_dump_json(exclude_defaults=True).encode()) for m in sample]),
        "packed_bytes": mean([len(pack_message(m)) for m in sample]),
        "envelope_overhead_bytes": codec.overhead,
        "note": "plaintext per message; the packed form is what the cache stores, sealed in the envelope",
    }


def make_cache(client: aioredis.Redis, policy: CachePolicy, codec: Codec) -> TieredCache:
    return TieredCache(
        codec=codec,
        policy=policy,
        metrics=MetricsRegistry(),
        redis=RedisCacheStore(client, policy),
        memory=MemoryCacheStore(policy),
        # Never let a noisy benchmark machine switch the cache to the memory tier mid-measurement.
        breaker=CircuitBreaker(slow_seconds=30, backoff=600),
    )


async def measure_reads(
    new_client: Callable[[], aioredis.Redis], rng: random.Random, tuning: dict[str, str]
) -> dict[str, Any]:
    policy = CachePolicy(max_messages_per_chat=PER_CHAT, max_chats_per_user=CHATS)
    codec = Codec(CacheSecret.generate())
    cache = make_cache(new_client(), policy, codec)
    bare = new_client()
    user, session = UserId(uuid.uuid4()), ChatId(uuid.uuid4())
    key = msgs_key(user, session)
    history = realistic_messages(session, PER_CHAT, rng)
    try:
        for name, value in tuning.items():
            await bare.config_set(name, value)
        await cache.start()
        await cache.set_messages(user, session, history)
        encoding = (await bare.object("encoding", key.redis_key)).decode()
        members = await bare.zrange(key.redis_key, -PAGE, -1, withscores=True)
        envelopes = [(int(score), bytes(member)) for member, score in members]
        blob_key = f"bench:{uuid.uuid4()}"
        # The same 50 envelopes as one string: [4-byte length][envelope]... for the GET floor.
        await bare.set(blob_key, b"".join(len(env).to_bytes(4, "little") + env for _, env in envelopes))
        seqs = [seq for seq, _ in envelopes]

        def decode_all(items: list[tuple[int, bytes]]) -> list[Message]:
            return [codec.decode_message(key, seq, env) for seq, env in items]

        async def floor_get() -> object:
            raw = await bare.get(blob_key)
            items, offset = [], 0
            for seq in seqs:
                size = int.from_bytes(raw[offset : offset + 4], "little")
                items.append((seq, raw[offset + 4 : offset + 4 + size]))
                offset += 4 + size
            return decode_all(items)

        async def floor_zrange() -> object:
            found = await bare.zrange(key.redis_key, -PAGE, -1, withscores=True)
            return decode_all([(int(score), bytes(member)) for member, score in found])

        async def tiered() -> object:
            hit = await cache.get_messages(user, session, PAGE)
            assert hit is not None and len(hit.value) == PAGE and hit.tier == "redis"
            return hit

        async def decode_only() -> object:
            return decode_all(envelopes)

        expected = history[-PAGE:]
        assert decode_all(envelopes) == expected and (await tiered()).value == tuple(expected)  # type: ignore[attr-defined]
        contenders: dict[str, Callable[[], Awaitable[object]]] = {
            "floor_get": floor_get,
            "floor_zrange": floor_zrange,
            "tiered_get_messages": tiered,
            "decode_only": decode_only,
        }
        timings: dict[str, list[float]] = {name: [] for name in contenders}
        for index in range(WARMUP + RUNS):
            for name, call in contenders.items():
                started = time.perf_counter()
                await call()
                if index >= WARMUP:
                    timings[name].append(time.perf_counter() - started)
        figures: dict[str, Any] = {name: summary_ms(values) for name, values in timings.items()}
        tiered_p50 = figures["tiered_get_messages"]["p50_ms"]
        figures["ratio_p50_to_floor_get"] = round(tiered_p50 / figures["floor_get"]["p50_ms"], 2)
        figures["ratio_p99_to_floor_get"] = round(
            figures["tiered_get_messages"]["p99_ms"] / figures["floor_get"]["p99_ms"], 2
        )
        figures["ratio_p50_to_floor_zrange"] = round(tiered_p50 / figures["floor_zrange"]["p50_ms"], 2)
        figures["goal_met"] = figures["ratio_p50_to_floor_get"] <= 3 and tiered_p50 <= 1.0
        figures["page_bytes"] = sum(len(env) for _, env in envelopes)
        figures["sorted_set_encoding"] = encoding
        await bare.delete(blob_key)
        return figures
    finally:
        await bare.aclose()
        await cache.close()


async def measure_memory(client: aioredis.Redis, rng: random.Random, tuning: dict[str, str]) -> dict[str, Any]:
    """used_memory growth for CHATS x PER_CHAT encrypted messages of one user, on an emptied database."""
    policy = CachePolicy(max_messages_per_chat=PER_CHAT, max_chats_per_user=CHATS)
    admin = client
    await admin.flushdb()
    for name, value in tuning.items():
        await admin.config_set(name, value)
    codec = Codec(CacheSecret.generate())
    cache = make_cache(client, policy, codec)
    await cache.start()
    before = int((await admin.info("memory"))["used_memory"])
    evicted_before = int((await admin.info("stats"))["evicted_keys"])
    user = UserId(uuid.uuid4())
    stored_bytes = 0
    encodings: set[str] = set()
    for _ in range(CHATS):
        session = ChatId(uuid.uuid4())
        history = realistic_messages(session, PER_CHAT, rng)
        await cache.set_messages(user, session, history)
        stored_bytes += sum(len(pack_message(m)) + codec.overhead for m in history)
    async for name in admin.scan_iter(match=f"dc:v1:{user}:msgs:*", count=1000):
        encodings.add((await admin.object("encoding", name)).decode())
    after = int((await admin.info("memory"))["used_memory"])
    evicted = int((await admin.info("stats"))["evicted_keys"]) - evicted_before
    messages = CHATS * PER_CHAT
    await cache.close()
    return {
        "config": tuning,
        "messages": messages,
        "used_memory_delta_bytes": after - before,
        "bytes_per_message": round((after - before) / messages, 1),
        "envelope_bytes_per_message": round(stored_bytes / messages, 1),
        "sorted_set_encodings": sorted(encodings),
        "evicted_keys": evicted,
    }


async def _run() -> dict[str, Any]:
    rng = random.Random(20261126)
    figures: dict[str, Any] = {"encoding": encoding_sizes(rng)}
    with tempfile.TemporaryDirectory(prefix="bench-cache-") as tmp:
        tcp = RedisServer(throwaway_config(Path(tmp) / "stack"))
        tcp.start()
        managed = ManagedRedis(Path(tmp) / "runtime", list_entries=PER_CHAT + 1)
        endpoint = await managed.start()
        assert endpoint is not None, "the benchmark needs redis-server on PATH"
        try:

            def unix() -> aioredis.Redis:
                return redis_client(unix_socket=str(endpoint.socket), password=endpoint.password, socket_timeout=5)

            def loopback() -> aioredis.Redis:
                return redis_client(url=tcp.url, socket_timeout=5)

            figures["read_page_of_50_unix_socket"] = await measure_reads(unix, rng, LISTPACK_TUNING)
            figures["read_page_of_50_tcp_loopback"] = await measure_reads(loopback, rng, REDIS_DEFAULTS)
            figures["read_page_of_50_unix_socket_default_encoding"] = await measure_reads(unix, rng, REDIS_DEFAULTS)
            figures["memory_default_encoding"] = await measure_memory(unix(), rng, REDIS_DEFAULTS)
            figures["memory_listpack_tuned"] = await measure_memory(unix(), rng, LISTPACK_TUNING)
        finally:
            await managed.stop()
            tcp.stop()
    return figures


def run() -> dict[str, Any]:
    return asyncio.run(_run())
