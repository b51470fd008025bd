"""live: the write path and live sync through the real data layer (``ChatStore``), two signed-in clients.

Every client is a whole data layer (``open_data_layer``: backend with the official client, Redis cache on
its own database, SQLite outbox in its own directory), signed in with a password like the app, against a
throwaway devstack. A *probe* subscribes to a timeline (``LiveList.subscribe``), applies each batch of row
operations to its own list, as the Qt model does, and notes when each message first appears pending and
first appears confirmed (``seq`` set).

1. Optimistic latency: ``store.send(chat, text)`` called → the pending row reaches the probe. Sends are
   paced (``SEND_PERIOD``) over ``OPTIMISTIC_CHATS`` chats, as a fast typist in several chats, while the
   sender delivers the earlier ones and their realtime echoes come back. Measured twice: straight to the
   gateway, and through a loopback TCP proxy that holds each direction's bytes for 200 ms (a 400 ms round
   trip, for REST and the realtime socket). Every message must then be delivered (outbox empty, all rows
   confirmed). Also reported: how much of it is the outbox's durable insert (``Outbox.add``), and the
   floor under that, a bare SQLite insert with the outbox's settings on the same disk.
2. End to end: alice's ``send()`` → bob's timeline holds the confirmed row. Alice sends one message every
   30 ms (mostly one in flight, a few when one is slow). The time is split at the moment bob's realtime
   push reaches ``LiveSync.enqueue`` (wrapped by the bench): before it, the outbox, the REST insert, WAL
   decoding and the push; after it, the frame batching (``frame_interval``) and applying (cache first,
   then the views). Also measured (fewer messages): closed loop, each message sent as soon as bob shows
   the one before (so every push lands within a frame of the last batch), and with
   ``frame_interval=0``, i.e. applied on the next loop turn.
3. Back-fill: bob has the chat open; the gateway is stopped; 1,000 messages are inserted as alice (asyncpg,
   through RLS, one transaction); the gateway is started again. Timed from ``gateway.start()`` returning
   (port open) to bob's view holding all 1,000, split at bob's link coming back LIVE (its reconnect
   backoff); then checked: each once, in ``seq`` order.
4. Sustained: a writer in another process inserts 200 messages/s for 30 s into one chat (as alice, one
   statement and transaction each, one round trip, on a fixed schedule); bob's process only runs bob's
   data layer, its view and a monitor task that sleeps 5 ms and records how late it wakes (event-loop
   stalls). Reported: the writer's achieved rate (and whether it kept 200/s), listener callbacks and row
   operations per second, stalls (max, p99), garbage-collector pauses, commit → view lag split at the push
   reaching the app's code (``RealtimeManager._on_push``), lost and reordered messages.

All clients of one phase share the bench's process and event loop (alice's and bob's work interleave);
PostgreSQL, Redis and the gateway run beside them on the same shared 2-core machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import json
import multiprocessing
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import asyncpg
from pydantic import SecretStr

from bench.stats import percentile, summary_ms
from desktop_chat.config import Settings
from desktop_chat.dal.api import ConnectionState, Timeline
from desktop_chat.dal.factory import DataLayer, open_data_layer
from desktop_chat.dal.live import FRAME_INTERVAL
from desktop_chat.dal.live_list import RowChange, RowsRemoved, apply_changes
from desktop_chat.models import ChangeEvent, ChatId, DeliveryState, Message, MessageId, MessageUpserted
from desktop_chat.sync.outbox import OutboxEntry
from devstack.proxy import LoopbackProxy
from devstack.stack import Stack
from devstack.throwaway import throwaway_stack
from tests.keyrings import MemoryKeyring

PASSWORD = "password123"
ALICE_EMAIL = "alice@example.com"
BOB_EMAIL = "bob@example.com"

OPTIMISTIC_SENDS = 500
OPTIMISTIC_CHATS = 10
SEND_PERIOD = 0.02  # one send every 20 ms, round robin over the chats
PROXY_DELAY = 0.2  # seconds, each direction

E2E_MESSAGES = 1000
E2E_PERIOD = 0.03  # one send every 30 ms: mostly one message in flight, a few when one is slow
E2E_SMALL = 300  # the comparisons: closed loop, and frame_interval=0

BACKFILL_MESSAGES = 1000

SUSTAINED_RATE = 200  # messages per second
SUSTAINED_SECONDS = 30
STALL_TICK = 0.005

TIMEOUT = 60.0


# ==================================================================================================
# what a view model sees
# ==================================================================================================
class ViewProbe:
    """Listens to a timeline like the Qt model: applies each batch of row operations to its own rows."""

    def __init__(self, timeline: Timeline) -> None:
        self.timeline = timeline
        self.rows: list[Message] = list(timeline.rows)
        self.callbacks: list[float] = []  # when each batch arrived
        self.operations: list[int] = []  # row operations per batch
        self.rows_touched: list[int] = []  # rows inserted, changed or reset per batch
        self.pending_at: dict[MessageId, float] = {}
        self.confirmed_at: dict[MessageId, float] = {}
        self._waiters: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []
        self._unsubscribe = timeline.subscribe(self._on_changes)

    def close(self) -> None:
        self._unsubscribe()

    def _on_changes(self, changes: Sequence[RowChange[Message]]) -> None:
        now = time.perf_counter()
        apply_changes(self.rows, changes)
        touched = 0
        for change in changes:
            if isinstance(change, RowsRemoved):
                continue
            rows = change.rows
            touched += len(rows)
            for message in rows:
                if message.seq is not None:
                    if message.id not in self.confirmed_at:
                        self.confirmed_at[message.id] = now
                elif message.delivery is DeliveryState.PENDING and message.id not in self.pending_at:
                    self.pending_at[message.id] = now
        self.callbacks.append(now)
        self.operations.append(len(changes))
        self.rows_touched.append(touched)
        for predicate, future in self._waiters:
            if not future.done() and predicate():
                future.set_result(None)

    async def wait_for(self, predicate: Callable[[], bool], what: str, within: float = TIMEOUT) -> None:
        if predicate():
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiter = (predicate, future)
        self._waiters.append(waiter)
        try:
            await asyncio.wait_for(future, within)
        except TimeoutError:
            raise TimeoutError(f"timed out waiting for {what}") from None
        finally:
            self._waiters.remove(waiter)

    def check(self, prefix: str, expected: Sequence[str]) -> dict[str, int]:
        """Lost, doubled and out-of-order rows among those whose content starts with ``prefix``."""
        if self.rows != list(self.timeline.rows):
            raise AssertionError("the rows built from the row operations differ from the timeline's")
        mine = [m for m in self.rows if m.content.startswith(prefix)]
        contents = [m.content for m in mine]
        seqs = [m.seq for m in mine]
        return {
            "lost": len(set(expected) - set(contents)),
            "duplicates": len(contents) - len(set(contents)) + len(mine) - len({m.id for m in mine}),
            "out_of_order": sum(1 for a, b in itertools.pairwise(mine) if (a.seq or 0) >= (b.seq or 0))
            + (0 if contents == [c for c in expected if c in set(contents)] else 1),
            "unconfirmed": sum(1 for s in seqs if s is None),
        }


# ==================================================================================================
# clients
# ==================================================================================================
class Clients:
    """Opens data layers against the stack, each with its own directories, keyring and Redis database."""

    def __init__(self, info: dict[str, Any], home: Path) -> None:
        self._info = info
        self.home = home
        self._databases = itertools.count(1)
        self._open: list[DataLayer] = []

    async def open(
        self, name: str, email: str, *, supabase_url: str | None = None, frame_interval: float | None = None
    ) -> DataLayer:
        home = self.home / name
        redis_base = str(self._info["redis_url"]).rsplit("/", 1)[0]
        settings = Settings(
            supabase_url=supabase_url or str(self._info["api_url"]),
            supabase_anon_key=SecretStr(str(self._info["anon_key"])),
            redis_url=f"{redis_base}/{next(self._databases)}",
            data_dir=home / "data",
            config_dir=home / "config",
            log_dir=home / "log",
            runtime_dir=home / "run",
            cache_dir=home / "cache",
        )
        extra: dict[str, Any] = {} if frame_interval is None else {"frame_interval": frame_interval}
        layer = await open_data_layer(settings, keyring_backend=MemoryKeyring(), **extra)
        self._open.append(layer)
        return layer

    async def sign_in(self, layer: DataLayer, email: str) -> None:
        await layer.store.sign_in(email, PASSWORD)
        await until(lambda: layer.store.status.connection is ConnectionState.LIVE, f"{email} live")

    async def owner(self) -> tuple[DataLayer, uuid.UUID]:
        """Alice's data layer, signed in and live (she makes the benchmarks' chats), and her user id."""
        layer = await self.open("alice", ALICE_EMAIL)
        await self.sign_in(layer, ALICE_EMAIL)
        me = layer.store.current_user
        assert me is not None
        return layer, uuid.UUID(str(me.id))

    async def close(self, layer: DataLayer) -> None:
        if layer in self._open:
            self._open.remove(layer)
        await layer.close()

    async def close_all(self) -> None:
        for layer in reversed(list(self._open)):
            await self.close(layer)


async def until(check: Callable[[], bool], what: str, within: float = TIMEOUT, poll: float = 0.01) -> None:
    async with asyncio.timeout(within):
        while not check():  # noqa: ASYNC110 - polling state the store changes from its own tasks
            await asyncio.sleep(poll)


def record_arrivals(layer: DataLayer) -> dict[MessageId, float]:
    """When each new message's push first reached the app's code (``RealtimeManager._on_push``: taken off the
    socket by ``FrameTap``, or called back by the library after it parsed the frame)."""
    arrivals: dict[MessageId, float] = {}
    realtime = layer.store.signed_in.realtime
    assert realtime is not None
    on_push = realtime._on_push

    def timed(topic: str, message: Mapping[str, object]) -> None:
        now = time.perf_counter()
        body = message.get("payload")
        record = body.get("record") if isinstance(body, Mapping) else None
        if isinstance(record, Mapping) and isinstance(record.get("id"), str):
            with contextlib.suppress(ValueError):
                arrivals.setdefault(MessageId(uuid.UUID(str(record["id"]))), now)
        on_push(topic, message)

    realtime._on_push = timed  # type: ignore[method-assign]
    return arrivals


def record_pushes(layer: DataLayer) -> dict[MessageId, float]:
    """When each confirmed message first reached ``LiveSync.enqueue`` (wrap it right after sign-in)."""
    arrivals: dict[MessageId, float] = {}
    live = layer.store.signed_in.live
    enqueue = live.enqueue

    def timed(events: Sequence[ChangeEvent]) -> None:
        now = time.perf_counter()
        for event in events:
            if isinstance(event, MessageUpserted) and event.message.seq is not None:
                arrivals.setdefault(event.message.id, now)
        enqueue(events)

    live.enqueue = timed  # type: ignore[method-assign]
    return arrivals


async def new_chat(owner: DataLayer, peer: DataLayer | None, title: str) -> ChatId:
    chat = await owner.store.create_chat(title, [BOB_EMAIL])
    if peer is not None:
        await until(lambda: peer.store.chat_list().get(chat) is not None, f"{title} in bob's list")
    return chat


def ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


# ==================================================================================================
# 1. optimistic latency
# ==================================================================================================
async def _optimistic(alice: DataLayer, chats: Sequence[ChatId], label: str) -> dict[str, Any]:
    store = alice.store
    timelines = await asyncio.gather(*(store.open_chat(chat) for chat in chats))
    probes = [ViewProbe(timeline) for timeline in timelines]
    await store.settle()
    # How much of each send is the durable write (the outbox's thread, SQLite, fsync, back to the loop).
    add_times: list[float] = []
    add = alice.outbox.add

    async def timed_add(*args: Any, **kwargs: Any) -> OutboxEntry:
        begun = time.perf_counter()
        try:
            return await add(*args, **kwargs)
        finally:
            add_times.append(time.perf_counter() - begun)

    alice.outbox.add = timed_add  # type: ignore[method-assign]
    shown: list[float] = []
    returned: list[float] = []
    sent: list[tuple[ViewProbe, MessageId]] = []
    loop = asyncio.get_running_loop()
    started = loop.time()
    for n in range(OPTIMISTIC_SENDS):
        # A fixed schedule (not "sleep after each"), so a slow send does not thin out the load.
        if (wait := started + n * SEND_PERIOD - loop.time()) > 0:
            await asyncio.sleep(wait)
        probe = probes[n % len(probes)]
        begun = time.perf_counter()
        message_id = await store.send(chats[n % len(chats)], f"{label} {n:04d}")
        returned.append(time.perf_counter() - begun)
        if message_id not in probe.pending_at:
            raise AssertionError("send() returned without showing its row")
        shown.append(probe.pending_at[message_id] - begun)
        sent.append((probe, message_id))
    sending = loop.time() - started
    alice.outbox.add = add  # type: ignore[method-assign]
    drain_started = loop.time()
    await until(lambda: store.status.outbox_depth == 0, "the outbox drained", within=120, poll=0.05)
    for probe, message_id in sent:
        await probe.wait_for(lambda p=probe, m=message_id: m in p.confirmed_at, "confirmed", within=30)  # type: ignore[misc]
    drained = loop.time() - drain_started
    for probe in probes:
        probe.close()
    return {
        "sends": OPTIMISTIC_SENDS,
        "chats": len(chats),
        "send_period_ms": SEND_PERIOD * 1000,
        "send_to_row_shown": summary_ms(shown),
        "of_which_outbox_add": summary_ms(add_times),
        "send_call_returns": summary_ms(returned),
        "sending_seconds": round(sending, 2),
        "all_confirmed_after_last_send_seconds": round(drained, 2),
    }


def sqlite_floor(directory: Path, count: int = 300, period: float = 0.01) -> dict[str, Any]:
    """The floor under a send: one bare SQLite insert with the outbox's settings (WAL, synchronous=FULL)
    on the same disk, paced, without asyncio or threads."""
    directory.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(directory / "floor.sqlite3", isolation_level=None)
    try:
        db.execute("pragma journal_mode = wal")
        db.execute("pragma synchronous = full")
        db.execute("create table t (id text primary key, content text not null)")
        times = []
        for n in range(count):
            time.sleep(period)
            begun = time.perf_counter()
            db.execute("insert into t values (?, ?)", (str(uuid.uuid4()), f"floor {n}"))
            times.append(time.perf_counter() - begun)
    finally:
        db.close()
    return summary_ms(times)


async def optimistic(clients: Clients, stack_info: dict[str, Any], chats: Sequence[ChatId]) -> dict[str, Any]:
    direct = await clients.open("alice-direct", ALICE_EMAIL)
    await clients.sign_in(direct, ALICE_EMAIL)
    result: dict[str, Any] = {
        "sqlite_commit_floor": await asyncio.to_thread(sqlite_floor, clients.home / "floor"),
        "direct": await _optimistic(direct, chats, "direct"),
    }
    await clients.close(direct)

    api = str(stack_info["api_url"]).removeprefix("http://").rstrip("/")
    host, port = api.rsplit(":", 1)
    proxy = LoopbackProxy(host, int(port), delay=PROXY_DELAY)
    proxy_port = proxy.start()
    try:
        delayed = await clients.open("alice-delayed", ALICE_EMAIL, supabase_url=f"http://127.0.0.1:{proxy_port}")
        rtt_started = time.perf_counter()
        await delayed.backend.health()
        rtt = time.perf_counter() - rtt_started
        await clients.sign_in(delayed, ALICE_EMAIL)
        result["delayed"] = await _optimistic(delayed, chats, "delayed")
        result["delayed"]["proxy"] = {
            "delay_each_way_ms": PROXY_DELAY * 1000,
            "health_check_round_trip_ms": ms(rtt),
            "connections": proxy.connections,
        }
        await clients.close(delayed)
    finally:
        proxy.stop()
    result["goal"] = "p99 <= 5 ms, with or without a 400 ms round trip"
    return result


# ==================================================================================================
# 2. end to end
# ==================================================================================================
async def _end_to_end(
    alice: DataLayer,
    bob: DataLayer,
    pushes: dict[MessageId, float],
    chat: ChatId,
    count: int,
    label: str,
    period: float | None,
) -> dict[str, Any]:
    """Alice sends ``count`` messages, one every ``period`` seconds (None: each as soon as bob shows the
    one before); each is timed from its ``send()`` call to bob's view holding it confirmed."""
    alice_probe = ViewProbe(await alice.store.open_chat(chat))
    bob_probe = ViewProbe(await bob.store.open_chat(chat))
    await alice.store.settle()
    await bob.store.settle()
    alice_base, bob_base = len(alice_probe.confirmed_at), len(bob_probe.confirmed_at)
    expected = [f"{label} {n:04d}" for n in range(count)]
    begun: dict[MessageId, float] = {}
    loop = asyncio.get_running_loop()
    started = loop.time()
    for n, text in enumerate(expected):
        if period is not None and (wait := started + n * period - loop.time()) > 0:
            await asyncio.sleep(wait)
        called = time.perf_counter()
        message_id = await alice.store.send(chat, text)
        begun[message_id] = called
        if period is None:
            await bob_probe.wait_for(lambda m=message_id: m in bob_probe.confirmed_at, "bob's row")  # type: ignore[misc]
    await bob_probe.wait_for(lambda: len(bob_probe.confirmed_at) - bob_base >= count, "bob's rows")
    await alice_probe.wait_for(lambda: len(alice_probe.confirmed_at) - alice_base >= count, "alice's rows")
    await until(lambda: alice.store.status.outbox_depth == 0, "alice's outbox drained")
    total, to_push, push_to_view, alice_confirmed = [], [], [], []
    for message_id, called in begun.items():
        seen = bob_probe.confirmed_at[message_id]
        pushed = pushes.get(message_id, seen)
        total.append(seen - called)
        to_push.append(pushed - called)
        push_to_view.append(seen - pushed)
        alice_confirmed.append(alice_probe.confirmed_at[message_id] - called)
    checks = bob_probe.check(f"{label} ", expected)
    alice_probe.close()
    bob_probe.close()
    return {
        "messages": count,
        "pacing": f"one send every {period * 1000:g} ms" if period is not None else "each after bob shows the last",
        "send_to_bob_confirmed": summary_ms(total),
        "send_to_bob_push": summary_ms(to_push),
        "bob_push_to_view": summary_ms(push_to_view),
        "send_to_alice_confirmed": summary_ms(alice_confirmed),
        **checks,
    }


