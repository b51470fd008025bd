"""One running app per data directory: a second start brings the running window forward and exits.

Two processes on one data directory would share the outbox, the keyring entries and the app's own Redis
(whose data lock the second cannot get, so it ran on an in-memory cache and, offline, showed no chats).
So the first start takes an exclusive ``flock`` on ``instance.lock`` in the data directory and listens on
a Unix socket, ``instance.sock`` in the runtime directory. A later start that finds the lock taken connects
to that socket, sends ``raise``, waits for ``ok`` and exits without opening anything else.

A crash cannot block the next start: the kernel drops a dead process's ``flock``, and whoever holds the lock
owns the socket path, so a socket file found there by the lock holder is a dead run's and is replaced.

Standard library only, and nothing here waits on Qt: the check runs before the first window is built.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import logging
import os
import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

LOCK_NAME = "instance.lock"
SOCKET_NAME = "instance.sock"
RAISE = b"raise\n"
OK = b"ok\n"
UNKNOWN = b"error unknown request\n"
# sun_path holds 108 bytes with the terminating NUL; a longer runtime directory gets a short path instead.
MAX_SOCKET_PATH = 100
# How long a second start waits for the running one: it may hold the lock while still starting up.
ANSWER_WAIT = 10.0
_REQUEST_WAIT = 5.0  # a connection that sends nothing is dropped after this long
_RETRY_EVERY = 0.05


def socket_path(runtime_dir: Path, data_dir: Path) -> Path:
    """Where the running instance for ``data_dir`` listens (both starts compute the same path).

    ``instance.sock`` in ``runtime_dir``; when that path is too long for a Unix socket, a name made from
    ``data_dir`` in the temp directory (per user, so another user's run is never asked).
    """
    path = runtime_dir / SOCKET_NAME
    if len(os.fsencode(path)) <= MAX_SOCKET_PATH:
        return path
    digest = hashlib.sha256(os.fsencode(data_dir.resolve())).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"desktop-chat-{os.getuid()}-{digest}.sock"


def answer(request: bytes) -> tuple[bytes, bool]:
    """The reply to one request line, and whether it asks to raise the window."""
    if request == RAISE:
        return OK, True
    return UNKNOWN, False


class InstanceLock:
    """The exclusive lock on one data directory, held until ``release`` or the process ends."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, data_dir: Path) -> InstanceLock | None:
        """Take the lock on ``data_dir``; None when another process holds it."""
        data_dir.mkdir(parents=True, exist_ok=True)
        path = data_dir / LOCK_NAME
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        except BaseException:
            os.close(fd)
            raise
        # The holder's PID, for a person looking (the lock itself is the flock, not the file's content).
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        return cls(path, fd)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        """Drop the lock. The file stays: deleting it would let two starts lock two different files."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # closing the only descriptor releases the flock


class RaiseListener:
    """The running instance's end of the socket: each ``raise`` request calls ``on_raise`` on the loop."""

    def __init__(self, path: Path, server: asyncio.AbstractServer) -> None:
        self.path = path
        self._server = server
        self._inode = path.stat().st_ino

    @classmethod
    async def start(cls, path: Path, on_raise: Callable[[], None]) -> RaiseListener:
        """Listen on ``path``; only call this while holding the data directory's ``InstanceLock``.

        A socket file already there belongs to a run that died (its lock is ours now): it is replaced.
        """
        _clear_socket_path(path)

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                request = await asyncio.wait_for(reader.readline(), _REQUEST_WAIT)
                reply, raise_window = answer(request)
                if raise_window:
                    log.info("Another start of the app asked for this window: bringing it to the front")
                    on_raise()
                else:
                    log.info("Ignored an unknown request on the instance socket: %r", request[:40])
                writer.write(reply)
                await writer.drain()
            except (TimeoutError, OSError) as error:
                log.info("An instance socket connection ended early (%s)", type(error).__name__)
            finally:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()

        # Created owner-only: no other user may ask (the runtime directory is the user's own as well).
        old_umask = os.umask(0o177)
        try:
            server = await asyncio.start_unix_server(serve, path=str(path))
        finally:
            os.umask(old_umask)
        return cls(path, server)

    def close(self) -> None:
        """Stop listening and remove the socket file, unless a later run has already replaced it."""
        self._server.close()
        with contextlib.suppress(FileNotFoundError):
            if self.path.stat().st_ino == self._inode:
                self.path.unlink()


def _clear_socket_path(path: Path) -> None:
    """Make the socket's directory, and remove a socket file left by a run that died."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def ask_to_raise(path: Path, wait: float = ANSWER_WAIT) -> bool:
    """Ask the instance listening on ``path`` to bring its window forward; True once it said ``ok``.

    Retries for up to ``wait`` seconds while nothing listens yet (the running instance is still starting).
    """
    deadline = time.monotonic() + wait
    while True:
        left = deadline - time.monotonic()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
                connection.settimeout(max(left, _RETRY_EVERY))
                connection.connect(os.fspath(path))
                connection.sendall(RAISE)
                reply = b""
                while not reply.endswith(b"\n") and len(reply) < 64:
                    chunk = connection.recv(64)
                    if not chunk:
                        break
                    reply += chunk
                return reply == OK
        except (FileNotFoundError, ConnectionRefusedError):
            if left <= 0:
                return False
            time.sleep(_RETRY_EVERY)
        except OSError as error:  # a timeout included
            log.warning("The running instance did not answer on %s (%s)", path, type(error).__name__)
            return False


class SingleInstance:
    """This process's claim on a data directory: the lock, and once the loop runs, the listener.

    Args:
        lock: The data directory's lock, held.
        socket: Where to listen (``socket_path``).
    """

    def __init__(self, lock: InstanceLock, socket: Path) -> None:
        self.lock = lock
        self.socket = socket
        self._listener: RaiseListener | None = None

    @classmethod
    def claim(cls, data_dir: Path, runtime_dir: Path) -> SingleInstance | None:
        """This process's claim on ``data_dir``, or None when another running process has it."""
        lock = InstanceLock.acquire(data_dir)
        if lock is None:
            return None
        return cls(lock, socket_path(runtime_dir, data_dir))

    async def listen(self, on_raise: Callable[[], None]) -> None:
        """Answer later starts from now on; a socket that cannot be made is logged, the app runs anyway."""
        try:
            self._listener = await RaiseListener.start(self.socket, on_raise)
        except OSError as error:
            log.warning("A second start could not reach this one: no socket at %s (%s)", self.socket, error)

    def release(self) -> None:
        """Stop listening and drop the lock (quitting)."""
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        self.lock.release()


def hand_over(data_dir: Path, runtime_dir: Path, *, smoke_test: bool = False, wait: float = ANSWER_WAIT) -> int:
    """The second start's part: ask the running instance to show itself; the exit code to leave with.

    A smoke test fails instead (exit 1): it promises a frame painted by this process, and none was.
    """
    if smoke_test:
        log.error("Smoke test: desktop-chat is already running for %s; this start painted nothing", data_dir)
        return 1
    path = socket_path(runtime_dir, data_dir)
    if ask_to_raise(path, wait):
        log.info("desktop-chat is already running for %s: asked it to show its window; exiting", data_dir)
        return 0
    log.error(
        "desktop-chat is already running for %s (it holds %s) but did not answer on %s; exiting",
        data_dir,
        data_dir / LOCK_NAME,
        path,
    )
    return 1
