"""The stack's private Redis: loopback only, a password, maxmemory and an LRU policy."""

from __future__ import annotations

import os
import secrets
import subprocess
import time
from pathlib import Path
from urllib.parse import quote

import redis

from devstack.config import StackConfig
from devstack.procs import DevstackError, PortTaken, cmdline, pid_alive, port_in_use, read_pid, terminate
from devstack.tools import redis_server


class RedisServer:
    """One ``redis-server`` whose config, data, pid file and password live in ``config.redis_dir``."""

    maxmemory = "64mb"

    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.dir = config.redis_dir

    @property
    def pidfile(self) -> Path:
        return self.dir / "redis.pid"

    @property
    def conf_file(self) -> Path:
        return self.dir / "redis.conf"

    def password(self) -> str:
        """The stack's Redis password, generated on first use and kept in a user-only file."""
        path = self.dir / "password"
        if path.is_file():
            return path.read_text().strip()
        self.dir.mkdir(parents=True, exist_ok=True)
        value = secrets.token_urlsafe(24)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(value + "\n")
        return value

    @property
    def url(self) -> str:
        return f"redis://:{quote(self.password(), safe='')}@{self.config.host}:{self.config.redis_port}/0"

    def pid(self) -> int | None:
        """The pid of this stack's redis-server, if it runs (a stale pid file does not count)."""
        pid = read_pid(self.pidfile)
        if pid is None or not pid_alive(pid):
            return None
        if not any("redis-server" in part for part in cmdline(pid)):
            return None
        return pid

    def running(self) -> bool:
        return self.pid() is not None

    def _ping(self) -> bool:
        client = redis.Redis(
            host=self.config.host,
            port=self.config.redis_port,
            password=self.password(),
            socket_timeout=1,
            socket_connect_timeout=1,
        )
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def _write_conf(self) -> None:
        lines = [
            f"bind {self.config.host}",
            f"port {self.config.redis_port}",
            "protected-mode yes",
            f"requirepass {self.password()}",
            f"maxmemory {self.maxmemory}",
            "maxmemory-policy allkeys-lru",
            # A cache: nothing to persist.
            'save ""',
            "appendonly no",
            "daemonize yes",
            f"pidfile {self.pidfile}",
            f"logfile {self.config.logs_dir / 'redis.log'}",
            f"dir {self.dir}",
        ]
        fd = os.open(self.conf_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write("# Written by devstack on every start; edits are overwritten.\n")
            handle.write("\n".join(lines) + "\n")

    def start(self) -> bool:
        """Start Redis unless this stack's server already answers. True when started."""
        pid = self.pid()
        if pid is not None:
            if self._ping():
                return False
            terminate(pid)  # our own leftover that no longer answers
        self.pidfile.unlink(missing_ok=True)
        if port_in_use(self.config.host, self.config.redis_port):
            raise PortTaken(
                f"port {self.config.redis_port} on {self.config.host} is taken by another program; "
                "stop it or choose another port with DEVSTACK_REDIS_PORT"
            )
        self.dir.mkdir(parents=True, exist_ok=True)
        self.config.logs_dir.mkdir(parents=True, exist_ok=True)
        self._write_conf()
        result = subprocess.run(
            [redis_server(), str(self.conf_file)], capture_output=True, text=True, timeout=30, check=False
        )
        if result.returncode != 0:
            raise DevstackError(f"redis-server failed to start: {(result.stderr or result.stdout).strip()}")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self._ping():
                return True
            time.sleep(0.05)
        raise DevstackError(f"redis-server did not answer; see {self.config.logs_dir / 'redis.log'}")

    def stop(self) -> bool:
        pid = self.pid()
        if pid is None:
            self.pidfile.unlink(missing_ok=True)
            return False
        terminate(pid)
        self.pidfile.unlink(missing_ok=True)
        return True