async def end_to_end(clients: Clients, alice: DataLayer, chats: Sequence[ChatId]) -> dict[str, Any]:
    paced_chat, closed_chat, fast_chat = chats
    bob = await clients.open("bob-e2e", BOB_EMAIL)
    await clients.sign_in(bob, BOB_EMAIL)
    pushes = record_pushes(bob)
    default_frame = {"frame_interval_ms": FRAME_INTERVAL * 1000}
    result: dict[str, Any] = {
        "default_frame_interval": {
            **default_frame,
            **await _end_to_end(alice, bob, pushes, paced_chat, E2E_MESSAGES, "e2e", E2E_PERIOD),
        },
        "default_frame_interval_closed_loop": {
            **default_frame,
            **await _end_to_end(alice, bob, pushes, closed_chat, E2E_SMALL, "e2e-closed", None),
        },
    }
    await clients.close(bob)
    fast = await clients.open("bob-e2e-fast", BOB_EMAIL, frame_interval=0.0)
    await clients.sign_in(fast, BOB_EMAIL)
    fast_pushes = record_pushes(fast)
    result["frame_interval_0"] = {
        "frame_interval_ms": 0.0,
        **await _end_to_end(alice, fast, fast_pushes, fast_chat, E2E_SMALL, "e2e-fast", E2E_PERIOD),
    }
    await clients.close(fast)
    default, zero = result["default_frame_interval"], result["frame_interval_0"]
    result["frame_batching_share_p50_ms"] = round(
        default["bob_push_to_view"]["p50_ms"] - zero["bob_push_to_view"]["p50_ms"], 3
    )
    result["goal"] = "p50 <= 30 ms on loopback (default frame interval)"
    return result


