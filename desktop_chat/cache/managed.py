"""The app's own Redis, when ``Settings.redis_url`` is unset: private, bounded, and gone with the app.

``ManagedRedis.start`` runs the ``redis-server`` found on ``PATH`` as a child process that listens only on a
unix socket (``port 0``: no TCP at all) inside a 0700 directory under ``Settings.runtime_dir``, with a
random password, ``maxmemory`` and ``allkeys-lru``. The password is in a 0600 config file, never on a
command line (which other users can read in ``/proc``).

Persistence (``data_dir`` given): the server snapshots its data (RDB) into ``data_dir`` (0700, the user's
cache directory) at most once a minute while something changed, and when it stops; the next start loads
it, so the cache survives restarts and the app can start offline with what it had. Values are encrypted
by the codec before they reach Redis, so the file holds no plaintext. One app instance at a time owns
the directory (an ``flock`` held for the server's life); a second instance started meanwhile runs
without persistence. A snapshot that cannot be loaded (corrupt, from an incompatible Redis) is moved
aside as ``*.unreadable`` and the server starts empty: the cache is disposable. A failing disk never
stops writes (``stop-writes-on-bgsave-error no``); it only means the next start finds less.

It goes away with the app:

- ``stop()`` terminates it by pid and removes its directory;
- on Linux it runs under ``setpriv --pdeathsig TERM`` when ``setpriv`` exists, so the kernel stops it when
  the app dies, even by SIGKILL;
- each run holds an ``flock`` on a lock file in its directory for its whole life. The next start looks at
  every run directory whose lock is free (its app is gone), stops the ``redis-server`` its pidfile names
  (only if that process is a redis-server on that run's socket, so a recycled pid is never killed) and
  deletes the directory. Two app instances running at once each get their own Redis.

Without a ``redis-server`` on ``PATH``, ``start`` returns None and ``detail`` says why: the app then runs on
the in-process memory tier alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

if os.name != "nt":  # Windows has no flock, and no redis-server package either: memory tier only there
    import fcntl

__all__ = ["SNAPSHOT_NAME", "ManagedRedis", "ManagedRedisError", "RedisEndpoint", "reap_stale_runs"]

log = logging.getLogger(__name__)

_RUN_PREFIX = "run-"
_SOCKET_NAME = "redis.sock"
_SOCKET_DIR_FILE = "socket-dir"  # names a short socket directory outside the run dir, when one was needed
# sun_path holds 108 bytes with the terminating NUL; stay clear of it.
_MAX_SOCKET_PATH = 100
SNAPSHOT_NAME = "cache.rdb"
_DATA_LOCK = "lock"
# Snapshot after 60 s if anything changed: a restart loses at most a minute of cache writes (which the
# back-fill fetches again), and a fork of at most ``maxmemory`` a minute is cheap.
_SAVE_POINTS = "60 1"
# Seconds a stopping server gets: enough to write a full 64 MB snapshot on a slow disk.
_STOP_TIMEOUT = 15.0


class ManagedRedisError(RuntimeError):
    """The redis-server was found but could not be started."""


@dataclass(frozen=True, slots=True)
class RedisEndpoint:
    """How to reach a started managed Redis."""

    socket: Path
    password: str = field(repr=False)
    pid: int


class ManagedRedis:
    """Start and stop one private ``redis-server``.

    Args:
        runtime_dir: ``Settings.runtime_dir``; run directories go in its ``redis/`` subdirectory.
        maxmemory_mb: Redis's ``maxmemory``.
        search_path: Where to look for ``redis-server`` (``PATH`` when None).
        start_timeout: Seconds to wait for the server to answer.
        list_entries: Message lists up to this many entries (and entries up to 1 KiB) are kept in
            Redis's compact listpack encoding: about 40 % less memory per cached message than the default
            skiplist, at the same read latency (``bench/results/cache.json``). Set it just above
            ``cache_max_messages_per_chat``; None keeps Redis's defaults.
        extra_config: More ``redis.conf`` directives (name → value).
        data_dir: Where the server keeps its snapshot between runs (see the module docstring); None: no
            persistence at all.
    """

    def __init__(
        self,
        runtime_dir: Path,
        *,
        maxmemory_mb: int = 64,
        search_path: str | None = None,
        start_timeout: float = 10.0,
        list_entries: int | None = None,
        extra_config: dict[str, str] | None = None,
        data_dir: Path | None = None,
    ) -> None:
        self.base = runtime_dir / "redis"
        self.data_dir = data_dir
        self.maxmemory_mb = maxmemory_mb
        self.search_path = search_path
        self.start_timeout = start_timeout
        self.list_entries = list_entries
        self.extra_config = dict(extra_config or {})
        self.detail = ""
        self.endpoint: RedisEndpoint | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._run_dir: Path | None = None
        self._socket_dir: Path | None = None
        self._lock_fd: int | None = None
        self._data_lock_fd: int | None = None
        self._password = ""

    @property
    def persistent(self) -> bool:
        """Whether this run keeps its data in ``data_dir`` (False: none given, or another instance owns it)."""
        return self._data_lock_fd is not None

    @property
    def snapshot_path(self) -> Path | None:
        return self.data_dir / SNAPSHOT_NAME if self.data_dir is not None else None

    def disk_bytes(self) -> int:
        """Bytes the snapshot takes on disk now (0 without one)."""
        path = self.snapshot_path
        if path is None:
            return 0
        try:
            return path.stat().st_size
        except OSError:
            return 0

    @property
    def run_dir(self) -> Path | None:
        return self._run_dir

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    async def start(self) -> RedisEndpoint | None:
        """Start the server and wait until it answers; None when there is no redis-server to run.

        Raises:
            ManagedRedisError: redis-server exists but did not start (the log's last lines say why).
        """
        if self.endpoint is not None:
            return self.endpoint
        executable = shutil.which("redis-server", path=self.search_path) if os.name != "nt" else None
        if executable is None:
            self.detail = "no redis-server found; the cache runs in memory only"
            log.warning("No redis-server on PATH; the cache runs in memory only")
            return None
        password = self._password = secrets.token_urlsafe(32)
        try:
            try:
                await self._launch(executable, password)
            except ManagedRedisError:
                if not self.persistent or not await asyncio.to_thread(self._set_snapshot_aside):
                    raise
                # The snapshot may be what stopped it (corrupt, written by a newer Redis): start empty.
                await self._stop_process()
                await self._launch(executable, password)
        except OSError as error:  # an unusable runtime dir, a failed exec: the app goes on without Redis
            await self.stop()
            raise ManagedRedisError(f"cannot run redis-server: {error}") from error
        except BaseException:
            await self.stop()
            raise
        assert self._process is not None and self._run_dir is not None
        self.endpoint = RedisEndpoint(self._socket_path(), password, self._process.pid)
        self.detail = ""
        log.info(
            "Started the cache's redis-server (pid %d) on %s, %s",
            self._process.pid,
            self.endpoint.socket,
            f"keeping its data in {self.data_dir}" if self.persistent else "in memory only",
        )
        return self.endpoint

    async def _launch(self, executable: str, password: str) -> None:
        if self._run_dir is None:
            await asyncio.to_thread(self._prepare, password)
        self._spawn(executable)
        socket = self._socket_path()
        await self._wait_ready(socket, password)
        await self._tune(socket, password)

    async def _stop_process(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            await asyncio.to_thread(_end_process, process)

    def _socket_path(self) -> Path:
        assert self._run_dir is not None
        return (self._socket_dir or self._run_dir) / _SOCKET_NAME

    def _set_snapshot_aside(self) -> bool:
        """Move an unloadable snapshot out of the way; True if there was one."""
        path = self.snapshot_path
        if path is None or not path.exists():
            return False
        aside = path.with_suffix(".unreadable")
        log.warning("The cache's redis-server did not start with its saved data; starting it empty (%s)", aside)
        path.replace(aside)
        return True

    async def stop(self) -> None:
        """Stop the server (by pid) and remove its directory; safe to call more than once."""
        process, self._process = self._process, None
        self.endpoint = None
        await asyncio.to_thread(self._stop_and_clean, process)

    # --- blocking parts, run off the event loop (except _spawn, see there) --------------------------
    def _claim_data_dir(self) -> Path | None:
        """Lock ``data_dir`` for this run; None (no persistence) if another instance holds it or it is unusable."""
        data_dir = self.data_dir
        if data_dir is None:
            return None
        try:
            data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            info = os.lstat(data_dir)
            if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
                log.warning("%s is not a directory of this user; the cache is not kept between runs", data_dir)
                return None
            os.chmod(data_dir, 0o700)  # encrypted, but whose cache this is is nobody else's business
            fd = os.open(data_dir / _DATA_LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as error:
            log.warning("Cannot keep the cache in %s (%s); it is kept in memory only", data_dir, error)
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            log.info("Another desktop-chat keeps its cache in %s; this one keeps its cache in memory", data_dir)
            return None
        self._data_lock_fd = fd
        return data_dir

    def _prepare(self, password: str) -> Path:
        """Reap stale runs, then make this run's directory (locked) and config; returns the socket path."""
        self.base.mkdir(parents=True, exist_ok=True, mode=0o700)
        info = os.lstat(self.base)
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
            # e.g. a symlink planted under a shared /tmp/runtime-* fallback: never put the socket there.
            raise ManagedRedisError(f"{self.base} is not a directory of this user")
        os.chmod(self.base, 0o700)
        reap_stale_runs(self.base)
        # Built under a name the reaper ignores and renamed once locked, so it never looks abandoned.
        building = Path(tempfile.mkdtemp(prefix=".new-", dir=self.base))
        lock_fd = os.open(building / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        run_dir = self.base / f"{_RUN_PREFIX}{building.name.removeprefix('.new-')}"
        building.rename(run_dir)
        self._run_dir, self._lock_fd = run_dir, lock_fd
        socket = run_dir / _SOCKET_NAME
        if len(str(socket)) > _MAX_SOCKET_PATH:
            self._socket_dir = Path(tempfile.mkdtemp(prefix="dc-redis-"))  # 0700, short path
            (run_dir / _SOCKET_DIR_FILE).write_text(str(self._socket_dir))
            socket = self._socket_dir / _SOCKET_NAME
        data_dir = self._claim_data_dir()
        persistence = (
            {
                "save": _SAVE_POINTS,
                "dbfilename": SNAPSHOT_NAME,
                "dir": str(data_dir),
                # A full or failing disk must not turn into refused writes (and an open breaker).
                "stop-writes-on-bgsave-error": "no",
                "rdbcompression": "no",  # sealed values do not compress; save the CPU
            }
            if data_dir is not None
            else {"save": '""', "dir": str(run_dir)}
        )
        if data_dir is not None and self.list_entries is not None:
            # Lists loaded from the snapshot take their encoding from the config at load time, before
            # ``_tune`` runs. The old "ziplist" names are what every Redis since 2.4 accepts (7 as aliases).
            persistence["zset-max-ziplist-entries"] = str(max(self.list_entries, 128))
            persistence["zset-max-ziplist-value"] = "1024"
        directives = {
            "port": "0",
            "unixsocket": str(socket),
            "unixsocketperm": "700",
            "requirepass": password,
            "maxmemory": f"{self.maxmemory_mb}mb",
            "maxmemory-policy": "allkeys-lru",
            "appendonly": "no",
            "daemonize": "no",
            "logfile": str(run_dir / "redis.log"),
            "protected-mode": "yes",
            **persistence,
            **self.extra_config,
        }
        conf = run_dir / "redis.conf"
        fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write("# Written by desktop-chat for one run; deleted when it stops.\n")
            handle.writelines(f"{name} {value}\n" for name, value in directives.items())
        return socket

    def _spawn(self, executable: str) -> None:
        # Runs on the event loop's thread on purpose: the kernel sends the parent-death signal when the
        # *thread* that forked the child ends, and a worker thread of asyncio.to_thread may end early.
        assert self._run_dir is not None
        argv = [executable, str(self._run_dir / "redis.conf")]
        setpriv = shutil.which("setpriv") if sys.platform.startswith("linux") else None
        if setpriv is not None:
            argv = [setpriv, "--pdeathsig", "TERM", "--", *argv]
        # Redis logs to its logfile; stderr only carries a config error before the log is open.
        with open(self._run_dir / "stderr.log", "wb") as stderr:
            self._process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                # Its own session: a Ctrl-C in the terminal reaches the app, which then stops Redis in order.
                start_new_session=True,
            )
        (self._run_dir / "redis.pid").write_text(f"{self._process.pid}\n")

    async def _wait_ready(self, socket: Path, password: str) -> None:
        assert self._process is not None
        deadline = time.monotonic() + self.start_timeout
        while True:
            if self._process.poll() is not None:
                raise ManagedRedisError(f"redis-server exited with status {self._process.returncode}: {self._why()}")
            client = aioredis.Redis(
                unix_socket_path=str(socket), password=password, socket_connect_timeout=0.5, socket_timeout=0.5
            )
            try:
                if await client.ping():
                    return
            except (RedisError, OSError):
                pass
            finally:
                await client.aclose()
            if time.monotonic() > deadline:
                raise ManagedRedisError(f"redis-server did not answer within {self.start_timeout:g} s: {self._why()}")
            await asyncio.sleep(0.02)

    async def _tune(self, socket: Path, password: str) -> None:
        """Raise the sorted-set listpack thresholds; best effort, by whichever name this Redis knows.

        Set at runtime rather than in redis.conf: a directive an older or newer Redis does not know would
        stop it from starting at all, and a missed tuning only costs memory.
        """
        if self.list_entries is None:
            return
        entries = str(max(self.list_entries, 128))
        client = aioredis.Redis(unix_socket_path=str(socket), password=password, socket_timeout=2)
        try:
            for family in ("listpack", "ziplist"):  # Redis 7 and later; Redis 6
                try:
                    await client.config_set(f"zset-max-{family}-entries", entries)
                    await client.config_set(f"zset-max-{family}-value", "1024")
                except ResponseError:
                    continue
                return
            log.info("This redis-server takes no sorted-set encoding thresholds; keeping its defaults")
        finally:
            await client.aclose()

    def _why(self) -> str:
        """The end of the server's log (or stderr), for an error message; never holds the password."""
        lines: list[str] = []
        for name in ("redis.log", "stderr.log"):
            if self._run_dir is not None and not lines:
                with contextlib.suppress(OSError):
                    lines = (self._run_dir / name).read_text(errors="replace").splitlines()
        text = " | ".join(line.strip() for line in lines[-3:]) or "no output"
        # Redis quotes a config line it rejects; never let that carry the password into a log.
        return text.replace(self._password, "***") if self._password else text

    def _stop_and_clean(self, process: subprocess.Popen[bytes] | None) -> None:
        if process is not None:
            _end_process(process)
        if self._data_lock_fd is not None:
            os.close(self._data_lock_fd)  # after the server stopped: its last snapshot is on disk
            self._data_lock_fd = None
        if self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
            self._socket_dir = None
        if self._run_dir is not None:
            shutil.rmtree(self._run_dir, ignore_errors=True)
            self._run_dir = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


def _end_process(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM (a persistent server saves its snapshot first), then SIGKILL if it takes too long."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=_STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def reap_stale_runs(base: Path) -> list[Path]:
    """Stop and delete the runs under ``base`` whose app is gone; returns the directories removed."""
    removed: list[Path] = []
    for run_dir in sorted(base.glob(f"{_RUN_PREFIX}*")):
        try:
            lock_fd = os.open(run_dir / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:
            continue
        try:
            try:
                fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # its app is alive
            socket_dir = _read_socket_dir(run_dir)
            socket = (socket_dir or run_dir) / _SOCKET_NAME
            pid = _read_pid(run_dir / "redis.pid")
            if pid is not None and _is_redis_on(pid, socket):
                log.info("Stopping the cache's redis-server (pid %d) left by a run that ended without it", pid)
                _terminate(pid)
            if socket_dir is not None:
                shutil.rmtree(socket_dir, ignore_errors=True)
            shutil.rmtree(run_dir, ignore_errors=True)
            removed.append(run_dir)
        finally:
            os.close(lock_fd)
    return removed


def _read_socket_dir(run_dir: Path) -> Path | None:
    try:
        text = (run_dir / _SOCKET_DIR_FILE).read_text().strip()
    except OSError:
        return None
    path = Path(text)
    # Only a directory we would have made: never follow a garbled file to rmtree something else.
    if path.parent != Path(tempfile.gettempdir()) or not path.name.startswith("dc-redis-"):
        return None
    return path


def _read_pid(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _is_redis_on(pid: int, socket: Path) -> bool:
    """Whether ``pid`` is a redis-server serving ``socket`` (its process title names the socket)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return False
    return "redis-server" in cmdline and str(socket) in cmdline


def _terminate(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if not _alive(pid):
            return
        time.sleep(0.02)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"
