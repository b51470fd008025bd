"""One cell of the matrix, or the soak: a fresh stack, client processes, a fault, and the accounting.

Each cell gets its own throwaway stack and its own client processes, so a fault that leaves something broken
(on main, a deafened socket stays deaf) cannot spoil the next cell. ``alice`` talks to the gateway directly;
``bob`` goes through a ``BlackholeProxy`` (a plain pass-through until a cell black-holes it). Both send at a
steady pace into a new chat (``carol`` is its third member) before, during and for a while after the fault;
every message must end up stored once and shown once, confirmed, in alice's and bob's open timelines.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import shutil
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from bench.chaos.accounting import FaultWindow, SentMessage, Tally, ViewRecord, account
from bench.chaos.driver import ClientError, ClientProcess
from bench.chaos.faults import Fault
from devstack.proxy import LoopbackProxy as BlackholeProxy
from devstack.stack import Stack
from devstack.throwaway import throwaway_stack

EMAILS = {"alice": "alice@example.com", "bob": "bob@example.com", "carol": "carol@example.com"}
CAROL = uuid.UUID("ca201000-0000-4000-8000-000000000003")  # the seed's carol
REDIS_DB = {"alice": 1, "bob": 2, "carol": 3}


@dataclass
class CellSpec:
    """One cell of the matrix.

    Args:
        name: Short id (``--cells``), also in every message's text.
        title: What the table prints.
        fault: The fault, run once after ``before`` seconds of sending.
        before, after: Seconds of sending before the fault and after it ends.
        rate: Messages per second per sending client.
        writer_rate: Messages per second of carol's SQL writer (0: none).
        stack: Overrides for the throwaway stack (a short token lifetime).
    """

    name: str
    title: str
    fault: Fault
    before: float = 3.0
    after: float = 2.0
    rate: float = 5.0
    writer_rate: float = 10.0
    stack: dict[str, Any] = field(default_factory=dict)


@dataclass
class Options:
    observe: float = 40.0  # seconds after sending stops to wait for everything to heal
    linger: float = 1.5  # seconds to keep watching once healed (late duplicates)
    artifacts: Path = Path("tests/artifacts/chaos")


class Recorder:
    """Everything the client processes report, kept as the accounting needs it."""

    def __init__(self) -> None:
        self.sent: dict[str, SentMessage] = {}
        self.views: dict[tuple[str, str], ViewRecord] = {}
        self.states: list[tuple[float, str, str, int]] = []  # time, client label, connection, outbox depth
        self.errors: list[tuple[float, str, str]] = []

    def sink(self, client: ClientProcess, event: dict[str, Any]) -> None:
        kind = event.get("ev")
        if kind == "s":
            self.sent[event["k"]] = SentMessage(event["k"], client.name, event["c"], float(event["t"]))
        elif kind == "v":
            view = self.views.get((client.name, event["c"]))
            if view is not None and view.name == client.label:
                view.observe(event["k"], float(event["t"]), int(event["n"]), int(event["ok"]))
        elif kind == "st":
            self.states.append((float(event["t"]), client.label, str(event["conn"]), int(event["outbox"])))
        elif kind == "err":
            self.errors.append((float(event["t"]), client.label, str(event["what"])))


class SqlWriter:
    """Carol's other device: inserts straight into PostgreSQL as carol, through RLS, as PostgREST would.

    Not a data layer: it adds a steady stream of commits that only realtime (or a back-fill) can bring to
    alice and bob, at a higher rate than their own sends, so a push lost around a fault shows. A message
    counts as sent once its insert committed; an insert that fails (the database is down) is retried with a
    new id after a pause, and one whose outcome is unknown shows as ``extra`` if it was stored.
    """

    def __init__(self, db_url: str, record: Recorder, prefix: str, rate: float) -> None:
        self.db_url = db_url
        self.record = record
        self.prefix = prefix
        self.rate = rate
        self.failures = 0
        self._task: asyncio.Task[None] | None = None

    def start(self, chats: Sequence[str]) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run([uuid.UUID(c) for c in chats]))

    async def stop(self) -> None:
        if self._task is not None:
            await _cancel(self._task)

    async def _run(self, chats: list[uuid.UUID]) -> None:
        claims = json.dumps({"sub": str(CAROL), "role": "authenticated"})
        loop = asyncio.get_running_loop()
        started = loop.time()
        n = 0
        conn: asyncpg.Connection | None = None
        try:
            while True:
                if (wait := started + n / self.rate - loop.time()) > 0:
                    await asyncio.sleep(wait)
                chat = chats[n % len(chats)]
                key = f"{self.prefix} {n:06d}"
                n += 1
                try:
                    if conn is None or conn.is_closed():
                        conn = await asyncpg.connect(self.db_url, timeout=2)
                    async with conn.transaction():
                        await conn.execute(
                            "select set_config('role', 'authenticated', true),"
                            " set_config('request.jwt.claims', $1, true)",
                            claims,
                        )
                        await conn.execute(
                            "insert into public.chat_messages (id, session_id, content) values ($1, $2, $3)",
                            uuid.uuid4(),
                            chat,
                            key,
                        )
                except Exception:
                    # Any failed insert (asyncpg raises outside its error tree during a restart, e.g.
                    # InternalClientError) is not sent; if it was stored after all, it counts as ``extra``.
                    self.failures += 1
                    if conn is not None:
                        conn.terminate()
                        conn = None
                    continue
                self.record.sent[key] = SentMessage(key, "carol(sql)", str(chat), time.monotonic())
        finally:
            if conn is not None:
                conn.terminate()


class Harness:
    """The world of one cell (or of the soak)."""

    def __init__(self, cell: str, stack: Stack, info: dict[str, Any], home: Path, logs: Path) -> None:
        self.cell = cell
        self.stack = stack
        self.info = info
        self.anon_key = str(info["anon_key"])
        self.home = home
        self.logs = logs
        self.proxy = BlackholeProxy(stack.config.host, stack.config.api_port)
        self.record = Recorder()
        self.clients: dict[str, ClientProcess] = {}
        self.viewers: list[str] = []  # whose open timelines must show every message
        self.chats: list[str] = []
        self.rate = 5.0
        self.notes: list[str] = []
        self.outbox_samples: list[tuple[float, int]] = []  # (seconds into the run, messages in all outboxes)
        self.began = time.monotonic()
        self._teardown: list[Callable[[], Awaitable[None]]] = []

    def note(self, text: str) -> None:
        self.notes.append(f"{time.monotonic() - self.began:7.2f} s  {text}")

    def on_teardown(self, close: Callable[[], Awaitable[None]]) -> None:
        self._teardown.append(close)

    def prefix(self, client: ClientProcess) -> str:
        return f"chaos {self.cell} {client.name}{client.run}"

    # --- clients -----------------------------------------------------------------------------------
    async def add_client(self, name: str, *, via_proxy: bool = False, viewer: bool = True) -> ClientProcess:
        client = ClientProcess(
            name,
            EMAILS[name],
            home=self.home / name,
            url=self.proxy.url if via_proxy else str(self.info["api_url"]),
            anon_key=self.anon_key,
            redis_url=str(self.info["redis_url"]).rsplit("/", 1)[0] + f"/{REDIS_DB[name]}",
            logs=self.logs,
            sink=self.record.sink,
        )
        self.clients[name] = client
        if viewer:
            self.viewers.append(name)
        await client.start()
        await client.sign_in()
        await client.call("wait_live", within=60)
        return client

    async def open_views(self, client: ClientProcess, *, full: bool = False) -> None:
        for chat in self.chats:
            await client.call("wait_chat", chat=chat, within=60)
            self.record.views[(client.name, chat)] = ViewRecord(client.label, time.monotonic())
            await client.call("open", chat=chat, full=full)

    async def start_sending(self, client: ClientProcess) -> None:
        await client.call("send_loop", chats=self.chats, rate=self.rate, prefix=self.prefix(client))

    async def stop_sending(self) -> None:
        for client in self.clients.values():
            with contextlib.suppress(ClientError, ConnectionError):
                await client.call("stop_sending", within=30)

    async def relaunch(self, client: ClientProcess) -> None:
        """Start ``client`` again after a crash: restore its session, open its views in full, send again."""
        await client.start()
        await client.restore()
        if client.name in self.viewers:
            await self.open_views(client, full=True)
        await self.start_sending(client)

    # --- the state of things -----------------------------------------------------------------------
    def required_views(self) -> dict[str, list[ViewRecord]]:
        return {
            chat: [self.record.views[(name, chat)] for name in self.viewers if (name, chat) in self.record.views]
            for chat in self.chats
        }

    def consistent(self) -> bool:
        """Every message sent so far is shown once, confirmed, in every view that must show it."""
        views = self.required_views()
        return all(all(v.shown_once_now(key) for v in views[m.chat]) for key, m in self.record.sent.items())

    async def stored(self) -> dict[str, int]:
        conn = await asyncpg.connect(str(self.info["db_url"]))
        try:
            rows = await conn.fetch(
                "select content, count(*) as copies from public.chat_messages"
                " where session_id = any($1::uuid[]) and content like $2 group by content",
                [uuid.UUID(chat) for chat in self.chats],
                f"chaos {self.cell} %",
            )
        finally:
            await conn.close()
        return {row["content"]: int(row["copies"]) for row in rows}

    async def client_status(self) -> dict[str, Any]:
        status = {}
        for client in self.clients.values():
            try:
                reply = await client.call("status", within=15)
                status[client.label] = {key: reply[key] for key in ("conn", "outbox", "reconnects", "reachable")}
            except (ClientError, ConnectionError) as error:
                status[client.label] = {"error": str(error)}
        return status

    async def sample_outboxes(self, every: float) -> None:
        """Note each client's outbox depth every ``every`` seconds (is the load keeping up?)."""
        while True:
            await asyncio.sleep(every)
            depths = []
            total = 0
            for client in list(self.clients.values()):
                try:
                    reply = await client.call("status", within=5)
                    depths.append(f"{client.label} {reply['outbox']}")
                    total += int(reply["outbox"])
                except (ClientError, ConnectionError):
                    depths.append(f"{client.label} ?")
            self.outbox_samples.append((time.monotonic() - self.began, total))
            self.note("outboxes: " + ", ".join(depths))

    def timeline(self) -> list[str]:
        """The connection states and send errors the clients reported, with the harness's notes."""
        lines = list(self.notes)
        for t, label, conn, outbox in self.record.states:
            lines.append(f"{t - self.began:7.2f} s  {label}: {conn} (outbox {outbox})")
        for t, label, what in self.record.errors[:20]:
            lines.append(f"{t - self.began:7.2f} s  {label}: {what}")
        return sorted(lines)

    async def settle(self, deadline: float, options: Options) -> bool:
        """Wait until everything is consistent (then ``linger``) or ``deadline``; True when consistent."""
        while time.monotonic() < deadline:
            if self.consistent():
                await asyncio.sleep(options.linger)
                if self.consistent():
                    return True
            await asyncio.sleep(0.2)
        return self.consistent()

    async def close(self) -> None:
        for close in reversed(self._teardown):
            with contextlib.suppress(Exception):
                await close()
        for client in self.clients.values():
            with contextlib.suppress(Exception):
                await client.quit()
        self.proxy.stop()


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def _keep_logs(stack: Stack, logs: Path) -> None:
    """Copy the stack's logs (gateway, postgres, redis) next to the clients' before the stack is deleted."""
    for path in stack.config.logs_dir.glob("*.log"):
        with contextlib.suppress(OSError):
            shutil.copyfile(path.resolve(), logs / f"stack-{path.name}")


