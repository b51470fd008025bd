"""startup: what the first frame costs, before and after this branch's changes, side by side in one run.

1. Import profile: ``python -X importtime -c "import desktop_chat.app"`` (what ``python -m desktop_chat``
   imports before it can build a window), for a checkout of the base commit (``STARTUP_BASE``, default
   ``main``; extracted with ``git archive``) and for this tree. Reported: the total, and the 15 modules
   with the largest cumulative time, each the median of ``IMPORT_RUNS`` runs.
2. Start to first painted chat list: ``bench gui``'s ``startup restore`` scenario (a new process of the
   real app, the session restored, the cache warm in an external Redis, until the chat list has painted
   rows: the first paint event of the chat list's viewport with rows, see ``bench_gui.scenario_startup``),
   the two trees interleaved run by run against one throwaway stack; this tree's scenario runs both.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import defaultdict
from io import BytesIO
from pathlib import Path
from typing import Any

from bench.stats import summary_ms

REPO = Path(__file__).resolve().parent.parent
BASE = os.environ.get("STARTUP_BASE", "main")
IMPORT_RUNS = 5
START_RUNS = 7
TOP = 15


def extract(commit: str, into: Path) -> Path:
    """The tree of ``commit`` as files under ``into`` (no git worktree is registered)."""
    archive = subprocess.run(["git", "archive", commit], cwd=REPO, capture_output=True, check=True).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def import_profile(tree: Path) -> dict[str, Any]:
    """Median cumulative import time per module over ``IMPORT_RUNS`` runs in ``tree``."""
    cumulative: dict[str, list[int]] = defaultdict(list)
    totals: list[int] = []
    for _ in range(IMPORT_RUNS):
        result = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", "import desktop_chat.app"],
            cwd=tree,
            env={**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(tree)},
            capture_output=True,
            text=True,
            check=True,
        )
        total = 0
        for line in result.stderr.splitlines():
            if not line.startswith("import time:") or "self [us]" in line:
                continue
            own, cum, name = line.removeprefix("import time:").split("|")
            total += int(own)
            cumulative[name.strip()].append(int(cum))
        totals.append(total)
    top = sorted(cumulative.items(), key=lambda item: -statistics.median(item[1]))[:TOP]
    return {
        "total_ms_p50": round(statistics.median(totals) / 1000, 1),
        "top_cumulative_ms": {name: round(statistics.median(values) / 1000, 1) for name, values in top},
        "supabase_httpx_realtime_ms": {
            name: round(statistics.median(cumulative[name]) / 1000, 1)
            for name in ("supabase", "realtime", "httpx", "postgrest", "supabase_auth")
            if name in cumulative
        },
    }


def start_to_paint(trees: dict[str, Path]) -> dict[str, Any]:
    from devstack.throwaway import throwaway_stack

    with throwaway_stack() as (_, info), tempfile.TemporaryDirectory() as root:

        def start(name: str, mode: str) -> float:
            home = f"{root}/{name}"
            env = {
                **os.environ,
                "QT_QPA_PLATFORM": "offscreen",
                "PYTHONPATH": str(trees[name]),
                "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
                "DESKTOP_CHAT_SUPABASE_URL": str(info["api_url"]),
                "DESKTOP_CHAT_SUPABASE_ANON_KEY": str(info["anon_key"]),
                "DESKTOP_CHAT_REDIS_URL": f"{str(info['redis_url']).rsplit('/', 1)[0]}/{1 + list(trees).index(name)}",
                **{
                    f"DESKTOP_CHAT_{kind.upper()}_DIR": f"{home}/{kind}"
                    for kind in ("config", "data", "cache", "log", "runtime")
                },
            }
            spawned = time.time()
            result = subprocess.run(
                # This tree's scenario for both trees (the same measurement), the app from ``trees[name]``.
                [sys.executable, str(REPO / "bench" / "bench_gui.py"), "startup", mode],
                cwd=trees[name],
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            line = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
            if result.returncode != 0 or "painted_at" not in line:
                raise RuntimeError(f"startup ({name}) failed: {result.stderr[-2000:]}")
            import json

            return float(json.loads(line)["painted_at"]) - spawned

        for name in trees:
            start(name, "sign-in")  # saves the session and fills the cache
        times: dict[str, list[float]] = {name: [] for name in trees}
        for _ in range(START_RUNS):
            for name in trees:
                times[name].append(start(name, "restore"))
    return {name: summary_ms(values) for name, values in times.items()}


def run() -> dict[str, Any]:
    base = subprocess.run(
        ["git", "rev-parse", "--short", BASE], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        trees = {"before": extract(base, Path(tmp) / "before"), "after": REPO}
        imports = {name: import_profile(tree) for name, tree in trees.items()}
        painted = start_to_paint(trees)
    return {
        "base_commit": base,
        "import_profile": imports,
        "start_to_first_painted_chat_list": painted,
        "ratio_after_to_before_p50": round(painted["after"]["p50_ms"] / painted["before"]["p50_ms"], 2),
        "goal": "start to first painted chat list <= 800 ms p50 (warm cache, session restored)",
        "note": "import profile: python -X importtime -c 'import desktop_chat.app', median of runs",
    }