# ==================================================================================================
# 3. back-fill
# ==================================================================================================
async def _insert_as(conn: asyncpg.Connection, user: uuid.UUID, chat: ChatId, texts: Sequence[str]) -> None:
    """Insert messages as ``user`` through row level security, as PostgREST would."""
    async with conn.transaction():
        await conn.execute(
            "select set_config('role', 'authenticated', true), set_config('request.jwt.claims', $1, true)",
            json.dumps({"sub": str(user), "role": "authenticated"}),
        )
        await conn.executemany(
            "insert into public.chat_messages (id, session_id, content) values ($1, $2, $3)",
            [(uuid.uuid4(), chat, text) for text in texts],
        )


async def backfill(clients: Clients, stack: Stack, db_url: str, alice_id: uuid.UUID, chat: ChatId) -> dict[str, Any]:
    bob = await clients.open("bob-backfill", BOB_EMAIL)
    await clients.sign_in(bob, BOB_EMAIL)
    probe = ViewProbe(await bob.store.open_chat(chat))
    await bob.store.settle()
    live_at: list[float] = []
    unsubscribe = bob.store.subscribe_status(
        lambda status: live_at.append(time.perf_counter()) if status.connection is ConnectionState.LIVE else None
    )
    expected = [f"missed {n:04d}" for n in range(BACKFILL_MESSAGES)]
    base = len(probe.confirmed_at)
    try:
        stopping = time.perf_counter()
        await asyncio.to_thread(stack.gateway.stop)
        stopped = time.perf_counter() - stopping
        await until(lambda: bob.store.status.connection is not ConnectionState.LIVE, "bob notices")
        conn = await asyncpg.connect(db_url)
        try:
            await _insert_as(conn, alice_id, chat, expected)
        finally:
            await conn.close()
    finally:
        monitor = StallMonitor()
        monitor.start()
        callbacks = len(probe.callbacks)
        starting = time.perf_counter()
        await asyncio.to_thread(stack.gateway.start)
    started = time.perf_counter()
    try:
        await probe.wait_for(lambda: len(probe.confirmed_at) - base >= BACKFILL_MESSAGES, "the back-fill", within=120)
    finally:
        await monitor.stop()
    shown = time.perf_counter()
    view_updates = len(probe.callbacks) - callbacks
    unsubscribe()
    live = next((t for t in live_at if t >= starting), None)
    await asyncio.sleep(1.0)  # anything doubled by a late realtime push or a second back-fill shows now
    checks = probe.check("missed ", expected)
    probe.close()
    await clients.close(bob)
    return {
        "messages": BACKFILL_MESSAGES,
        "gateway_stop_seconds": round(stopped, 2),
        "gateway_start_seconds": round(started - starting, 2),
        "start_to_all_shown_ms": ms(shown - started),
        "start_to_link_live_ms": ms(live - started) if live is not None else None,
        "link_live_to_all_shown_ms": ms(shown - live) if live is not None else None,
        "view_updates": view_updates,
        "loop_stall_while_reconnecting_and_back_filling": monitor.figures(),
        **checks,
        "goal": "lost 0, duplicates 0",
    }


