"""The gateway's ASGI application: one Starlette app mounting the Supabase-compatible services.

Each service module (``auth``, ``rest``, ``realtime``) exposes ``routes()`` and the coroutines
``startup(ctx)`` and ``shutdown(ctx)`` for background work (realtime's change capture), and may expose
``drain(ctx)``, run when the server starts shutting down, before it cuts the open connections.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from devstack.gateway import auth, realtime, rest
from devstack.gateway.context import GatewayContext
from devstack.gateway.keys import ApiKeyGuard
from devstack.gateway.settings import GatewaySettings

SERVICES = (auth, rest, realtime)


async def health(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def drain(app: Starlette) -> None:
    """Let each service close its long-lived connections its own way (realtime: close code 1001)."""
    ctx = getattr(app.state, "ctx", None)
    if ctx is None:
        return
    for service in SERVICES:
        hook = getattr(service, "drain", None)
        if hook is not None:
            await hook(ctx)


def create_app(settings: GatewaySettings) -> Starlette:
    """Build the application; the database pools are opened in the lifespan."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        admin_pool = await asyncpg.create_pool(settings.db_url, min_size=1, max_size=10)
        # REST switches roles at session level; its reset puts each connection back to `authenticator`.
        api_pool = await asyncpg.create_pool(
            settings.authenticator_url, min_size=2, max_size=20, reset=rest.reset_connection
        )
        ctx = GatewayContext(settings=settings, admin_pool=admin_pool, api_pool=api_pool)
        app.state.ctx = ctx
        started = []
        try:
            for service in SERVICES:
                await service.startup(ctx)
                started.append(service)
            yield
        finally:
            for service in reversed(started):
                await service.shutdown(ctx)
            await api_pool.close()
            await admin_pool.close()

    app = Starlette(
        routes=[
            Route("/health", health),
            Mount("/auth/v1", routes=auth.routes()),
            Mount("/rest/v1", routes=rest.routes()),
            Mount("/realtime/v1", routes=realtime.routes()),
        ],
        # Supabase's API gateway refuses a request without the project's API key before any service.
        middleware=[Middleware(ApiKeyGuard, secret=settings.jwt_secret)],
        lifespan=lifespan,
    )
    app.state.settings = settings
    return app
