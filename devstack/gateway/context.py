"""What every gateway service shares: settings and the database pools, created at start-up."""

from __future__ import annotations

from dataclasses import dataclass, field

import asyncpg
from starlette.requests import HTTPConnection

from devstack.gateway.settings import GatewaySettings


@dataclass
class GatewayContext:
    """Attributes:
    settings: From the JSON file written by ``devstack up``.
    admin_pool: Superuser connections: auth administration, logical decoding.
    api_pool: ``authenticator`` connections: each request switches to ``anon``, ``authenticated`` or
        ``service_role`` inside its own transaction, so row level security applies.
    services: State a service creates at start-up and its routes use, by service name (realtime's
        channels and change capture).
    """

    settings: GatewaySettings
    admin_pool: asyncpg.Pool
    api_pool: asyncpg.Pool
    services: dict[str, object] = field(default_factory=dict)


def context_of(connection: HTTPConnection) -> GatewayContext:
    """The context of the app serving ``connection`` (a request or a websocket)."""
    ctx: GatewayContext = connection.app.state.ctx
    return ctx