# ==================================================================================================
# 4. sustained
# ==================================================================================================
def _writer_process(db_url: str, user: str, chat: str, rate: int, seconds: int, out: str) -> None:
    """In another process: insert ``rate`` messages/s for ``seconds`` as ``user``; save commit times."""

    async def write() -> tuple[float, list[float]]:
        conn = await asyncpg.connect(db_url)
        claims = json.dumps({"sub": user, "role": "authenticated"})
        commits: list[float] = []
        try:
            # The user's role and claims for the whole session (as PostgREST sets them per request): each
            # insert is then one statement in its own transaction, one round trip. (Setting them in each
            # transaction took four round trips an insert, and a loaded machine held the writer to 120-140/s.)
            await conn.execute(
                "select set_config('role', 'authenticated', false), set_config('request.jwt.claims', $1, false)",
                claims,
            )
            start = time.perf_counter() + 0.1
            for n in range(rate * seconds):
                if (wait := start + n / rate - time.perf_counter()) > 0:
                    await asyncio.sleep(wait)
                await conn.execute(
                    "insert into public.chat_messages (id, session_id, content) values ($1, $2, $3)",
                    uuid.uuid4(),
                    uuid.UUID(chat),
                    f"sustained {n:05d}",
                )
                commits.append(time.perf_counter())  # CLOCK_MONOTONIC: comparable across processes
        finally:
            await conn.close()
        return start, commits

    start, commits = asyncio.run(write())
    Path(out).write_text(json.dumps({"start": start, "commits": commits}))


