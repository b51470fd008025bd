"""The gateway's Realtime service: ``/realtime/v1/websocket`` and ``/realtime/v1/api/broadcast``.

Phoenix channels with the V1 JSON serializer, as the official ``realtime`` client speaks them:
``postgres_changes`` read from the WAL (``changes``) and authorized by Postgres (``authz``), broadcast,
presence. Modules: ``protocol`` (frames and join payloads), ``filters``, ``wal`` (change records and
value rendering), ``catalog``, ``bindings`` (joins checked against the catalog), ``schema`` (the
gateway's objects in the database), ``changes`` (capture), ``authz``, ``dispatch`` (fan-out),
``channels`` and ``presence`` (state), ``service`` (sockets and channel events).
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket

from devstack.gateway.context import GatewayContext, context_of
from devstack.gateway.realtime.service import RealtimeService, TokenRejected

__all__ = ["RealtimeService", "drain", "routes", "shutdown", "startup"]

_SERVICE = "realtime"


def service_of(ctx: GatewayContext) -> RealtimeService:
    service = ctx.services[_SERVICE]
    assert isinstance(service, RealtimeService)
    return service


async def websocket_endpoint(websocket: WebSocket) -> None:
    await service_of(context_of(websocket)).serve(websocket)


async def _broadcast(request: Request, messages: list[dict[str, Any]]) -> Response:
    service = service_of(context_of(request))
    headers = {key.lower(): value for key, value in request.headers.items()}
    try:
        await service.broadcast_from_http(headers, messages)
    except TokenRejected as error:
        return JSONResponse({"error": f"Unauthorized: {error}"}, status_code=401)
    return Response(status_code=202)


async def broadcast_one(request: Request) -> Response:
    """``POST /api/broadcast/{topic}/events/{event}`` with the payload as body (``channel.http_send``)."""
    if "json" not in request.headers.get("content-type", ""):
        return JSONResponse({"error": "only JSON payloads can be relayed over V1 sockets"}, status_code=415)
    try:
        payload = json.loads(await request.body())
    except ValueError:
        return JSONResponse({"error": "body is not JSON"}, status_code=400)
    message = {
        "topic": request.path_params["topic"],
        "event": request.path_params["event"],
        "payload": payload,
        "private": request.query_params.get("private") == "true",
    }
    return await _broadcast(request, [message])


async def broadcast_many(request: Request) -> Response:
    """``POST /api/broadcast`` with ``{"messages": [{"topic", "event", "payload", "private"?}]}``."""
    try:
        body = json.loads(await request.body())
    except ValueError:
        return JSONResponse({"error": "body is not JSON"}, status_code=400)
    messages = body.get("messages") if isinstance(body, dict) else None
    if not isinstance(messages, list) or not all(
        isinstance(item, dict) and isinstance(item.get("topic"), str) and isinstance(item.get("event"), str)
        for item in messages
    ):
        return JSONResponse({"error": "expected {messages: [{topic, event, payload}]}"}, status_code=400)
    return await _broadcast(request, messages)


def routes() -> list[BaseRoute]:
    return [
        WebSocketRoute("/websocket", websocket_endpoint),
        Route("/api/broadcast", broadcast_many, methods=["POST"]),
        Route("/api/broadcast/{topic}/events/{event}", broadcast_one, methods=["POST"]),
    ]


async def startup(ctx: GatewayContext) -> None:
    service = RealtimeService(ctx)
    ctx.services[_SERVICE] = service
    await service.start()


async def drain(ctx: GatewayContext) -> None:
    """Close client sockets with 1001 before the server cuts its connections (see ``server``)."""
    service = ctx.services.get(_SERVICE)
    if isinstance(service, RealtimeService):
        await service.drain()


async def shutdown(ctx: GatewayContext) -> None:
    service = ctx.services.pop(_SERVICE, None)
    if isinstance(service, RealtimeService):
        await service.stop()