@dataclass
class CellResult:
    name: str
    title: str
    tally: Tally
    ok: bool
    faults: list[FaultWindow]
    began: float
    wall_s: float
    clients: dict[str, Any]
    timeline: list[str]
    error: str | None = None
    fault_kinds: list[str] = field(default_factory=list)
    load: dict[str, Any] = field(default_factory=dict)  # the soak: offered and delivered rates, backlog

    def as_dict(self) -> dict[str, Any]:
        return {
            "cell": self.name,
            "title": self.title,
            "ok": self.ok,
            "error": self.error,
            **self.tally.as_dict(),
            "faults": [
                {
                    "kind": f.kind,
                    "at_s": round(f.started - self.began, 2),
                    "lasted_s": round(f.ended - f.started, 2),
                }
                for f in self.faults
            ],
            "clients": self.clients,
            "timeline": self.timeline,
            "wall_s": round(self.wall_s, 1),
            **({"load": self.load} if self.load else {}),
        }


async def _finish(
    h: Harness, spec_name: str, title: str, faults: list[FaultWindow], error: str | None, options: Options
) -> CellResult:
    tally = Tally()
    clients: dict[str, Any] = {}
    try:
        stored = await h.stored()
        tally = account(h.record.sent.values(), stored, h.required_views(), faults)
        clients = await h.client_status()
    except Exception as failure:  # the accounting needs PostgreSQL; say why it could not run
        error = error or f"accounting failed: {type(failure).__name__}: {failure}"
    ok = error is None and tally.ok()
    return CellResult(
        spec_name, title, tally, ok, faults, h.began, time.monotonic() - h.began, clients, h.timeline(), error
    )