class StallMonitor:
    """Sleeps ``tick`` seconds over and over and records how late each wake-up is."""

    def __init__(self, tick: float = STALL_TICK) -> None:
        self.tick = tick
        self.late: list[float] = []
        self.busy: list[float] = []  # CPU time the loop's thread used while the monitor slept
        self.gc_pauses: list[float] = []
        # Time the loop's thread was ready to run but had no core (Linux schedstat), per wake-up: what of
        # a stall was the shared machine's, not the app's.
        self.runqueue: list[float] = []
        self._task: asyncio.Task[None] | None = None
        self._gc_started = 0.0

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
        else:
            self.gc_pauses.append(time.perf_counter() - self._gc_started)

    def start(self) -> None:
        gc.callbacks.append(self._on_gc)
        self._task = asyncio.get_running_loop().create_task(self._run(), name="stall-monitor")

    async def stop(self) -> None:
        gc.callbacks.remove(self._on_gc)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            before = time.perf_counter()
            cpu = time.thread_time()
            waited = _runqueue_wait()
            await asyncio.sleep(self.tick)
            self.late.append(max(0.0, time.perf_counter() - before - self.tick))
            self.busy.append(time.thread_time() - cpu)
            after = _runqueue_wait()
            if waited is not None and after is not None:
                self.runqueue.append(after - waited)

    def figures(self) -> dict[str, Any]:
        """Late wake-ups; and, for the worst, how much was the loop's own work (CPU) rather than waiting
        for a core (the machine is shared) or for the GIL."""
        worst = max(range(len(self.late)), key=self.late.__getitem__)
        return {
            "tick_ms": self.tick * 1000,
            "wakeups": len(self.late),
            "p50_ms": ms(statistics.median(self.late)),
            "p99_ms": ms(percentile(self.late, 99)),
            "max_ms": ms(self.late[worst]),
            "max_stall_cpu_ms": ms(self.busy[worst]),
            "longest_cpu_between_wakeups_ms": ms(max(self.busy)),
            **self._runqueue_figures(worst),
        }

    def _runqueue_figures(self, worst: int) -> dict[str, Any]:
        if len(self.runqueue) != len(self.late):
            return {}  # no schedstat here
        own = [max(0.0, late - wait) for late, wait in zip(self.late, self.runqueue, strict=True)]
        return {
            "max_stall_runqueue_wait_ms": ms(self.runqueue[worst]),
            # A wake-up's lateness less the time its thread waited for a core: the app's own share.
            "stall_without_runqueue_wait_p99_ms": ms(percentile(own, 99)),
            "stall_without_runqueue_wait_max_ms": ms(max(own)),
        }


