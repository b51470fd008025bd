"""The application starts, paints a frame and exits cleanly (what `--smoke-test` promises)."""

from __future__ import annotations

import os
import subprocess
import sys

from devstack.config import REPO_ROOT


def test_smoke_test_flag_exits_zero() -> None:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    result = subprocess.run(
        [sys.executable, "-m", "desktop_chat", "--smoke-test"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_version_flag_prints_the_version() -> None:
    from desktop_chat import __version__

    result = subprocess.run(
        [sys.executable, "-m", "desktop_chat", "--version"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0
    assert result.stdout.strip() == f"desktop-chat {__version__}"
