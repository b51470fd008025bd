"""Command line: ``desktop-chat [--version] [--smoke-test] [--dev-stack] [--demo]`` and ``desktop-chat doctor``."""

from __future__ import annotations

import argparse
import sys


def _parser() -> argparse.ArgumentParser:
    from desktop_chat import __version__

    parser = argparse.ArgumentParser(prog="desktop-chat", description="A desktop chat client over Supabase.")
    parser.add_argument("--version", action="version", version=f"desktop-chat {__version__}")
    parser.add_argument("--smoke-test", action="store_true", help="start, paint one frame and exit 0")
    parser.add_argument("--dev-stack", action="store_true", help="use the local devstack / supabase start")
    parser.add_argument("--demo", action="store_true", help="also open a second window (bob)")
    commands = parser.add_subparsers(dest="command", metavar="command")
    doctor = commands.add_parser("doctor", help="check the server, cache, keyring and outbox, then exit")
    doctor.add_argument("--json", action="store_true", help="print the report as JSON")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "doctor":
        # No Qt here: doctor must work on a machine without a display or Qt's system libraries.
        from desktop_chat.doctor import run_doctor

        return run_doctor(as_json=args.json)
    # Qt is imported only here and in desktop_chat.ui, so the data layer stays importable without it.
    from desktop_chat.app import Options, run

    return run(Options(smoke_test=args.smoke_test, dev_stack=args.dev_stack, demo=args.demo))


if __name__ == "__main__":
    sys.exit(main())
