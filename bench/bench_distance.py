"""distance: the user's actions through the data layer with Supabase 0, 30 and 100 ms away.

One throwaway stack, filled like ``bench dal_read`` (20 chats of alice, bob and carol, 40..600 messages
each). For each round-trip time a loopback proxy (``devstack.proxy`` with a delay: each direction's bytes
held RTT/2) sits between a whole data layer (``open_data_layer``, realtime on, its own Redis database)
and the gateway; REST, auth and the realtime socket all go through it. Measured, each in the same run at
every distance, with the round trips each action makes (``SupabaseBackend.round_trips``: the requests the
action awaited, and those its background work made until the store settled):

1. Cached page read (``store.messages(chat)``, the window cached) against the same page from Supabase
   (``backend.fetch_messages``), interleaved. Goal: the cached read at least 20x faster at 30 ms. The same
   chat is read again and again, as a user goes back to a chat: after the first read it comes from the
   cache's hot window (``TieredCache``). In the same loop, the read from Redis (the hot windows dropped
   before it): what the first read of a chat after a change costs.
2. Chat switch, cached: what the UI does when a chat is picked, ``open_chat`` and ``chat_details`` at once
   (the chat panel asks for both), for a chat opened before. Goal: no awaited round trip.
3. Opening a chat never opened before (nothing cached): the same two calls. Goal: at most 2 round trips
   plus server time (the wall time is what shows whether they overlap).
4. Sign-in to the chat list: ``sign_in`` (password) then ``refresh_chats``, until the list has its rows,
   on an empty cache (each repetition signs out first, which purges the user's cache). The awaited count is
   of answers: the profile and the chat list travel together after the password grant (two sequential
   round trips, three answers).
5. Restore to the chat list: the next start, a new data layer on the same disk, keyring and Redis:
   ``restore_session`` then ``refresh_chats`` (what the app does before its first paint; the token is
   confirmed in the background).
6. Send → confirmed: ``store.send`` until the row in the open timeline has its ``seq`` (the REST insert
   answered, or the realtime echo came first).

Everything shares one process and event loop; PostgreSQL, Redis and the gateway run on the same shared
machine, so the "server time" in each figure is that of a loaded 2-core box.

The cyclic garbage collector's full collections stop the loop: each action records those that ran while it
was awaited (``full_gc_runs``, ``full_gc_max_ms``), and each distance the pause of every full collection in
it (``full_gc_pauses_ms``) with the objects it walked: what the cached switch's tail was made of
(docs/architecture.md section 10). At the end of each distance a full collection is forced, as the session
stands and with every object walked, side by side (``full_gc_now``, at the last distance only): what one
costs when it comes.
"""

from __future__ import annotations

import asyncio
import gc
import random
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
from pydantic import SecretStr

from bench.bench_dal_read import ALICE_EMAIL, PASSWORD, SEED, fill
from bench.stats import summary_ms
from desktop_chat.config import Settings
from desktop_chat.dal.api import ConnectionState
from desktop_chat.dal.factory import DataLayer, open_data_layer
from desktop_chat.models import ChatId
from devstack.proxy import LoopbackProxy
from devstack.throwaway import throwaway_stack
from tests.keyrings import MemoryKeyring

RTTS_MS = (0, 30, 100)
PAGE_RUNS = 40
SWITCHES = 30
FIRST_OPENS = 10
SIGN_INS = 3
RESTORES = 3
SENDS = 20
TIMEOUT = 60.0


