"""The installer: bundle size, installed size, and start to first painted frame of the installed app against
the virtual environment, side by side.

- ``bundle``: the PyInstaller folder ``dist/desktop-chat`` (apparent size, as ``du --apparent-size``).
- ``deb``: the archive's size and its ``Installed-Size`` (KiB, as dpkg counts it). Goal: 120 MiB installed.
- ``start``: a new process started with ``--smoke-test`` (offscreen), from spawn to the log line that says
  the first window was painted (``window.grab()`` renders every paint event of one frame), as the parent
  sees it, for the installed app (``/usr/bin/desktop-chat``) and for ``.venv/bin/python -m desktop_chat``,
  alternating, after one warm-up run of each. Goal: the installed app within 1.5x the venv.

The .deb is built first if it is missing or stale (``packaging/linux/build_deb.py``). As root, the package
is installed with ``apt-get`` for the measurement and purged afterwards (unless it was installed already);
otherwise the .deb's files are unpacked into a temporary directory and run from there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.stats import summary_ms

REPO = Path(__file__).resolve().parent.parent
RUNS = 12
PAINTED = "Smoke test: painted"
TIMEOUT = 120.0


def _build_deb() -> Any:
    sys.path[:0] = [str(REPO / "packaging" / "linux"), str(REPO / "packaging")]
    import build_deb

    return build_deb


def apparent_kib(path: Path) -> int:
    total = 0
    for item in path.rglob("*"):
        if item.is_file() and not item.is_symlink():
            total += item.stat().st_size
    return round(total / 1024)


def time_to_first_paint(command: list[str], home: Path) -> float:
    """Seconds from spawning ``command --smoke-test`` to its "painted" log line."""
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(home),
        "XDG_RUNTIME_DIR": str(home),
        "QT_QPA_PLATFORM": "offscreen",
    }
    started = time.perf_counter()
    process = subprocess.Popen(
        [*command, "--smoke-test"], cwd=home, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True
    )
    assert process.stderr is not None
    painted = None
    for line in process.stderr:
        if PAINTED in line and painted is None:
            painted = time.perf_counter() - started
        if time.perf_counter() - started > TIMEOUT:
            break
    code = process.wait(timeout=TIMEOUT)
    if painted is None or code != 0:
        raise RuntimeError(f"{command[0]} --smoke-test did not paint (exit {code})")
    return painted


@contextmanager
def installed_app(deb: Path) -> Iterator[tuple[list[str], str]]:
    """The app as installed from ``deb``: through apt as root, else unpacked into a temporary directory."""
    launcher = Path("/usr/bin/desktop-chat")
    if os.geteuid() == 0 and shutil.which("apt-get"):
        already = launcher.exists()
        subprocess.run(
            ["apt-get", "install", "-y", "-q", "--no-install-recommends", str(deb)],
            check=True,
            capture_output=True,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
        try:
            yield [str(launcher)], "installed with apt-get"
        finally:
            if not already:
                subprocess.run(["apt-get", "purge", "-y", "-q", "desktop-chat"], check=True, capture_output=True)
        return
    with tempfile.TemporaryDirectory() as scratch:
        subprocess.run(["dpkg-deb", "-x", str(deb), scratch], check=True)
        yield [str(Path(scratch) / "opt" / "desktop-chat" / "desktop-chat")], "unpacked from the .deb (not root)"


def run() -> dict[str, Any]:
    build_deb = _build_deb()
    deb = build_deb.build()
    figures: dict[str, Any] = {
        "bundle": {"apparent_kib": apparent_kib(build_deb.BUNDLE)},
        "deb": {
            "file": deb.name,
            "archive_kib": round(deb.stat().st_size / 1024),
            "installed_size_kib": int(
                subprocess.run(
                    ["dpkg-deb", "--field", str(deb), "Installed-Size"], capture_output=True, text=True, check=True
                ).stdout
            ),
        },
    }
    for part in ("bundle",):
        figures[part]["apparent_mib"] = round(figures[part]["apparent_kib"] / 1024, 1)
    figures["deb"]["installed_size_mib"] = round(figures["deb"]["installed_size_kib"] / 1024, 1)
    figures["deb"]["installed_size_mb"] = round(figures["deb"]["installed_size_kib"] * 1024 / 1e6, 1)
    figures["deb"]["goal_installed_mib"] = 120

    venv = [str(REPO / ".venv" / "bin" / "python"), "-m", "desktop_chat"]
    with installed_app(deb) as (app, how), tempfile.TemporaryDirectory() as scratch:
        homes = {"installed": Path(scratch) / "installed", "venv": Path(scratch) / "venv"}
        commands = {"installed": app, "venv": venv}
        for name, home in homes.items():
            home.mkdir()
            time_to_first_paint(commands[name], home)  # warm-up: page cache, first-run directories
        samples: dict[str, list[float]] = {"installed": [], "venv": []}
        for _ in range(RUNS):
            for name in ("venv", "installed"):
                samples[name].append(time_to_first_paint(commands[name], homes[name]))
    start = {name: summary_ms(values) for name, values in samples.items()}
    ratio = start["installed"]["p50_ms"] / start["venv"]["p50_ms"]
    figures["start_to_first_paint"] = {
        "installed_app": how,
        "platform": "offscreen",
        "runs_each": RUNS,
        **start,
        "ratio_installed_to_venv_p50": round(ratio, 2),
        "goal_ratio": 1.5,
    }
    return figures


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
