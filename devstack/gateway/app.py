"""The gateway's ASGI application: one Starlette app mounting the Supabase-compatible services."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from devstack.gateway.settings import GatewaySettings


async def health(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def not_found(request: Request) -> Response:
    return JSONResponse({"message": f"no route for {request.url.path}"}, status_code=404)


def create_app(settings: GatewaySettings) -> Starlette:
    """Build the application; services attach their routes and their start-up work here."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield

    app = Starlette(
        routes=[Route("/health", health)],
        lifespan=lifespan,
    )
    app.state.settings = settings
    return app
