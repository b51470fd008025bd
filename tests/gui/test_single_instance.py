"""Starting the app a second time for the same files: the second start asks the running one to show its
window and exits 0, touching nothing (the real app, twice, in its own processes, over the throwaway stack)."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from pathlib import Path
from queue import Empty, Queue

import pytest

from desktop_chat.single_instance import socket_path
from devstack.config import REPO_ROOT
from tests.conftest import StackHandle
from tests.gui.app_process import app_environment

pytestmark = pytest.mark.integration

START_TIMEOUT = 120
RAISED = "Another start of the app asked for this window"


class Lines:
    """A process's stderr, line by line, read on a thread so the test can wait for one line."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        assert process.stderr is not None
        self.seen: list[str] = []
        self._queue: Queue[str] = Queue()
        stream = process.stderr
        self._thread = threading.Thread(target=lambda: [self._queue.put(line) for line in stream], daemon=True)
        self._thread.start()

    def wait_for(self, text: str, within: float = START_TIMEOUT) -> str:
        while True:
            try:
                line = self._queue.get(timeout=within)
            except Empty:
                pytest.fail(f"no line with {text!r}; got:\n{''.join(self.seen)}")
            self.seen.append(line)
            if text in line:
                return line

    def rest(self) -> str:
        self._thread.join(timeout=30)
        while not self._queue.empty():
            self.seen.append(self._queue.get_nowait())
        return "".join(self.seen)


def test_a_second_start_raises_the_running_window_and_exits_zero(stack: StackHandle, tmp_path: Path) -> None:
    env = app_environment(stack, tmp_path / "home", QT_QPA_PLATFORM="offscreen")
    command = [sys.executable, "-m", "desktop_chat"]
    with subprocess.Popen(command, cwd=REPO_ROOT, env=env, stderr=subprocess.PIPE, text=True) as first:
        try:
            lines = Lines(first)
            lines.wait_for("Restoring the session (default)")  # its data layer is open, a window is coming
            outbox = tmp_path / "home" / "data" / "outbox.sqlite3"
            outbox_before = outbox.stat().st_mtime_ns

            second = subprocess.run(
                command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=START_TIMEOUT, check=False
            )
            assert second.returncode == 0, second.stderr
            assert "is already running for" in second.stderr
            assert "Building the data layer" not in second.stderr  # it opened nothing of the store
            assert outbox.stat().st_mtime_ns == outbox_before
            lines.wait_for(RAISED)
        finally:
            first.send_signal(signal.SIGTERM)
            try:
                first.wait(timeout=60)
            except subprocess.TimeoutExpired:
                first.kill()
                first.wait()
        log = lines.rest()
        assert first.returncode == 0, log
    assert "Traceback" not in log
    # The lock went with the first run, and so did its socket: the next start is a first start again.
    assert not socket_path(tmp_path / "home" / "run", tmp_path / "home" / "data").exists()
