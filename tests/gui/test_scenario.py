"""A person's day with the app, end to end: the real app (its own process, on a real X server) over the real
stack, through the whole account lifecycle, then restarted with the server unreachable.

Sign in, chat, sign out, sign in as someone else, sign out, create an account, sign out, sign in again and
quit (``tests/gui/scenario.py online``); stop the gateway; start the app again (``offline``): the saved chats
show at once, a message sent waits; start the gateway: it is delivered and the status says Live. Screenshots
of every step go to ``tests/artifacts/scenario-*.png``; the app's log must hold no crash.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from devstack.config import REPO_ROOT
from tests.conftest import StackHandle
from tests.gui.app_process import app_environment

pytestmark = pytest.mark.integration

ARTIFACTS = REPO_ROOT / "tests" / "artifacts"
PHASE_TIMEOUT = 150


def report_of(path: Path) -> dict[str, Any]:
    assert path.exists(), "the app wrote no report"
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def crashes_in(log_dir: Path) -> list[str]:
    return [
        line
        for log in log_dir.glob("*.log*")
        for line in log.read_text(errors="replace").splitlines()
        if "CRITICAL" in line or "Traceback" in line
    ]


def test_a_day_with_the_app_sign_ins_and_outs_then_a_restart_offline(
    stack: StackHandle, tmp_path: Path, x_display: str
) -> None:
    home = tmp_path / "home"
    env = app_environment(stack, home, DISPLAY=x_display, QT_QPA_PLATFORM="xcb", DESKTOP_CHAT_REQUEST_TIMEOUT="5")
    ARTIFACTS.mkdir(exist_ok=True)
    for old in ARTIFACTS.glob("scenario-*.png"):
        old.unlink()

    online = tmp_path / "online.json"
    result = subprocess.run(
        [sys.executable, "-m", "tests.gui.scenario", "online", str(ARTIFACTS), str(online)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=PHASE_TIMEOUT,
        check=False,
    )
    report = report_of(online)
    assert report["problems"] == [], result.stderr[-3000:]
    assert report["exit"] == 0 and result.returncode == 0
    assert len(report["counts"]["tasks after sign-out"]) == 3

    gateway = stack.stack.gateway
    gateway.stop()
    offline = tmp_path / "offline.json"
    marker = tmp_path / "queued"
    app = subprocess.Popen(
        [sys.executable, "-m", "tests.gui.scenario", "offline", str(ARTIFACTS), str(offline), str(marker)],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + PHASE_TIMEOUT
        while not marker.exists() and app.poll() is None:
            assert time.monotonic() < deadline, "the offline app never queued its message"
            time.sleep(0.05)
    finally:
        gateway.start()  # whatever happened: the rest of the suite needs it
    _, stderr = app.communicate(timeout=PHASE_TIMEOUT)
    report = report_of(offline)
    assert report["problems"] == [], stderr[-3000:]
    assert report["exit"] == 0 and app.returncode == 0
    assert crashes_in(home / "log") == []
    shots = sorted(path.name for path in ARTIFACTS.glob("scenario-*.png"))
    assert len(shots) == 11, shots
