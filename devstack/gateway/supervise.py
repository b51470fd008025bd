"""Keep one gateway server running: restart it when it dies, stop it on SIGTERM."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import FrameType


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="devstack.gateway.supervise")
    parser.add_argument("--settings", type=Path, required=True)
    parser.add_argument("--pidfile", type=Path, required=True)
    parser.add_argument("--daemon", action="store_true", help="detach from the caller (fork, setsid)")
    args = parser.parse_args(argv)

    if args.daemon and os.fork() > 0:
        # The caller waits for this parent only; the supervisor lives on in its own session, so the
        # caller never has a long-running child to reap.
        os._exit(0)
    if args.daemon:
        os.setsid()
    args.pidfile.write_text(f"{os.getpid()}\n")
    stopping = threading.Event()
    child: subprocess.Popen[bytes] | None = None

    def on_term(signum: int, frame: FrameType | None) -> None:
        stopping.set()
        if child is not None and child.poll() is None:
            child.terminate()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)

    backoff = 0.5
    try:
        while not stopping.is_set():
            started = time.monotonic()
            child = subprocess.Popen(
                [sys.executable, "-m", "devstack.gateway.server", "--settings", str(args.settings)]
            )
            code = child.wait()
            if stopping.is_set():
                break
            # A crash right after start (bad settings, port taken) backs off instead of spinning.
            backoff = 0.5 if time.monotonic() - started > 10 else min(backoff * 2, 10.0)
            print(f"devstack gateway exited with {code}; restarting in {backoff:.1f} s", flush=True)
            time.sleep(backoff)
    finally:
        if child is not None and child.poll() is None:
            child.terminate()
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
        if args.pidfile.is_file() and args.pidfile.read_text().strip() == str(os.getpid()):
            args.pidfile.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
