"""``python -m devstack up [--json] | down | status [--json] | reset``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from devstack.config import StackConfig
from devstack.procs import DevstackError
from devstack.stack import Stack


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="devstack",
        description="A local Supabase-compatible stack (PostgreSQL, Redis, API gateway) without Docker.",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        help="where the stack keeps its data, logs and pid files (default: $DEVSTACK_STATE_DIR or ./.devstack)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    up = sub.add_parser("up", help="start the stack (idempotent) and apply pending migrations")
    up.add_argument("--json", action="store_true", help="print connection details as one JSON object")
    up.add_argument("--no-seed", action="store_true", help="do not load supabase/seed.sql into a new cluster")
    up.add_argument("--no-gateway", action="store_true", help="start only the database and Redis")
    up.add_argument("--ephemeral", action="store_true", help="skip fsync (throwaway stacks for tests)")
    sub.add_parser("down", help="stop the stack's services")
    status = sub.add_parser("status", help="show which services run")
    status.add_argument("--json", action="store_true")
    reset = sub.add_parser("reset", help="wipe the database and cache, then start again with the seed")
    reset.add_argument("--json", action="store_true")
    reset.add_argument("--no-seed", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    overrides: dict[str, object] = {}
    if getattr(args, "no_gateway", False):
        overrides["gateway"] = False
    if getattr(args, "ephemeral", False):
        overrides["ephemeral"] = True
    stack = Stack(StackConfig.from_env(args.state_dir, **overrides))
    try:
        if args.command == "up":
            info = stack.up(seed=not args.no_seed)
            _print_info(info, as_json=args.json)
        elif args.command == "reset":
            info = stack.reset(seed=not args.no_seed)
            _print_info(info, as_json=args.json)
        elif args.command == "down":
            stopped = stack.down()
            print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
        elif args.command == "status":
            status = stack.status()
            if args.json:
                print(json.dumps({"services": status, **stack.info()}))
            else:
                for name, item in status.items():
                    state = "running" if item["running"] else "stopped"
                    print(f"{name:9} {state:8} 127.0.0.1:{item['port']}")
            return 0 if all(item["running"] or not item.get("enabled", True) for item in status.values()) else 3
    except DevstackError as error:
        print(f"devstack: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


def _print_info(info: dict[str, object], *, as_json: bool) -> None:
    if as_json:
        print(json.dumps(info))
        return
    applied = info.get("applied_migrations")
    print("devstack is up")
    for key in ("api_url", "db_url", "redis_url", "anon_key", "service_role_key", "logs_dir"):
        print(f"  {key:17} {info[key]}")
    if isinstance(applied, list) and applied:
        print(f"  applied          {', '.join(str(a) for a in applied)}")
    if info.get("seeded"):
        print("  seeded           supabase/seed.sql (alice@, bob@, carol@example.com / password123)")