async def run_cell(spec: CellSpec, options: Options) -> CellResult:
    """Run one cell on its own stack; never raises (a broken run is a failed cell that says why)."""
    home = Path(tempfile.mkdtemp(prefix=f"chaos-{spec.name}-"))
    logs = options.artifacts / spec.name
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir(parents=True, exist_ok=True)
    try:
        with throwaway_stack(**spec.stack) as (stack, info):
            h = Harness(spec.name, stack, info, home, logs)
            h.rate = spec.rate
            faults: list[FaultWindow] = []
            error: str | None = None
            writer: SqlWriter | None = None
            try:
                h.proxy.start()
                alice = await h.add_client("alice")
                bob = await h.add_client("bob", via_proxy=True)
                members = [EMAILS["bob"], EMAILS["carol"]]
                reply = await alice.call("create_chat", title=f"chaos {spec.name}", members=members)
                h.chats = [str(reply["chat"])]
                for client in (alice, bob):
                    await h.open_views(client)
                h.note("clients live, views open; sending")
                for client in (alice, bob):
                    await h.start_sending(client)
                if spec.writer_rate:
                    writer = SqlWriter(str(info["db_url"]), h.record, f"chaos {spec.name} carolsql", spec.writer_rate)
                    writer.start(h.chats)
                    h.on_teardown(writer.stop)
                await asyncio.sleep(spec.before)
                window = await spec.fault(h)
                faults.append(window)
                h.note(f"fault over: {window.kind}")
                await asyncio.sleep(spec.after)
                await h.stop_sending()
                if writer is not None:
                    await writer.stop()
                    if writer.failures:
                        h.note(f"carol's SQL writer: {writer.failures} insert(s) failed and were not counted as sent")
                h.note("sending stopped")
                healed = await h.settle(time.monotonic() + options.observe, options)
                h.note("consistent" if healed else f"not consistent {options.observe:g} s after sending stopped")
            except Exception as failure:
                error = f"{type(failure).__name__}: {failure}"
                h.note(f"harness error: {error}")
                with contextlib.suppress(Exception):
                    await h.stop_sending()
            result = await _finish(h, spec.name, spec.title, faults, error, options)
            await h.close()
            _keep_logs(stack, logs)
            return result
    finally:
        shutil.rmtree(home, ignore_errors=True)


