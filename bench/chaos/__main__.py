"""``python -m bench.chaos [--quick] [--cells a,b] [--no-soak]``: run the fault matrix, print it, save it.

Exits 1 when any cell loses or duplicates a message, or heals later than 10 s after its fault ended (2 on a
usage error). ``make chaos`` runs the whole matrix and the 10-minute soak; ``--quick`` shortens the long
outage and the soak for iteration. Results go to ``bench/results/chaos.json`` (``chaos-quick.json`` with
``--quick``), each cell's logs (clients, gateway, PostgreSQL, Redis) to ``tests/artifacts/chaos/<cell>/``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

from bench.__main__ import RESULTS, _commit
from bench.chaos import faults
from bench.chaos.accounting import HEAL_LIMIT
from bench.chaos.harness import CellResult, CellSpec, Options, SoakSpec, run_cell, run_soak
from bench.chaos.report import evidence, table

TOKEN_TTL = 8  # seconds: the token-expiry cell's stack issues access tokens this short-lived


def cells(quick: bool) -> list[CellSpec]:
    down = 15.0 if quick else 60.0
    return [
        CellSpec("gateway-kill", "gateway SIGKILL mid-send", faults.gateway_sigkill),
        CellSpec("gateway-down", f"gateway down {down:g} s", faults.gateway_down(down)),
        CellSpec("pg-restart", "PostgreSQL restart", faults.postgres_restart),
        CellSpec("redis-kill", "Redis SIGKILL (back after 3 s)", faults.redis_sigkill(3.0)),
        CellSpec("blackhole", "realtime socket black-holed", faults.blackhole, after=5.0),
        CellSpec("surrogate-broadcast", "lone-surrogate broadcast", faults.surrogate_broadcast, after=5.0),
        CellSpec("surrogate-presence", "lone-surrogate presence", faults.surrogate_presence, after=5.0),
        CellSpec(
            "token-expiry",
            f"token expiry (TTL {TOKEN_TTL} s, bob frozen {TOKEN_TTL + 4} s)",
            faults.token_expiry(TOKEN_TTL + 4.0),
            before=2.0 * TOKEN_TTL,
            stack={"access_token_ttl": TOKEN_TTL},
        ),
        CellSpec("app-kill", "app SIGKILL, full outbox", faults.app_sigkill("alice", burst=100)),
    ]


def soak(quick: bool, seed: int, seconds: float | None) -> SoakSpec:
    kinds: list[tuple[str, faults.Fault]] = [
        ("gateway SIGKILL", faults.gateway_sigkill),
        ("gateway down 5 s", faults.gateway_down(5.0)),
        ("PostgreSQL restart", faults.postgres_restart),
        ("Redis SIGKILL", faults.redis_sigkill(3.0)),
        ("black-hole", faults.blackhole),
        ("lone-surrogate broadcast", faults.surrogate_broadcast),
        ("app SIGKILL (carol)", faults.app_sigkill("carol", burst=50)),
    ]
    return SoakSpec(
        seconds=seconds or (60.0 if quick else 600.0),
        rate=50.0,
        interval=20.0 if quick else 30.0,
        faults=kinds,
        seed=seed,
    )


def say(result: CellResult) -> None:
    print(f"   {'ok' if result.ok else 'FAILED'} in {result.wall_s:.0f} s: {evidence(result.as_dict())}", flush=True)


async def run(args: argparse.Namespace) -> list[CellResult]:
    options = Options(observe=args.observe, artifacts=Path(args.artifacts))
    specs = cells(args.quick)
    if args.cells:
        wanted = args.cells.split(",")
        specs = [spec for spec in specs if spec.name in wanted]
    results = []
    for spec in specs:
        print(f"== {spec.name}: {spec.title}", flush=True)
        result = await run_cell(spec, options)
        results.append(result)
        say(result)
    if not args.no_soak and (not args.cells or "soak" in args.cells.split(",")):
        soak_spec = soak(args.quick, args.seed, args.soak_seconds)
        print(f"== soak: {soak_spec.seconds:g} s at {soak_spec.rate:g} msg/s, a fault every {soak_spec.interval:g} s")
        result = await run_soak(soak_spec, options)
        results.append(result)
        say(result)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.chaos", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="gateway down 15 s instead of 60, a 60 s soak")
    names = ", ".join(spec.name for spec in cells(False))
    parser.add_argument("--cells", help=f"comma-separated cells to run: {names}, soak")
    parser.add_argument("--no-soak", action="store_true", help="the matrix only")
    parser.add_argument("--soak-seconds", type=float, help="the soak's length (default 600, 60 with --quick)")
    parser.add_argument("--seed", type=int, default=int(time.time()) % 100_000, help="the soak's fault order")
    parser.add_argument("--observe", type=float, default=40.0, help="seconds to wait for healing after sending stops")
    parser.add_argument("--artifacts", default="tests/artifacts/chaos", help="where each cell's logs go")
    parser.add_argument("--out", help="result file (default bench/results/chaos.json, chaos-quick.json with --quick)")
    args = parser.parse_args(argv)
    known = {s.name for s in cells(False)} | {"soak"}
    if args.cells and (unknown := set(args.cells.split(",")) - known):
        parser.error(f"unknown cell(s): {', '.join(sorted(unknown))}")
    started = time.perf_counter()
    results = asyncio.run(run(args))
    wall = time.perf_counter() - started
    rows = [result.as_dict() for result in results]
    print()
    print(table(rows))
    failed = [row for row in rows if not row["ok"]]
    for row in failed:
        print(f"  {row['cell']}: {evidence(row)}")
    print(f"\n{len(rows) - len(failed)} of {len(rows)} cells ok; heal limit {HEAL_LIMIT:g} s; {wall:.0f} s in all")
    out = Path(args.out) if args.out else RESULTS / ("chaos-quick.json" if args.quick else "chaos.json")
    document: dict[str, Any] = {
        "benchmark": "chaos",
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "commit": _commit(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "system": platform.platform()},
        "wall_seconds": round(wall, 1),
        "figures": {
            "mode": "quick" if args.quick else "full",
            "heal_limit_s": HEAL_LIMIT,
            "seed": args.seed,
            "ok": not failed,
            "table": table(rows).splitlines(),
            "cells": rows,
        },
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=2) + "\n")
    print(f"saved {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
