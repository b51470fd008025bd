"""Run one gateway server in the foreground (the supervisor starts this)."""

from __future__ import annotations

import argparse
import socket
import sys
from pathlib import Path

import uvicorn
from starlette.applications import Starlette

from devstack.gateway.app import create_app, drain
from devstack.gateway.settings import GatewaySettings


class GatewayServer(uvicorn.Server):
    """uvicorn's server with one step added to shutdown: the app drains first.

    uvicorn closes every websocket still open with 1012 before the app's lifespan shutdown runs;
    draining first lets realtime close its sockets with 1001 (going away) itself.
    """

    def __init__(self, config: uvicorn.Config, app: Starlette) -> None:
        super().__init__(config)
        self._app = app

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await drain(self._app)
        await super().shutdown(sockets)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="devstack.gateway.server")
    parser.add_argument("--settings", type=Path, required=True)
    args = parser.parse_args(argv)
    settings = GatewaySettings.load(args.settings)
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level="warning",
        access_log=False,
        ws_max_size=1024 * 1024,
        lifespan="on",
    )
    GatewayServer(config, app).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
