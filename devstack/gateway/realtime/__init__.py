"""The gateway's Realtime service: ``/realtime/v1/websocket`` and ``/realtime/v1/api/broadcast``.

Phoenix channels with the V1 JSON serializer (the official Python client) and the V2 array and binary
serializer (``@supabase/supabase-js``): ``postgres_changes`` read from the WAL (``changes``) and
authorized by Postgres (``authz``), broadcast, presence. Modules: ``protocol`` (limits, frames, join
payloads), ``serializer`` (the wire formats), ``filters``, ``wal`` (change records and value rendering),
``catalog``, ``bindings`` (joins checked against the catalog), ``schema`` (the gateway's objects in the
database), ``changes`` (capture), ``authz``, ``dispatch`` (fan-out), ``channels`` and ``presence``
(state), ``service`` (sockets and channel events).

The HTTP broadcast API answers as Realtime's does: bodies over 8,000,000 bytes get 413, bodies that are
not JSON (or nest too deeply, or hold a lone surrogate) 400, messages without ``topic``, ``event`` or
an object ``payload``, or with a payload over 3,000 kB, 422 with Ecto-style ``errors``; then 202.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket

from devstack.gateway.context import GatewayContext, context_of
from devstack.gateway.http import BodyTooLarge, read_body
from devstack.gateway.realtime.protocol import MAX_HTTP_BODY_BYTES, MAX_PAYLOAD_BYTES, JsonError, dumps, loads
from devstack.gateway.realtime.service import RealtimeService, TokenRejected

__all__ = ["RealtimeService", "drain", "routes", "shutdown", "startup"]

_SERVICE = "realtime"


def service_of(ctx: GatewayContext) -> RealtimeService:
    service = ctx.services[_SERVICE]
    assert isinstance(service, RealtimeService)
    return service


async def websocket_endpoint(websocket: WebSocket) -> None:
    await service_of(context_of(websocket)).serve(websocket)


class BadRequest(Exception):
    """A request answered with ``response`` instead of being served."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def _error(status: int, message: str) -> JSONResponse:
    """Realtime's error body (``ErrorView``'s ``error.json``)."""
    return JSONResponse({"message": message}, status_code=status)


async def _json_body(request: Request) -> Any:
    try:
        body = await read_body(request, MAX_HTTP_BODY_BYTES)
    except BodyTooLarge:
        message = f"Request Entity Too Large: the body exceeds {MAX_HTTP_BODY_BYTES} bytes"
        raise BadRequest(_error(413, message)) from None
    except ClientDisconnect:
        raise BadRequest(Response(status_code=400)) from None
    try:
        return loads(body)
    except JsonError as error:
        raise BadRequest(_error(400, f"Bad Request: the body is not usable JSON: {error}")) from None


def _message_errors(message: object) -> dict[str, list[str]]:
    """What Realtime's changeset says about one message (``{}`` when it is fine)."""
    if not isinstance(message, dict):
        return {"messages": ["is invalid"]}
    errors: dict[str, list[str]] = {}
    for name in ("topic", "event"):
        value = message.get(name)
        if value is None or value == "":
            errors[name] = ["can't be blank"]
        elif not isinstance(value, str):
            errors[name] = ["is invalid"]
    payload = message.get("payload")
    if payload is None:
        errors["payload"] = ["can't be blank"]
    elif not isinstance(payload, dict):
        errors["payload"] = ["is invalid"]
    elif len(dumps(payload).encode()) > MAX_PAYLOAD_BYTES:
        errors["payload"] = ["Payload size exceeds tenant limit"]
    if "private" in message and not isinstance(message["private"], bool | None):
        errors["private"] = ["is invalid"]
    return errors


def _headers(request: Request) -> dict[str, str]:
    return {key.lower(): value for key, value in request.headers.items()}


def _unauthorized(request: Request) -> Response | None:
    """401 for a request without a usable token: checked before the body is read, as Realtime does."""
    try:
        service_of(context_of(request)).http_auth(_headers(request))
    except TokenRejected as error:
        return JSONResponse({"error": f"Unauthorized: {error}"}, status_code=401)
    return None


async def _broadcast(request: Request, messages: list[dict[str, Any]]) -> Response:
    try:
        await service_of(context_of(request)).broadcast_from_http(_headers(request), messages)
    except TokenRejected as error:
        return JSONResponse({"error": f"Unauthorized: {error}"}, status_code=401)
    return Response(status_code=202)


async def broadcast_one(request: Request) -> Response:
    """``POST /api/broadcast/{topic}/events/{event}`` with the payload as body (``channel.http_send``)."""
    if (refused := _unauthorized(request)) is not None:
        return refused
    if "json" not in request.headers.get("content-type", ""):
        return JSONResponse({"error": "only JSON payloads can be relayed over V1 sockets"}, status_code=415)
    try:
        payload = await _json_body(request)
    except BadRequest as bad:
        return bad.response
    message = {
        "topic": request.path_params["topic"],
        "event": request.path_params["event"],
        "payload": payload,
        "private": request.query_params.get("private") == "true",
    }
    if errors := _message_errors(message):
        return JSONResponse({"errors": errors}, status_code=422)
    return await _broadcast(request, [message])


async def broadcast_many(request: Request) -> Response:
    """``POST /api/broadcast`` with ``{"messages": [{"topic", "event", "payload", "private"?, "id"?}]}``."""
    if (refused := _unauthorized(request)) is not None:
        return refused
    try:
        body = await _json_body(request)
    except BadRequest as bad:
        return bad.response
    messages = body.get("messages") if isinstance(body, dict) else None
    if not messages:
        return JSONResponse({"errors": {"messages": ["can't be blank"]}}, status_code=422)
    if not isinstance(messages, list):
        return JSONResponse({"errors": {"messages": ["is invalid"]}}, status_code=422)
    errors = [_message_errors(message) for message in messages]
    if any(errors):
        return JSONResponse({"errors": {"messages": errors}}, status_code=422)
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