def _runqueue_wait() -> float | None:
    """Seconds this thread has spent runnable but not running (``/proc/thread-self/schedstat``'s second
    field, nanoseconds), or None where the kernel does not say."""
    try:
        with open("/proc/thread-self/schedstat") as stat:
            return int(stat.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return None


async def sustained(
    clients: Clients,
    db_url: str,
    alice_id: uuid.UUID,
    chat: ChatId,
    out: Path,
    trace: contextlib.AbstractContextManager[Any] | None = None,
) -> dict[str, Any]:
    """``trace``: entered while the stall monitor runs (``bench stream`` passes a ``LoopTrace`` on request)."""
    bob = await clients.open("bob-sustained", BOB_EMAIL)
    await clients.sign_in(bob, BOB_EMAIL)
    pushes = record_pushes(bob)
    arrivals = record_arrivals(bob)
    probe = ViewProbe(await bob.store.open_chat(chat))
    await bob.store.settle()
    total = SUSTAINED_RATE * SUSTAINED_SECONDS
    base = len(probe.confirmed_at)
    monitor = StallMonitor()
    gc.collect()
    monitor.start()
    tracing = contextlib.ExitStack()
    if trace is not None:
        tracing.enter_context(trace)
    context = multiprocessing.get_context("spawn")
    writer = context.Process(
        target=_writer_process,
        args=(db_url, str(alice_id), str(chat), SUSTAINED_RATE, SUSTAINED_SECONDS, str(out)),
        name="sustained-writer",
    )
    first_callback = len(probe.callbacks)
    writer.start()
    try:
        await until(lambda: not writer.is_alive(), "the writer", within=SUSTAINED_SECONDS * 3, poll=0.1)
        if writer.exitcode != 0:
            raise RuntimeError(f"the writer failed with exit code {writer.exitcode}")
        await probe.wait_for(lambda: len(probe.confirmed_at) - base >= total, "all sustained messages")
    finally:
        if writer.is_alive():
            writer.terminate()
        writer.join(10)
        tracing.close()
        await monitor.stop()
    written = json.loads(await asyncio.to_thread(out.read_text))
    commits: list[float] = written["commits"]
    window_start, window_end = commits[0], commits[-1]
    callbacks = [t for t in probe.callbacks[first_callback:] if window_start <= t <= window_end]
    index = first_callback + probe.callbacks[first_callback:].index(callbacks[0]) if callbacks else first_callback
    operations = probe.operations[index : index + len(callbacks)]
    rows = probe.rows_touched[index : index + len(callbacks)]
    seconds = window_end - window_start
    per_second = [0] * (int(seconds) + 1)
    for t in callbacks:
        per_second[int(t - window_start)] += 1
    full_seconds = per_second[:-1] or per_second
    expected = [f"sustained {n:05d}" for n in range(total)]
    by_content = {m.content: m.id for m in probe.rows if m.content.startswith("sustained ")}
    lags, to_push, push_to_view, to_enqueue = [], [], [], []
    for text, committed in zip(expected, commits, strict=True):
        if (message_id := by_content.get(text)) is not None:
            seen = probe.confirmed_at[message_id]
            enqueued = pushes.get(message_id, seen)
            arrived = arrivals.get(message_id, enqueued)
            lags.append(seen - committed)
            to_push.append(arrived - committed)
            push_to_view.append(seen - arrived)
            to_enqueue.append(enqueued - arrived)
    checks = probe.check("sustained ", expected)
    probe.close()
    await clients.close(bob)
    achieved = round((len(commits) - 1) / seconds, 1)
    return {
        "rate_per_s": SUSTAINED_RATE,
        "seconds": SUSTAINED_SECONDS,
        "messages": total,
        "achieved_insert_rate_per_s": achieved,
        "writer_reached_rate": achieved >= SUSTAINED_RATE * 0.98,
        "listener_callbacks_per_s": round(len(callbacks) / seconds, 1),
        "listener_callbacks_per_s_p50_of_seconds": statistics.median(full_seconds),
        "listener_callbacks_per_s_min_of_seconds": min(full_seconds),
        "row_operations_per_s": round(sum(operations) / seconds, 1),
        "rows_per_s": round(sum(rows) / seconds, 1),
        "rows_per_callback_p50": statistics.median(rows) if rows else 0,
        "commit_to_view": summary_ms(lags),
        "commit_to_bob_push": summary_ms(to_push),
        "bob_push_to_view": summary_ms(push_to_view),
        "bob_push_to_live_sync": summary_ms(to_enqueue),
        "loop_stall": monitor.figures(),
        "gc_pauses": {
            "count": len(monitor.gc_pauses),
            "max_ms": ms(max(monitor.gc_pauses, default=0.0)),
        },
        **checks,
        "goal": "stall <= 50 ms, none lost or reordered",
    }


# ==================================================================================================
# the whole run
# ==================================================================================================
async def _run(stack: Stack, info: dict[str, Any], home: Path) -> dict[str, Any]:
    clients = Clients(info, home)
    try:
        owner, alice_id = await clients.owner()
        chats = [await new_chat(owner, None, f"optimistic {n}") for n in range(OPTIMISTIC_CHATS)]
        e2e_chats = [await new_chat(owner, None, f"end to end {n}") for n in range(3)]
        backfill_chat = await new_chat(owner, None, "back-fill")
        sustained_chat = await new_chat(owner, None, "sustained")
        await clients.close(owner)

        figures: dict[str, Any] = {}
        timer = time.perf_counter()
        figures["optimistic"] = await optimistic(clients, info, chats)
        print(f"   optimistic done in {time.perf_counter() - timer:.1f} s", flush=True)

        timer = time.perf_counter()
        alice = await clients.open("alice-e2e", ALICE_EMAIL)
        await clients.sign_in(alice, ALICE_EMAIL)
        figures["end_to_end"] = await end_to_end(clients, alice, e2e_chats)
        await clients.close(alice)
        print(f"   end to end done in {time.perf_counter() - timer:.1f} s", flush=True)

        timer = time.perf_counter()
        figures["backfill"] = await backfill(clients, stack, str(info["db_url"]), alice_id, backfill_chat)
        print(f"   back-fill done in {time.perf_counter() - timer:.1f} s", flush=True)

        timer = time.perf_counter()
        figures["sustained"] = await sustained(
            clients, str(info["db_url"]), alice_id, sustained_chat, home / "writer.json"
        )
        print(f"   sustained done in {time.perf_counter() - timer:.1f} s", flush=True)
        return figures
    finally:
        await clients.close_all()


@contextlib.contextmanager
def _home() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="bench-live-") as path:
        yield Path(path)


def run() -> dict[str, Any]:
    with throwaway_stack() as (stack, info), _home() as home:
        return asyncio.run(_run(stack, info, home))
