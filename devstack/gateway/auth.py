"""Placeholder for the gateway's auth service; replaced by its implementation."""

from __future__ import annotations

from starlette.routing import BaseRoute

from devstack.gateway.context import GatewayContext


def routes() -> list[BaseRoute]:
    return []


async def startup(ctx: GatewayContext) -> None:
    return None


async def shutdown(ctx: GatewayContext) -> None:
    return None
