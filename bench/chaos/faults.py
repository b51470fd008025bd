"""The faults, all real: signals to real processes by pid, real restarts, real sockets. No mocks.

Each fault is a coroutine that takes the harness, does its damage, holds it as long as it lasts, ends it
and returns its ``FaultWindow``: when it began, and when it was over (the server back and accepting, the
network usable again, the app relaunched). Meanwhile the clients keep sending.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import websockets

from bench.chaos.accounting import FaultWindow
from devstack.procs import cmdline, pid_alive, port_in_use

if TYPE_CHECKING:
    from bench.chaos.harness import Harness

Fault = Callable[["Harness"], Awaitable[FaultWindow]]

# A lone surrogate: ``json.dumps`` (ASCII output) writes it as the escape ``"\\ud800"``, valid JSON text
# whose string no UTF-8 encoding exists for.
LONE_SURROGATE = "\ud800"


def raw_json(value: Any) -> str:
    """JSON text with every non-ASCII character escaped, lone surrogates included (as they come)."""
    return json.dumps(value, ensure_ascii=True, separators=(",", ":"))


def child_pids(parent: int) -> list[int]:
    """The live children of ``parent`` (from /proc; the supervisor does not report its server's pid)."""
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == parent and fields[0] != "Z":
            children.append(int(entry.name))
    return children


def gateway_server_pid(h: Harness) -> int | None:
    """The pid of the gateway server process under the stack's supervisor."""
    supervisor = h.stack.gateway.pid()
    if supervisor is None:
        return None
    for pid in child_pids(supervisor):
        if "devstack.gateway.server" in " ".join(cmdline(pid)):
            return pid
    return None


async def wait_until(check: Callable[[], bool], what: str, within: float = 60.0) -> None:
    async with asyncio.timeout(within):
        while not check():  # noqa: ASYNC110 - polling processes and ports
            await asyncio.sleep(0.02)


def _gateway_accepts(h: Harness) -> bool:
    return port_in_use(h.stack.config.host, h.stack.config.api_port)


# ==================================================================================================
# servers
# ==================================================================================================
async def gateway_sigkill(h: Harness) -> FaultWindow:
    """SIGKILL the gateway server while both clients send; its supervisor starts a new one."""
    server = gateway_server_pid(h)
    if server is None:
        raise RuntimeError("no gateway server process to kill")
    started = time.monotonic()
    os.kill(server, signal.SIGKILL)
    h.note(f"SIGKILL gateway server pid {server}")

    def back() -> bool:
        pid = gateway_server_pid(h)
        return pid is not None and pid != server and _gateway_accepts(h)

    await wait_until(back, "a new gateway server accepting")
    return FaultWindow("gateway SIGKILL", started, time.monotonic())


def gateway_down(seconds: float) -> Fault:
    async def fault(h: Harness) -> FaultWindow:
        """Stop the gateway (SIGTERM to its supervisor, by pid), keep it down, start it again."""
        started = time.monotonic()
        await asyncio.to_thread(h.stack.gateway.stop)
        await asyncio.sleep(seconds)
        await asyncio.to_thread(h.stack.gateway.start)
        h.note(f"gateway down {time.monotonic() - started:.1f} s")
        return FaultWindow(f"gateway down {seconds:g} s", started, time.monotonic())

    return fault


async def postgres_restart(h: Harness) -> FaultWindow:
    """Restart PostgreSQL (pg_ctl stop --mode=fast, then start) under the running gateway."""
    started = time.monotonic()
    await asyncio.to_thread(h.stack.postgres.stop)
    await asyncio.to_thread(h.stack.postgres.start)
    h.note(f"postgres restarted in {time.monotonic() - started:.1f} s")
    return FaultWindow("PostgreSQL restart", started, time.monotonic())


def redis_sigkill(down: float) -> Fault:
    async def fault(h: Harness) -> FaultWindow:
        """SIGKILL the Redis the clients cache in, keep it down, start it again (empty)."""
        pid = h.stack.redis.pid()
        if pid is None:
            raise RuntimeError("no redis-server to kill")
        started = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        await wait_until(lambda: not pid_alive(pid), "redis-server gone")
        await asyncio.sleep(down)
        await asyncio.to_thread(h.stack.redis.start)
        h.note(f"SIGKILL redis-server pid {pid}, restarted after {time.monotonic() - started:.1f} s")
        return FaultWindow("Redis SIGKILL", started, time.monotonic())

    return fault


# ==================================================================================================
# the network
# ==================================================================================================
async def blackhole(h: Harness) -> FaultWindow:
    """Black-hole every connection bob has open (realtime socket and REST keep-alives): no FIN, no data.

    The network works again at once for new connections, so the fault is over as soon as it begins; what
    heals it is the client noticing that its open connections are dead.
    """
    started = time.monotonic()
    count = h.proxy.blackhole()
    h.note(f"black-holed {count} open connection(s) of bob's")
    return FaultWindow("realtime black-holed", started, time.monotonic())


# ==================================================================================================
# third parties
# ==================================================================================================
def app_topics(h: Harness) -> list[str]:
    """Every realtime topic the app joins for the harness's chats and users, now or with private topics.

    On main the app joins ``user:<id>`` (postgres_changes) and ``chat:<id>`` (typing and presence) as
    public channels (``desktop_chat/realtime/manager.py``); the schema's private topics are ``chat:<id>``,
    ``chat:<id>:typing`` and ``user:<id>`` (``supabase/migrations/*_realtime_private_topics.sql``).
    """
    topics = []
    for chat in h.chats:
        topics += [f"chat:{chat}", f"chat:{chat}:typing"]
    topics += [f"user:{client.user_id}" for client in h.clients.values() if client.user_id]
    return topics


async def _sign_in_raw(h: Harness, email: str) -> str:
    """An access token for ``email`` straight from /auth/v1 (a third party needs no app)."""
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.post(
            f"{h.info['api_url']}/auth/v1/token",
            params={"grant_type": "password"},
            headers={"apikey": h.anon_key},
            json={"email": email, "password": "password123"},
        )
        response.raise_for_status()
        token: str = response.json()["access_token"]
        return token


async def surrogate_broadcast(h: Harness) -> FaultWindow:
    """``POST /realtime/v1/api/broadcast`` with ``"\\ud800"`` in the payload, to every topic the app uses.

    Public topics with the anon key (anyone on the internet can do this), private ones with the token of
    carol, a member of the chats (who may write the typing topic).
    """
    token = await _sign_in_raw(h, "carol@example.com")
    topics = app_topics(h)
    started = time.monotonic()
    answers: dict[str, int] = {}
    async with httpx.AsyncClient(timeout=10) as http:
        for private, bearer in ((False, h.anon_key), (True, token)):
            for topic in topics:
                message = {
                    "topic": topic,
                    "event": "typing",
                    "private": private,
                    "payload": {"user_id": LONE_SURROGATE, "typing": True, "text": f"x{LONE_SURROGATE}x"},
                }
                try:
                    response = await http.post(
                        f"{h.info['api_url']}/realtime/v1/api/broadcast",
                        content=raw_json({"messages": [message]}).encode("ascii"),
                        headers={
                            "apikey": h.anon_key,
                            "Authorization": f"Bearer {bearer}",
                            "Content-Type": "application/json",
                        },
                    )
                    status = response.status_code
                except httpx.HTTPError:
                    status = 0
                kind = topic.split(":")[0] + (":typing" if topic.endswith(":typing") else "")
                answers[f"{'private' if private else 'public'} {kind}"] = status
    h.note("surrogate broadcast answers: " + ", ".join(f"{k} {v}" for k, v in sorted(answers.items())))
    return FaultWindow("lone-surrogate broadcast", started, time.monotonic())


async def _evil_presence(h: Harness, topic: str, token: str, private: bool) -> websockets.ClientConnection:
    port = h.stack.config.api_port
    socket = await websockets.connect(
        f"ws://127.0.0.1:{port}/realtime/v1/websocket?apikey={h.anon_key}&vsn=1.0.0", max_size=None
    )
    join = {
        "topic": f"realtime:{topic}",
        "event": "phx_join",
        "ref": "1",
        "join_ref": "1",
        "payload": {
            "config": {
                "broadcast": {"ack": False, "self": False},
                "presence": {"key": LONE_SURROGATE},
                "postgres_changes": [],
                "private": private,
            },
            "access_token": token,
        },
    }
    track = {
        "topic": f"realtime:{topic}",
        "event": "presence",
        "ref": "2",
        "join_ref": "1",
        # The key carries the surrogate; the fields stay plain (a surrogate there fails the size check on the
        # intruder's own socket, before anything is tracked).
        "payload": {"type": "presence", "event": "track", "payload": {"user_id": "intruder"}},
    }
    await socket.send(raw_json(join))
    await socket.send(raw_json(track))
    return socket


async def surrogate_presence(h: Harness) -> FaultWindow:
    """A third party joins each chat's topic with presence key ``"\\ud800"``, tracks itself, and stays.

    Public ``chat:<id>`` with the anon key; private ``chat:<id>`` with carol's token (members may track
    presence there). The sockets stay open (heartbeats every 20 s) until the cell ends, so the presence
    lives on for every socket that joins the topic later.
    """
    token = await _sign_in_raw(h, "carol@example.com")
    started = time.monotonic()
    sockets: list[Any] = []
    for chat in h.chats:
        sockets.append(await _evil_presence(h, f"chat:{chat}", h.anon_key, private=False))
        sockets.append(await _evil_presence(h, f"chat:{chat}", token, private=True))

    async def keep_alive() -> None:
        n = 100
        while True:
            for socket in sockets:
                n += 1
                heartbeat = {"topic": "phoenix", "event": "heartbeat", "payload": {}, "ref": str(n)}
                with contextlib.suppress(websockets.ConnectionClosed):
                    await socket.send(raw_json(heartbeat))
            await asyncio.sleep(20)

    async def drain(socket: Any) -> None:
        try:
            async for _ in socket:
                pass
        except websockets.ConnectionClosed:
            pass

    tasks = [asyncio.get_running_loop().create_task(keep_alive())]
    tasks += [asyncio.get_running_loop().create_task(drain(socket)) for socket in sockets]

    async def close() -> None:
        for task in tasks:
            task.cancel()
        for socket in sockets:
            await socket.close()

    h.on_teardown(close)
    h.note(f"{len(sockets)} sockets hold a lone-surrogate presence on the chats' topics")
    return FaultWindow("lone-surrogate presence", started, time.monotonic())


# ==================================================================================================
# the app
# ==================================================================================================
def token_expiry(frozen: float) -> Fault:
    async def fault(h: Harness) -> FaultWindow:
        """Freeze bob (SIGSTOP, a laptop lid closed) past his access token's expiry, then SIGCONT."""
        bob = h.clients["bob"]
        started = time.monotonic()
        bob.signal(signal.SIGSTOP)
        try:
            await asyncio.sleep(frozen)
        finally:
            bob.signal(signal.SIGCONT)
        h.note(f"bob stopped {frozen:g} s (access tokens live {h.stack.config.access_token_ttl} s)")
        return FaultWindow("token expiry", started, time.monotonic())

    return fault


def app_sigkill(name: str, burst: int, down: float = 1.0) -> Fault:
    async def fault(h: Harness) -> FaultWindow:
        """``name`` sends ``burst`` messages as fast as it can and is SIGKILLed as soon as they are all in its
        outbox (most still undelivered); relaunched ``down`` seconds later, it must deliver each once."""
        client = h.clients[name]
        reply = await client.call("burst", chat=h.chats[0], count=burst, prefix=h.prefix(client) + "b")
        started = time.monotonic()
        pid = client.pid
        await client.kill()
        h.note(f"SIGKILL {client.label} pid {pid}, its outbox holding {reply['outbox']} after a burst of {burst}")
        await asyncio.sleep(down)
        ended = time.monotonic()  # the user starts the app again
        await h.relaunch(client)
        return FaultWindow("app SIGKILL, full outbox", started, ended)

    return fault
