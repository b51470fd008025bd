"""The suite's side of a client process (``bench.chaos.client``): start, command, listen, kill, restart."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from devstack.config import REPO_ROOT

EventSink = Callable[["ClientProcess", dict[str, Any]], None]


class ClientError(RuntimeError):
    """A command the client process answered with an error, or never answered."""


class ClientProcess:
    """One run of one client (``alice`` run 1, 2, … after restarts), all runs sharing a home directory.

    Args:
        name: The user's name (``alice``), also the home directory's.
        email: Who signs in.
        home: The client's directories (outbox, secrets file, cache key) live here across restarts.
        url: The Supabase URL this client uses (the gateway, or a proxy in front of it).
        anon_key, redis_url: As in the app's settings.
        logs: Where each run's stderr (the app's log) goes.
        sink: Called with every event the process reports.
    """

    def __init__(
        self,
        name: str,
        email: str,
        *,
        home: Path,
        url: str,
        anon_key: str,
        redis_url: str | None,
        logs: Path,
        sink: EventSink,
    ) -> None:
        self.name = name
        self.email = email
        self.home = home
        self.url = url
        self.anon_key = anon_key
        self.redis_url = redis_url
        self.logs = logs
        self.sink = sink
        self.run = 0
        self.user_id: str | None = None
        self.started_at = 0.0
        self._process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._replies: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self._ready: asyncio.Future[dict[str, Any]] | None = None

    @property
    def label(self) -> str:
        """``alice`` for the first run, ``alice#2`` after one restart."""
        return self.name if self.run <= 1 else f"{self.name}#{self.run}"

    @property
    def pid(self) -> int:
        if self._process is None:
            raise ClientError(f"{self.name} is not running")
        return self._process.pid

    async def start(self) -> None:
        """Start a new run of the client and wait until its data layer is open."""
        self.run += 1
        self.started_at = time.monotonic()
        self.logs.mkdir(parents=True, exist_ok=True)
        log = (self.logs / f"{self.name}.{self.run}.log").open("ab")
        args = ["--name", self.label, "--home", str(self.home), "--url", self.url, "--anon", self.anon_key]
        if self.redis_url:
            args += ["--redis", self.redis_url]
        try:
            self._process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bench.chaos.client",
                *args,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
                cwd=REPO_ROOT,
                env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
                limit=1 << 20,
            )
        finally:
            log.close()
        self._ready = asyncio.get_running_loop().create_future()
        self._reader = asyncio.get_running_loop().create_task(self._read(self._process))
        async with asyncio.timeout(60):
            await self._ready

    async def _read(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        while line := await process.stdout.readline():
            try:
                event: dict[str, Any] = json.loads(line)
            except ValueError:
                continue  # a library printing to stdout: not ours
            if "re" in event:
                future = self._replies.pop(int(event["re"]), None)
                if future is not None and not future.done():
                    future.set_result(event)
            elif event.get("ev") == "ready":
                if self._ready is not None and not self._ready.done():
                    self._ready.set_result(event)
            else:
                self.sink(self, event)
        gone = ClientError(f"{self.label} exited")
        for future in self._replies.values():
            if not future.done():
                future.set_exception(gone)
        self._replies.clear()
        if self._ready is not None and not self._ready.done():
            self._ready.set_exception(gone)

    async def call(self, op: str, within: float = 120.0, **args: Any) -> dict[str, Any]:
        """Send a command and wait for its answer."""
        if self._process is None or self._process.stdin is None:
            raise ClientError(f"{self.name} is not running")
        request_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._replies[request_id] = future
        self._process.stdin.write((json.dumps({"id": request_id, "op": op, "args": args}) + "\n").encode())
        await self._process.stdin.drain()
        try:
            async with asyncio.timeout(within):
                reply = await future
        except TimeoutError:
            raise ClientError(f"{self.label}: {op} not answered within {within:g} s") from None
        finally:
            self._replies.pop(request_id, None)
        if not reply.get("ok"):
            raise ClientError(f"{self.label}: {op} failed: {reply.get('error')}")
        return reply

    async def sign_in(self) -> None:
        reply = await self.call("sign_in", email=self.email)
        self.user_id = str(reply["user"])

    async def restore(self) -> None:
        reply = await self.call("restore")
        self.user_id = str(reply["user"])

    def signal(self, signum: signal.Signals) -> None:
        """A real signal to the process, by pid."""
        os.kill(self.pid, signum)

    async def kill(self) -> None:
        """SIGKILL, then reap it."""
        process = self._process
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        await self._finish()

    async def quit(self) -> None:
        """Ask the process to close its data layer and exit; kill it if it does not."""
        process = self._process
        if process is None:
            return
        if process.returncode is None:
            with contextlib.suppress(ClientError, ConnectionError):
                await self.call("quit", within=20)
            try:
                async with asyncio.timeout(20):
                    await process.wait()
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGCONT)  # a stopped process cannot exit
                    process.kill()
                await process.wait()
        await self._finish()

    async def _finish(self) -> None:
        if self._reader is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._reader, 10)
        self._process = None
        self._reader = None
