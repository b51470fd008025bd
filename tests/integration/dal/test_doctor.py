"""``desktop-chat doctor --json`` against the running stack prints the checks and the metrics snapshot."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from devstack.config import REPO_ROOT
from tests.conftest import StackHandle

pytestmark = pytest.mark.integration


def doctor(stack: StackHandle, home: Path, url: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DESKTOP_CHAT_SUPABASE_URL": url or stack.api_url,
        "DESKTOP_CHAT_SUPABASE_ANON_KEY": stack.anon_key,
        "DESKTOP_CHAT_REDIS_URL": stack.redis_url.rsplit("/", 1)[0] + "/14",
        "DESKTOP_CHAT_CONFIG_DIR": str(home / "config"),
        "DESKTOP_CHAT_DATA_DIR": str(home / "data"),
        "DESKTOP_CHAT_RUNTIME_DIR": str(home / "run"),
        "DESKTOP_CHAT_LOG_DIR": str(home / "log"),
    }
    return subprocess.run(
        [sys.executable, "-m", "desktop_chat", "doctor", "--json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        timeout=120,
        check=False,
    )


def test_doctor_reports_a_healthy_stack(stack: StackHandle, tmp_path: Path) -> None:
    result = doctor(stack, tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    checks = {check["name"]: check for check in report["checks"]}
    assert report["ok"] is True
    assert checks["server"]["ok"] and "answered" in checks["server"]["detail"]
    assert checks["cache"]["ok"] and checks["cache"]["detail"].startswith("online")
    assert checks["outbox"]["ok"]
    snapshot = report["snapshot"]
    assert snapshot["status"]["cache"] == "online"
    assert "metrics" in snapshot
    assert isinstance(report["memory"]["redis_used_memory"], int)


def test_doctor_fails_clearly_when_the_server_is_down(stack: StackHandle, tmp_path: Path) -> None:
    from devstack.procs import free_port

    result = doctor(stack, tmp_path, url=f"http://127.0.0.1:{free_port()}")
    assert result.returncode == 1
    report = json.loads(result.stdout)
    server = next(check for check in report["checks"] if check["name"] == "server")
    assert server["ok"] is False
    assert "Cannot reach the server" in server["detail"]
