"""Run one gateway server in the foreground (the supervisor starts this)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import uvicorn

from devstack.gateway.app import create_app
from devstack.gateway.settings import GatewaySettings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="devstack.gateway.server")
    parser.add_argument("--settings", type=Path, required=True)
    args = parser.parse_args(argv)
    settings = GatewaySettings.load(args.settings)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level="warning",
        access_log=False,
        ws_max_size=1024 * 1024,
        lifespan="on",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