# ==================================================================================================
# the soak
# ==================================================================================================
@dataclass
class SoakSpec:
    seconds: float
    rate: float  # messages per second, all senders together
    interval: float  # a fault every this many seconds
    faults: Sequence[tuple[str, Fault]]
    seed: int


async def run_soak(spec: SoakSpec, options: Options) -> CellResult:
    """Alice, bob (through the proxy) and carol send ``rate`` messages/s in all into two chats for ``seconds``
    while a fault drawn at random (every kind once before any repeats) strikes every ``interval`` seconds.
    Carol is the client the app-SIGKILL fault kills and relaunches; alice's and bob's views must show all."""
    name = "soak"
    home = Path(tempfile.mkdtemp(prefix="chaos-soak-"))
    logs = options.artifacts / name
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir(parents=True, exist_ok=True)
    rng = random.Random(spec.seed)
    title = f"soak {spec.seconds:g} s at {spec.rate:g} msg/s, a fault every {spec.interval:g} s"
    try:
        with throwaway_stack() as (stack, info):
            h = Harness(name, stack, info, home, logs)
            h.rate = spec.rate / 3
            faults: list[FaultWindow] = []
            kinds: list[str] = []
            error: str | None = None
            sending_ended = time.monotonic() + spec.seconds
            try:
                h.proxy.start()
                alice = await h.add_client("alice")
                bob = await h.add_client("bob", via_proxy=True)
                carol = await h.add_client("carol", viewer=False)
                for n in range(2):
                    reply = await alice.call(
                        "create_chat", title=f"chaos soak {n}", members=[EMAILS["bob"], EMAILS["carol"]]
                    )
                    h.chats.append(str(reply["chat"]))
                for client in (alice, bob):
                    await h.open_views(client)
                for client in (alice, bob, carol):
                    await h.start_sending(client)
                h.note(f"soak started (seed {spec.seed})")
                sampler = asyncio.get_running_loop().create_task(h.sample_outboxes(5.0))
                h.on_teardown(lambda: _cancel(sampler))
                started = time.monotonic()
                bag: list[tuple[str, Fault]] = []
                k = 1
                while (at := started + k * spec.interval) < started + spec.seconds - spec.interval / 2:
                    await asyncio.sleep(max(0.0, at - time.monotonic()))
                    if not bag:
                        bag = list(spec.faults)
                        rng.shuffle(bag)
                    kind, fault = bag.pop()
                    h.note(f"fault {k}: {kind}")
                    faults.append(await fault(h))
                    kinds.append(kind)
                    k += 1
                await asyncio.sleep(max(0.0, started + spec.seconds - time.monotonic()))
                await h.stop_sending()
                sending_ended = time.monotonic()
                h.note("sending stopped")
                healed = await h.settle(time.monotonic() + options.observe, options)
                h.note("consistent" if healed else f"not consistent {options.observe:g} s after sending stopped")
            except Exception as failure:
                error = f"{type(failure).__name__}: {failure}"
                h.note(f"harness error: {error}")
                with contextlib.suppress(Exception):
                    await h.stop_sending()
            result = await _finish(h, name, title, faults, error, options)
            result.fault_kinds = kinds
            result.load = {
                "offered_per_s": spec.rate,
                "sent_per_s": round(result.tally.sent / spec.seconds, 1),
                "stored_per_s": round(result.tally.stored / spec.seconds, 1),
                "outbox_max": max((n for _, n in h.outbox_samples), default=0),
                "outbox_at_end_of_sending": next(
                    (n for t, n in reversed(h.outbox_samples) if t <= sending_ended - h.began), 0
                ),
            }
            await h.close()
            _keep_logs(stack, logs)
            return result
    finally:
        shutil.rmtree(home, ignore_errors=True)
