"""Who is asking and how: the request's role and claims, profile, media type and body, PostgREST-style.

PostgREST reads the role from a verified JWT and lets PostgreSQL decide what that role may do; so does
this module. Nothing here grants or refuses access to data: it only establishes the role.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request

from devstack.gateway import jwt
from devstack.gateway.http import BodyTooLarge, read_body
from devstack.gateway.rest.errors import RestError, bad_body
from devstack.gateway.rest.sql import Media, Payload

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


# What each response media type is called in Content-Type (PostgREST's ``toMime``).
CONTENT_TYPES = {
    "json": "application/json",
    "single": OBJECT_MEDIA_TYPE,
    "single-stripped": OBJECT_MEDIA_TYPE + ";nulls=stripped",
    "stripped": "application/vnd.pgrst.array+json;nulls=stripped",
    "csv": "text/csv",
}


def _media_type(text: str) -> tuple[str, dict[str, str]]:
    kind, *params = (part.strip() for part in text.split(";"))
    parsed = {}
    for param in params:
        key, _, value = param.partition("=")
        parsed[key.strip().lower()] = value.strip().strip('"')
    return kind.lower(), parsed


def negotiate(request: Request) -> Media:
    """The response media type (a key of ``CONTENT_TYPES``) for the ``Accept`` header, PostgREST's way.

    Types are tried by quality, then in order; a list of only unknown types is PGRST107 (406).
    """
    accept = request.headers.get("accept", "").strip()
    if not accept:
        return "json"
    offered = []
    for index, part in enumerate(accept.split(",")):
        if not part.strip():
            continue
        kind, params = _media_type(part)
        try:
            quality = float(params.get("q", "1"))
        except ValueError:
            quality = 1.0
        offered.append((-quality, index, kind, params))
    for _, _, kind, params in sorted(offered):
        stripped = params.get("nulls") == "stripped"
        if kind in ("application/json", "*/*"):
            return "json"
        if kind in (OBJECT_MEDIA_TYPE, "application/vnd.pgrst.object"):
            return "single-stripped" if stripped else "single"
        if kind in ("application/vnd.pgrst.array+json", "application/vnd.pgrst.array"):
            return "stripped" if stripped else "json"
        if kind == "text/csv":
            return "csv"
    raise RestError(406, "PGRST107", f"None of these media types are available: {accept}")


async def read_raw_body(request: Request, limit: int) -> bytes:
    try:
        return await read_body(request, limit)
    except BodyTooLarge as error:
        raise RestError(
            413, "PGRST413", "Payload Too Large", details=f"The request body exceeds the limit of {error.limit} bytes"
        ) from None


async def read_payload(request: Request, limit: int, *, columns: tuple[str, ...] | None, rpc: bool = False) -> Payload:
    """A write's (or call's) body as PostgREST reads it: JSON, CSV or form fields.

    With ``columns`` the JSON is passed on unparsed (PostgreSQL checks it) and the keys are those columns.
    Otherwise it is parsed for its keys: one object, or an array of objects that all have the same keys
    (PGRST102 otherwise); any other JSON value is an empty array. The text goes to PostgreSQL as sent, so
    numbers keep every digit.
    """
    raw = await read_raw_body(request, limit)
    kind, _ = _media_type(request.headers.get("content-type", "application/json") or "application/json")
    if kind == "text/csv":
        return _csv_payload(raw, columns)
    if kind == "application/x-www-form-urlencoded":
        fields = dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
        return Payload(json.dumps(fields), columns if columns is not None else tuple(fields), True)
    if kind != "application/json":
        raise bad_body(f"Content-Type not acceptable: {kind}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise bad_body("Empty or invalid json") from None
    if columns is not None:
        return Payload(text, columns, text.lstrip(" \t\r\n").startswith("{"))
    if rpc and not text.strip():
        return Payload("{}", (), True)
    try:
        parsed = json.loads(text)
    except (ValueError, RecursionError):
        # A body nested deeper than Python's parser goes is refused the same way as invalid JSON.
        raise bad_body("Empty or invalid json") from None
    if isinstance(parsed, dict):
        return Payload(text, tuple(parsed), True)
    if isinstance(parsed, list) and parsed:
        first = parsed[0]
        if not isinstance(first, dict) or any(
            not isinstance(row, dict) or row.keys() != first.keys() for row in parsed
        ):
            raise bad_body("All object keys must match")
        return Payload(text, tuple(first), False)
    return Payload("[]", (), False)


def _csv_payload(raw: bytes, columns: tuple[str, ...] | None) -> Payload:
    """PostgREST's CSV body: a header line of column names, then rows; ``NULL`` is null."""
    try:
        text = raw.decode("utf-8")
        reader = csv.reader(io.StringIO(text))
        header = next(reader, [])
        rows = []
        for line in reader:
            if len(line) != len(header):
                raise bad_body("All lines must have same number of fields")
            rows.append({key: (None if value == "NULL" else value) for key, value in zip(header, line, strict=True)})
    except (UnicodeDecodeError, csv.Error) as error:
        raise bad_body(f"Invalid CSV: {error}") from None
    return Payload(json.dumps(rows), columns if columns is not None else tuple(header), False)
