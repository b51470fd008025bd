"""Small process and port helpers shared by the devstack services."""

from __future__ import annotations

import contextlib
import os
import pwd
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path


class DevstackError(RuntimeError):
    """A failure the user can act on; the CLI prints its message and exits non-zero."""


class PortTaken(DevstackError):
    """A port the stack needs is held by another program."""


def port_in_use(host: str, port: int) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago (for throwaway test stacks)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(host: str, port: int, timeout: float, pid: int | None = None) -> None:
    """Wait until ``host:port`` accepts connections; fail early if ``pid`` dies meanwhile."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_in_use(host, port):
            return
        if pid is not None and not pid_alive(pid):
            raise DevstackError(f"process {pid} exited before listening on {host}:{port}")
        time.sleep(0.05)
    raise DevstackError(f"nothing listens on {host}:{port} after {timeout:.0f} s")


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` is a running (not zombie) process."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"


def cmdline(pid: int) -> list[str]:
    """The command line of ``pid``, or an empty list when it cannot be read."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def read_pid(pidfile: Path) -> int | None:
    """The pid recorded in ``pidfile``, or None when the file is missing or garbled."""
    try:
        text = pidfile.read_text().split()
    except OSError:
        return None
    if not text or not text[0].isdigit():
        return None
    return int(text[0])


def terminate(pid: int, timeout: float = 10.0) -> None:
    """SIGTERM ``pid``, then SIGKILL if it has not exited after ``timeout`` seconds."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    while pid_alive(pid):
        time.sleep(0.05)


def is_root() -> bool:
    return os.geteuid() == 0


def service_user() -> str | None:
    """The unprivileged account servers run as when devstack runs as root (None otherwise)."""
    if not is_root():
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise DevstackError(
            "running as root, but there is no 'postgres' user to run the database server as; "
            "install it with: apt-get install postgresql-15"
        ) from None
    return "postgres"


def chown_to_service_user(path: Path) -> None:
    user = service_user()
    if user is None:
        return
    entry = pwd.getpwnam(user)
    os.chown(path, entry.pw_uid, entry.pw_gid, follow_symlinks=False)
    for root, dirs, files in os.walk(path):
        os.chown(root, entry.pw_uid, entry.pw_gid)
        for name in [*dirs, *files]:
            os.chown(os.path.join(root, name), entry.pw_uid, entry.pw_gid, follow_symlinks=False)


def run_as_service_user(
    argv: Sequence[str], *, check: bool = True, timeout: float = 120.0
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` (as the service user when root), capturing output."""
    user = service_user()
    full = ["runuser", "-u", user, "--", *argv] if user else list(argv)
    result = subprocess.run(full, capture_output=True, text=True, timeout=timeout, check=False)
    if check and result.returncode != 0:
        output = (result.stderr or result.stdout).strip()
        raise DevstackError(f"{argv[0]} failed (exit {result.returncode}): {output}")
    return result