class FullCollections:
    """The pauses of the garbage collector's full (generation 2) collections, while installed."""

    def __init__(self) -> None:
        self.pauses: list[tuple[float, float, int]] = []  # (start, end) perf_counter, objects walked
        self.recording = True
        self._started = 0.0
        self._walked = 0

    def __enter__(self) -> FullCollections:
        gc.callbacks.append(self._on_gc)
        return self

    def __exit__(self, *_: object) -> None:
        gc.callbacks.remove(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if info["generation"] != 2 or not self.recording:
            return
        if phase == "start":
            self._walked = len(gc.get_objects())  # frozen objects are not walked, nor listed here
            self._started = time.perf_counter()
        else:
            self.pauses.append((self._started, time.perf_counter(), self._walked))

    def between(self, start: float, end: float) -> list[float]:
        """The pauses (seconds) of the full collections that began in [start, end]."""
        return [stop - begin for begin, stop, _ in self.pauses if start <= begin <= end]

    def figures(self) -> dict[str, Any]:
        return {
            "full_gc_pauses_ms": [round((stop - begin) * 1000, 1) for begin, stop, _ in self.pauses],
            "full_gc_objects_walked": [walked for _, _, walked in self.pauses],
        }


COLLECTIONS = FullCollections()


def full_collection_now(repeats: int = 3) -> dict[str, Any]:
    """What a full collection costs the loop at this point of the session: as it stands (the long-lived
    objects frozen since the session opened, as ``ChatStore`` does), then with every object walked (as
    before), each ``repeats`` times back to back; the medians, and the objects each walked."""
    frozen = gc.get_freeze_count()
    as_is: list[float] = []
    whole: list[float] = []
    COLLECTIONS.recording = False  # forced here: not among the pauses that landed on the actions
    try:
        walked_as_is = len(gc.get_objects())
        for _ in range(repeats):
            started = time.perf_counter()
            gc.collect()
            as_is.append(time.perf_counter() - started)
        gc.unfreeze()
        walked_whole = len(gc.get_objects())
        for _ in range(repeats):
            started = time.perf_counter()
            gc.collect()
            whole.append(time.perf_counter() - started)
        if frozen:
            gc.freeze()  # frozen again until the session ends (a superset of what was: all of it survived)
    finally:
        COLLECTIONS.recording = True
    return {
        "frozen_objects": frozen,
        "as_is_p50_ms": round(statistics.median(as_is) * 1000, 1),
        "as_is_objects": walked_as_is,
        "all_walked_p50_ms": round(statistics.median(whole) * 1000, 1),
        "all_walked_objects": walked_whole,
    }


class Action:
    """Times of one action and the round trips each run made: awaited, and in the background after it."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.awaited: list[int] = []
        self.background: list[int] = []
        self.calls: dict[str, int] = {}
        self.full_gc: list[float] = []  # the full collections' pauses within the runs

    def figures(self) -> dict[str, Any]:
        return {
            **summary_ms(self.times),
            "round_trips_awaited_p50": statistics.median(self.awaited),
            "round_trips_awaited_max": max(self.awaited),
            "round_trips_background_p50": statistics.median(self.background),
            "calls_per_run": {key: round(count / len(self.times), 2) for key, count in sorted(self.calls.items())},
            "full_gc_runs": len(self.full_gc),
            "full_gc_max_ms": round(max(self.full_gc, default=0.0) * 1000, 1),
        }


async def measured(layer: DataLayer, action: Action, run: Callable[[], Awaitable[object]]) -> None:
    """Run one action: its wall time, the requests made while it was awaited, then those until settled."""
    trips = layer.backend.round_trips
    before = trips.snapshot()
    started = time.perf_counter()
    await run()
    ended = time.perf_counter()
    action.times.append(ended - started)
    action.full_gc += COLLECTIONS.between(started, ended)
    done = trips.snapshot()
    await layer.store.settle()
    settled = trips.snapshot()
    # Awaited: the answers that came back while the action ran; what was still in flight when it returned,
    # and what its background work sent afterwards, did not hold it up.
    action.awaited.append(done.since(before).answered)
    action.background.append(settled.since(before).total - done.since(before).answered)
    for key, count in settled.since(before).by_call.items():
        action.calls[key] = action.calls.get(key, 0) + count


async def until(check: Callable[[], bool], what: str, poll: float = 0.001) -> None:
    async with asyncio.timeout(TIMEOUT):
        while not check():  # noqa: ASYNC110 - polling state the store changes from its own tasks
            await asyncio.sleep(poll)


def _settings(info: dict[str, Any], url: str, home: Path, database: int) -> Settings:
    redis_base = str(info["redis_url"]).rsplit("/", 1)[0]
    return Settings(
        supabase_url=url,
        supabase_anon_key=SecretStr(str(info["anon_key"])),
        redis_url=f"{redis_base}/{database}",
        data_dir=home / "data",
        config_dir=home / "config",
        log_dir=home / "log",
        runtime_dir=home / "run",
        cache_dir=home / "cache",
    )


async def _live(layer: DataLayer) -> None:
    await until(lambda: layer.store.status.connection is ConnectionState.LIVE, "live", poll=0.01)


async def at_distance(
    info: dict[str, Any], rtt_ms: int, chats: list[ChatId], home: Path, database: int
) -> dict[str, Any]:
    host, port = str(info["api_url"]).removeprefix("http://").rstrip("/").split(":")
    proxy = LoopbackProxy(host, int(port), delay=rtt_ms / 2000)
    proxy_port = proxy.start()
    url = f"http://127.0.0.1:{proxy_port}"
    keyring = MemoryKeyring()
    settings = _settings(info, url, home, database)
    rng = random.Random(SEED + rtt_ms)
    sign_in, restore, page_cached, page_supabase = Action(), Action(), Action(), Action()
    page_redis = Action()
    switch, first_open, send = Action(), Action(), Action()
    collections_before = len(COLLECTIONS.pauses)
    try:
        layer = await open_data_layer(settings, keyring_backend=keyring)
        try:
            await layer.backend.health()  # the proxy's first connection is not part of any action

            async def signed_in_list() -> None:
                await layer.store.sign_in(ALICE_EMAIL, PASSWORD)
                await layer.store.refresh_chats()
                assert len(layer.store.chat_list()) > 0

            for repetition in range(SIGN_INS):
                if repetition:
                    await layer.store.sign_out()  # purges alice's cache: the next sign-in starts empty
                await measured(layer, sign_in, signed_in_list)
            await _live(layer)
            store = layer.store
            recent = [row.chat.id for row in store.chat_list().rows]
            warmed = set(recent[:5])  # the sign-in warms the top chats (SignedIn._warm)
            never_opened = [chat for chat in chats if chat not in warmed][:FIRST_OPENS]
            current: ChatId | None = None

            async def open_both(chat: ChatId) -> None:
                nonlocal current
                if current is not None:
                    store.close_chat(current)
                timeline, details = await asyncio.gather(store.open_chat(chat), store.chat_details(chat))
                assert len(timeline) > 0 and details.chat.id == chat
                current = chat

            for chat in never_opened:
                await measured(layer, first_open, lambda chat=chat: open_both(chat))  # type: ignore[misc]
            opened = list(warmed | set(never_opened))
            for _ in range(SWITCHES):
                choice = rng.choice([chat for chat in opened if chat != current])
                await measured(layer, switch, lambda choice=choice: open_both(choice))  # type: ignore[misc]

            main = chats[0]
            await store.messages(main)  # its window cached

            async def cached_page() -> None:
                assert len((await store.messages(main)).messages) == 50

            async def cached_page_redis() -> None:
                layer.cache.forget_hot_windows()
                assert len((await store.messages(main)).messages) == 50

            async def supabase_page() -> None:
                assert len((await layer.backend.fetch_messages(main, None, 50)).messages) == 50

            for _ in range(PAGE_RUNS):
                pair = [(page_cached, cached_page), (page_redis, cached_page_redis), (page_supabase, supabase_page)]
                rng.shuffle(pair)
                for action, run in pair:
                    await measured(layer, action, run)

            timeline = await store.open_chat(main)
            for n in range(SENDS):

                async def send_confirmed(n: int = n) -> None:
                    message_id = await store.send(main, f"distance {rtt_ms} ms {n}")
                    await until(
                        lambda: (row := timeline.get(message_id)) is not None and row.seq is not None, "confirmed"
                    )

                await measured(layer, send, send_confirmed)
            await store.settle()
            # Forced once, at the last distance: a forced collection moves when the next one comes by itself,
            # which would change the pauses counted at the distances after it.
            full_gc_now = full_collection_now() if rtt_ms == RTTS_MS[-1] else None
        finally:
            await layer.close()

        # The next starts: the same disk, keyring and Redis database; the session is restored.
        for _ in range(RESTORES):
            layer = await open_data_layer(settings, keyring_backend=keyring)
            try:
                await layer.backend.health()

                async def restored_list(layer: DataLayer = layer) -> None:
                    profile = await layer.store.restore_session()
                    assert profile is not None
                    await layer.store.refresh_chats()
                    assert len(layer.store.chat_list()) > 0

                await measured(layer, restore, restored_list)
            finally:
                await layer.close()
    finally:
        proxy.stop()
    cached, remote = page_cached.figures(), page_supabase.figures()
    pauses = FullCollections()
    pauses.pauses = COLLECTIONS.pauses[collections_before:]
    return {
        "rtt_ms": rtt_ms,
        **pauses.figures(),
        "full_gc_now": full_gc_now,
        "cached_page_read": cached,
        "cached_page_read_from_redis": page_redis.figures(),
        "supabase_page_read": remote,
        "speedup_p50_cached_vs_supabase": round(remote["p50_ms"] / cached["p50_ms"], 1),
        "speedup_p50_redis_vs_supabase": round(remote["p50_ms"] / page_redis.figures()["p50_ms"], 1),
        "chat_switch_cached": switch.figures(),
        "open_never_opened_chat": first_open.figures(),
        "sign_in_to_chat_list": sign_in.figures(),
        "restore_to_chat_list": restore.figures(),
        "send_to_confirmed": send.figures(),
    }


def _table(rows: list[dict[str, Any]]) -> list[str]:
    """One line per action: p50 ms and awaited round trips at each distance (for the log and the docs)."""
    actions = [
        "cached_page_read",
        "cached_page_read_from_redis",
        "supabase_page_read",
        "chat_switch_cached",
        "open_never_opened_chat",
        "sign_in_to_chat_list",
        "restore_to_chat_list",
        "send_to_confirmed",
    ]
    lines = ["action: " + " | ".join(f"{row['rtt_ms']} ms RTT p50 (awaited round trips)" for row in rows)]
    for action in actions:
        cells = [f"{row[action]['p50_ms']:.1f} ms ({row[action]['round_trips_awaited_p50']:g})" for row in rows]
        lines.append(f"{action}: " + " | ".join(cells))
    # The tails, and what the full collections cost: a cached action pays whichever one lands on it.
    for action in ("chat_switch_cached", "cached_page_read_from_redis", "restore_to_chat_list"):
        cells = [
            f"p99 {row[action]['p99_ms']:.1f} max {row[action]['max_ms']:.1f} ms, "
            f"{row[action]['full_gc_runs']} full GC (max {row[action]['full_gc_max_ms']:.1f} ms)"
            for row in rows
        ]
        lines.append(f"{action} tail: " + " | ".join(cells))
    cells = [
        f"{len(row['full_gc_pauses_ms'])}, max {max(row['full_gc_pauses_ms'], default=0.0):.1f} ms "
        f"(up to {max(row['full_gc_objects_walked'], default=0)} objects)"
        for row in rows
    ]
    lines.append("full GC pauses: " + " | ".join(cells))
    for row in rows:
        if (now := row["full_gc_now"]) is not None:
            lines.append(
                f"a full GC forced after the session's actions at {row['rtt_ms']} ms: as it stands "
                f"{now['as_is_p50_ms']:.1f} ms ({now['as_is_objects']} objects walked, {now['frozen_objects']} "
                f"frozen) vs all walked {now['all_walked_p50_ms']:.1f} ms ({now['all_walked_objects']} objects)"
            )
    return lines


async def _measure(info: dict[str, Any], home: Path) -> dict[str, Any]:
    conn = await asyncpg.connect(info["db_url"])
    try:
        chats = await fill(conn, random.Random(SEED))
    finally:
        await conn.close()
    rows = []
    for index, rtt in enumerate(RTTS_MS):
        started = time.perf_counter()
        rows.append(await at_distance(info, rtt, chats, home / f"rtt-{rtt}", database=index + 1))
        print(f"   {rtt} ms done in {time.perf_counter() - started:.1f} s", flush=True)
    at_30 = next(row for row in rows if row["rtt_ms"] == 30)
    table = _table(rows)
    for line in table:
        print("   " + line, flush=True)
    return {
        "setup": "20 chats (40..600 messages), one data layer per distance behind a loopback delay proxy",
        "distances": rows,
        "table": table,
        "goal_cached_20x_at_30ms": at_30["speedup_p50_cached_vs_supabase"],
        "goal_cached_20x_at_30ms_met": at_30["speedup_p50_cached_vs_supabase"] >= 20,
        "goals": (
            "cached read >= 20x Supabase at 30 ms; opening an uncached chat and signing in <= 2 round trips "
            "plus server time; a cached switch awaits no round trip"
        ),
    }


def run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-distance-") as tmp, throwaway_stack() as (_, info), COLLECTIONS:
        return asyncio.run(_measure(info, Path(tmp)))
