"""``chat-migrate``: the command line. Every subcommand has ``--help`` and ``--json``; exit 0 only on success.

Exit codes: 0 success; 1 the command ran and did not succeed (refused, differences found); 2 bad options
or input files; 3 Redis or the database cannot be reached or used (unreachable, wrong password, no
desktop-chat schema, missing privilege). Failures print one line, ``chat-migrate: <what and why>``.
Connection URLs may come from the environment (``CHAT_MIGRATE_REDIS_URL``, ``CHAT_MIGRATE_DB_URL``), which
keeps passwords out of shell history and process lists.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from chat_migrate import __version__
from chat_migrate.errors import BadInput, MigrateError
from chat_migrate.progress import Reporter

REDIS_ENV = "CHAT_MIGRATE_REDIS_URL"
DB_ENV = "CHAT_MIGRATE_DB_URL"


def _redis(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--redis",
        metavar="URL",
        default=os.environ.get(REDIS_ENV),
        help=f"the legacy Redis, e.g. redis://:PASSWORD@host:6379/0 (default: ${REDIS_ENV})",
    )


def _db(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db-url",
        metavar="URL",
        default=os.environ.get(DB_ENV),
        help=(
            "the Supabase database as its owner, e.g. postgresql://postgres:PASSWORD@db.REF.supabase.co:5432/postgres"
            f" (the direct connection or session pooler; default: ${DB_ENV})"
        ),
    )


def _emails(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--email-domain", metavar="DOMAIN", help="give each legacy user the address <username>@DOMAIN")
    parser.add_argument(
        "--emails",
        metavar="FILE.csv",
        type=Path,
        help="username,email rows (a user may be named user:<id>); wins over --email-domain",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=20_000,
        metavar="N",
        help="messages per load transaction (default 20000; a bigger room is loaded in one transaction)",
    )


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print a machine-readable summary on standard output")
    parser.add_argument("--quiet", action="store_true", help="no progress or log lines on standard error")


def _add(parser: argparse.ArgumentParser, *groups: Callable[[argparse.ArgumentParser], None]) -> None:
    for group in groups:
        group(parser)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chat-migrate",
        description=(
            "Move a legacy Redis chat store into this project's Supabase: plan, run, verify, backup, cleanup"
            " (and rollback, restore). See docs/migration.md."
        ),
    )
    parser.add_argument("--version", action="version", version=f"chat-migrate {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("plan", help="report what run would create and quarantine; writes nothing")
    _add(p, _redis, _db, _emails, _common)

    p = sub.add_parser("run", help="migrate users, chats, memberships and messages (resumable, idempotent)")
    _add(p, _redis, _db, _emails, _common)

    p = sub.add_parser("verify", help="compare every room, user and membership with the legacy store")
    _add(p, _redis, _db, _common)
    p.add_argument("--run", type=int, metavar="ID", help="check only what run ID migrated")
    p.add_argument("--show", type=int, default=20, metavar="N", help="list at most N differences (default 20)")

    p = sub.add_parser("rollback", help="remove exactly what a run created")
    _add(p, _db, _common)
    p.add_argument("--run", type=int, metavar="ID", required=True, help="the run to undo")
    p.add_argument(
        "--force", action="store_true", help="also when people have used the migrated chats since (deletes that too)"
    )

    p = sub.add_parser("backup", help="save every legacy key to a file (checksummed)")
    _add(p, _redis, _common)
    p.add_argument("--out", type=Path, required=True, metavar="FILE", help="the backup file to write (gzip)")

    p = sub.add_parser("cleanup", help="delete the legacy keys, once verify passes and the backup matches Redis")
    _add(p, _redis, _db, _common)
    p.add_argument("--run", type=int, metavar="ID", required=True, help="the finished run the cleanup follows")
    p.add_argument("--backup", type=Path, required=True, metavar="FILE", help="the backup taken after that run")

    p = sub.add_parser("restore", help="put the keys of a backup file back into Redis")
    _add(p, _redis, _common)
    p.add_argument("--backup", type=Path, required=True, metavar="FILE")
    p.add_argument("--replace", action="store_true", help="overwrite keys that exist in Redis")
    return parser


def _need(value: str | None, option: str, env: str) -> str:
    if not value:
        raise BadInput(f"{option} is required (or set ${env})")
    return value


async def _dispatch(args: argparse.Namespace, reporter: Reporter) -> tuple[dict[str, Any], bool]:
    """Run the subcommand; returns its summary and whether it succeeded."""
    command = args.command
    if command in ("plan", "run"):
        from chat_migrate import migrate

        options = migrate.Options(
            redis_url=_need(args.redis, "--redis", REDIS_ENV),
            db_url=_need(args.db_url, "--db-url", DB_ENV),
            email_domain=args.email_domain,
            emails_file=args.emails,
            batch_size=args.batch_size,
        )
        if command == "plan":
            return await migrate.plan(options, reporter)
        return await migrate.run(options, reporter), True
    if command == "verify":
        from chat_migrate import verify

        return await verify.verify(
            _need(args.redis, "--redis", REDIS_ENV),
            _need(args.db_url, "--db-url", DB_ENV),
            args.run,
            args.show,
            reporter,
        )
    if command == "rollback":
        from chat_migrate import rollback

        return await rollback.rollback(_need(args.db_url, "--db-url", DB_ENV), args.run, args.force, reporter), True
    from chat_migrate import backup

    if command == "backup":
        return await backup.backup(_need(args.redis, "--redis", REDIS_ENV), args.out, reporter), True
    if command == "cleanup":
        return (
            await backup.cleanup(
                _need(args.redis, "--redis", REDIS_ENV),
                _need(args.db_url, "--db-url", DB_ENV),
                args.run,
                args.backup,
                reporter,
            ),
            True,
        )
    if command == "restore":
        return await backup.restore(_need(args.redis, "--redis", REDIS_ENV), args.backup, args.replace, reporter), True
    raise BadInput(f"unknown command {command}")  # argparse already refuses these


def _print_human(summary: dict[str, Any], stream: Any) -> None:
    from chat_migrate.report import render

    print(render(summary), file=stream)


def main(argv: list[str] | None = None, *, runner: Callable[[Coroutine[Any, Any, Any]], Any] = asyncio.run) -> int:
    args = build_parser().parse_args(argv)
    reporter = Reporter(quiet=args.quiet)
    try:
        summary, ok = runner(_dispatch(args, reporter))
    except MigrateError as error:
        if args.json:
            print(json.dumps({"command": args.command, "ok": False, "error": str(error)}))
        print(f"chat-migrate: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("chat-migrate: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    summary.setdefault("ok", ok)
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
    else:
        _print_human(summary, sys.stdout)
    return 0 if ok else 1
