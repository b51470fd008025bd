"""Command line: ``desktop-chat [--version] [--smoke-test] [--dev-stack] [--demo]``."""

from __future__ import annotations

import argparse
import sys

from desktop_chat import __version__


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="desktop-chat", description="A desktop chat client over Supabase.")
    parser.add_argument("--version", action="version", version=f"desktop-chat {__version__}")
    parser.add_argument("--smoke-test", action="store_true", help="start, paint one frame and exit 0")
    parser.add_argument("--dev-stack", action="store_true", help="use the local devstack / supabase start")
    parser.add_argument("--demo", action="store_true", help="also open a second window (bob)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # Qt is imported only here and in desktop_chat.ui, so the data layer stays importable without it.
    from desktop_chat.app import run

    return run(smoke_test=args.smoke_test, dev_stack=args.dev_stack, demo=args.demo)


if __name__ == "__main__":
    sys.exit(main())
