"""Who is asking and how: the request's role and claims, profile, media type and body, PostgREST-style.

PostgREST reads the role from a verified JWT and lets PostgreSQL decide what that role may do; so does
this module. Nothing here grants or refuses access to data: it only establishes the role.
"""

from __future__ import annotations

import functools
import json
import time
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from devstack.gateway import jwt
from devstack.gateway.http import BodyTooLarge, read_body
from devstack.gateway.rest.errors import RestError, bad_body

OBJECT_MEDIA_TYPE = "application/vnd.pgrst.object+json"
_JWT_MESSAGES = {
    "malformed": "JWT couldn't be decoded",
    "algorithm": "Wrong or unsupported encoding algorithm",
    "signature": "JWT cryptographic operation failed",
    "claims": "Parsing claims failed",
}


@dataclass(frozen=True)
class Caller:
    """The role a request runs as, and the claims ``request.jwt.claims`` exposes to SQL."""

    role: str
    claims: dict[str, Any]

    @property
    def authenticated(self) -> bool:
        """As PostgREST counts it: any role but anon (decides 401 versus 403 on privilege errors)."""
        return self.role != "anon"


def caller_of(request: Request, secret: str) -> Caller:
    """The caller from ``Authorization: Bearer``, else from the ``apikey`` header, else anon.

    Supabase's API gateway lets the ``apikey`` stand in for a missing ``Authorization``; the anon key
    then makes the request anonymous and the service-role key makes it ``service_role``.
    """
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, token = header.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise _jwt_error("malformed", "Empty JWT is sent in Authorization header")
    else:
        token = request.headers.get("apikey", "").strip()
        if not token:
            return Caller("anon", {"role": "anon"})
    try:
        claims = _verified(token, secret)
    except jwt.TokenError as error:
        raise _jwt_error(error.reason) from None
    expires = claims.get("exp")
    if isinstance(expires, (int, float)) and expires <= time.time():
        raise _jwt_error("expired")
    return Caller(str(claims["role"]), claims)


@functools.lru_cache(maxsize=1024)
def _verified(token: str, secret: str) -> dict[str, Any]:
    """Verified claims, remembered: a client sends the same token with every request until it expires.

    Only successes are cached (a raised ``TokenError`` is not), and expiry is checked again on every use.
    Callers must not modify the returned dict.
    """
    return jwt.verify(token, secret)


def _jwt_error(reason: str, message: str | None = None) -> RestError:
    if reason == "expired":
        code, text = "PGRST303", "JWT expired"
    else:
        code, text = ("PGRST303" if reason == "claims" else "PGRST301"), message or _JWT_MESSAGES[reason]
    quoted = text.replace('"', "'")
    return RestError(
        401, code, text, headers={"WWW-Authenticate": f'Bearer error="invalid_token", error_description="{quoted}"'}
    )


def check_profile(request: Request, schema: str) -> None:
    """Only ``schema`` is exposed: any other ``Accept-Profile``/``Content-Profile`` is PGRST106."""
    for header in ("accept-profile", "content-profile"):
        wanted = request.headers.get(header)
        if wanted is not None and wanted.strip() != schema:
            raise RestError(
                406,
                "PGRST106",
                f"Invalid schema: {wanted.strip()}",
                hint=f"Only the following schemas are exposed: {schema}",
            )


def wants_object(request: Request) -> bool:
    """True for ``single()`` (one JSON object); PGRST107 for media types this gateway cannot produce."""
    accept = request.headers.get("accept", "").strip()
    if not accept:
        return False
    kinds = [part.split(";")[0].strip().lower() for part in accept.split(",")]
    if OBJECT_MEDIA_TYPE in kinds:
        return True
    if any(kind in ("*/*", "application/*", "application/json") for kind in kinds):
        return False
    raise RestError(406, "PGRST107", f"None of these media types are available: {accept}")


async def json_body(request: Request, limit: int, *, empty: Any = None) -> Any:
    """The parsed JSON body; ``empty`` when there is none (None: an empty body is an error)."""
    content_type = request.headers.get("content-type", "application/json").lower()
    try:
        raw = await read_body(request, limit)
    except BodyTooLarge as error:
        raise RestError(
            413, "PGRST413", "Payload Too Large", details=f"The request body exceeds the limit of {error.limit} bytes"
        ) from None
    if not raw.strip():
        if empty is None:
            raise bad_body("Empty or invalid json")
        return empty
    if "json" not in content_type:
        raise RestError(415, "PGRST107", f"Content-Type not acceptable: {content_type}")
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        raise bad_body("Empty or invalid json") from None
