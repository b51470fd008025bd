"""A private redis-server holding a legacy store: loopback, a password, no eviction, no persistence."""

from __future__ import annotations

import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis

from devstack.procs import free_port


@dataclass(frozen=True)
class LegacyRedis:
    """A running legacy Redis and how to reach it."""

    port: int
    password: str
    pid: int

    @property
    def url(self) -> str:
        return f"redis://:{self.password}@127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, password=self.password)


@contextmanager
def legacy_redis() -> Iterator[LegacyRedis]:
    """Start a redis-server on a free port (unlike devstack's cache Redis: no maxmemory), stop it after."""
    workdir = Path(tempfile.mkdtemp(prefix="legacy-redis-"))
    port = free_port()
    password = secrets.token_urlsafe(16)
    conf = workdir / "redis.conf"
    conf.write_text(
        "\n".join(
            [
                "bind 127.0.0.1",
                f"port {port}",
                f"requirepass {password}",
                'save ""',
                "appendonly no",
                f"dir {workdir}",
                "daemonize no",
                "loglevel warning",
            ]
        )
        + "\n"
    )
    conf.chmod(0o600)
    process = subprocess.Popen(
        [shutil.which("redis-server") or "redis-server", str(conf)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server = LegacyRedis(port, password, process.pid)
    try:
        client = server.client()
        deadline = time.monotonic() + 15
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server on port {port} did not start") from None
                time.sleep(0.02)
        client.close()
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(workdir, ignore_errors=True)
