"""The API key check Supabase's API gateway (Kong's key-auth) makes before any service sees a request.

On a hosted or ``supabase start`` project every request to ``/auth/v1`` and ``/rest/v1`` (and the
Realtime REST endpoints) must carry the project's ``anon`` or ``service_role`` key, in the ``apikey``
header or the ``apikey`` query parameter; otherwise Kong answers 401 itself:

- no key: ``{"message": "No API key found in request", "hint": "No `apikey` request header or url
  param was found."}``
- a key that is not one of the project's: ``{"message": "Invalid API key", "hint": "Double check your
  Supabase `anon` or `service_role` API key."}``

Without this check a client configured with a wrong key works against the devstack and fails against
Supabase. The project's keys are the JWTs signed with its secret whose role is ``anon`` or
``service_role`` (a user's access token is not an API key). A few GoTrue routes are open in Supabase's
Kong configuration (e-mail links and OAuth redirects land there from a browser) and stay open here.
The WebSocket at ``/realtime/v1/websocket`` checks its ``apikey`` itself (realtime service).
"""

from __future__ import annotations

import functools
import json
from typing import Any
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Receive, Scope, Send

from devstack.gateway import jwt

GUARDED = ("/auth/v1/", "/rest/v1/", "/realtime/v1/api/")
OPEN = ("/auth/v1/verify", "/auth/v1/callback", "/auth/v1/authorize")
KEY_ROLES = frozenset({"anon", "service_role"})

NO_KEY = {"message": "No API key found in request", "hint": "No `apikey` request header or url param was found."}
BAD_KEY = {"message": "Invalid API key", "hint": "Double check your Supabase `anon` or `service_role` API key."}


def guarded(path: str) -> bool:
    """Whether a request to ``path`` needs an API key (as Kong's routes of a Supabase project do)."""
    if any(path == open_path or path.startswith(open_path + "/") for open_path in OPEN):
        return False
    return any(path.startswith(prefix) or path == prefix.rstrip("/") for prefix in GUARDED)


def refusal(key: str | None, secret: str) -> dict[str, str] | None:
    """The body of the 401 for this key, or ``None`` when it is one of the project's API keys."""
    if not key:
        return NO_KEY
    return None if _is_api_key(key, secret) else BAD_KEY


@functools.lru_cache(maxsize=64)
def _is_api_key(key: str, secret: str) -> bool:
    # Every request carries the same key: remember the answer (the check is an HMAC and a JSON parse).
    try:
        claims = jwt.verify(key, secret)
    except jwt.TokenError:
        return False
    return claims.get("role") in KEY_ROLES


def key_of(scope: Scope) -> str | None:
    """The ``apikey`` header (any spelling), else the ``apikey`` query parameter, as Kong reads them."""
    for name, value in scope.get("headers", ()):
        if name.lower() == b"apikey":
            return bytes(value).decode("latin-1").strip()
    query = parse_qs(bytes(scope.get("query_string", b"")).decode("latin-1"))
    values = query.get("apikey")
    return values[0].strip() if values else None


class ApiKeyGuard:
    """ASGI middleware answering 401 before routing when a guarded request has no valid API key."""

    def __init__(self, app: ASGIApp, secret: str) -> None:
        self.app = app
        self.secret = secret

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] != "OPTIONS" and guarded(scope["path"]):
            body = refusal(key_of(scope), self.secret)
            if body is not None:
                await _reply_401(send, body)
                return
        await self.app(scope, receive, send)


async def _reply_401(send: Send, body: dict[str, Any]) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 401,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": payload})
