"""The ``/auth/v1`` endpoints: GoTrue-compatible sign-up, sign-in, refresh, user, logout and admin.

Sign-up confirms at once (``enable_confirmations = false`` in supabase/config.toml) and returns a
session. Access tokens are HS256 JWTs lasting ``settings.access_token_ttl`` seconds; refresh tokens
rotate (see ``store``). Requests that act as a user are authenticated by their Bearer JWT and its
session, as GoTrue does; the refresh grant ignores ``Authorization`` (it carries an expired token).
Sign-ins, refreshes, sign-ups and user updates are rate limited per client address (``limits``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from devstack.gateway import jwt
from devstack.gateway.auth import admin, store
from devstack.gateway.auth.errors import (
    API_VERSION_HEADER,
    AuthError,
    invalid_credentials,
    json_response,
    validate_email,
)
from devstack.gateway.auth.errors import validation_failed as invalid
from devstack.gateway.auth.limits import Limiter, RateLimits
from devstack.gateway.auth.passwords import check_policy, dummy_hash, hash_password, password_matches
from devstack.gateway.context import GatewayContext, context_of
from devstack.gateway.http import BodyTooLarge, read_body

log = logging.getLogger(__name__)

Handler = Callable[[Request, GatewayContext], Awaitable[Response]]
_limits: dict[int, RateLimits] = {}


def routes() -> list[BaseRoute]:
    return [
        Route("/health", _endpoint(_health), methods=["GET"]),
        Route("/settings", _endpoint(_settings), methods=["GET"]),
        Route("/signup", _endpoint(_signup), methods=["POST"]),
        Route("/token", _endpoint(_token), methods=["POST"]),
        Route("/user", _endpoint(_user), methods=["GET", "PUT"]),
        Route("/logout", _endpoint(_logout), methods=["POST"]),
        Route("/admin/users", _endpoint(_admin_users), methods=["GET", "POST"]),
        Route("/admin/users/{user_id}", _endpoint(_admin_user), methods=["GET", "PUT", "DELETE"]),
    ]


async def startup(ctx: GatewayContext) -> None:
    _limits[id(ctx)] = RateLimits(ctx.settings.rate_limits)
    # The dummy hash that unknown e-mails are checked against, made now rather than on the first sign-in.
    await asyncio.to_thread(dummy_hash)


async def shutdown(ctx: GatewayContext) -> None:
    _limits.pop(id(ctx), None)


def _limit(request: Request, ctx: GatewayContext, pick: Callable[[RateLimits], Limiter]) -> None:
    """GoTrue's per-address limit; the address is the client's, as devstack has no proxy in front."""
    address = request.client.host if request.client else "unknown"
    RateLimits.check(pick(_limits[id(ctx)]), address)


def _endpoint(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request, context_of(request))
        except AuthError as error:
            return error.response()
        except Exception:
            # Answer bugs with a plain 500: a 502/503 would make the client's auto-refresh retry.
            log.exception("unexpected error serving %s %s", request.method, request.url.path)
            return AuthError(500, "unexpected_failure", "Unexpected failure in the devstack gateway").response()

    return endpoint


async def _body(request: Request, ctx: GatewayContext) -> dict[str, Any]:
    try:
        raw = await read_body(request, ctx.settings.max_body_bytes)
    except BodyTooLarge as error:
        raise AuthError(413, "request_too_large", str(error)) from None
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError) as error:
        raise AuthError(400, "bad_json", f"Could not parse request body as JSON: {error}") from None
    if not isinstance(body, dict):
        raise AuthError(400, "bad_json", "Could not parse request body as JSON: expected an object")
    return body


_email = validate_email


def _session(ctx: GatewayContext, grant: store.Grant) -> dict[str, Any]:
    """GoTrue's Session JSON with a fresh access token for ``grant``."""
    user = grant.user
    ttl = ctx.settings.access_token_ttl
    token, expires_at = jwt.issue_access_token(
        ctx.settings.jwt_secret,
        user_id=uuid.UUID(user["id"]),
        email=user.get("email"),
        session_id=grant.session_id,
        ttl=ttl,
        user_metadata=user.get("user_metadata") or {},
    )
    return {
        "access_token": token,
        "token_type": "bearer",
        "expires_in": ttl,
        "expires_at": expires_at,
        "refresh_token": grant.refresh_token,
        "user": user,
    }


async def _health(request: Request, ctx: GatewayContext) -> Response:
    return json_response({"version": "devstack", "name": "GoTrue", "description": "devstack's GoTrue-compatible API"})


async def _settings(request: Request, ctx: GatewayContext) -> Response:
    return json_response(
        {
            "external": {"email": True, "phone": False, "anonymous_users": False},
            "disable_signup": False,
            "mailer_autoconfirm": True,
            "phone_autoconfirm": False,
            "sms_provider": "",
            "saml_enabled": False,
        }
    )


async def _signup(request: Request, ctx: GatewayContext) -> Response:
    body = await _body(request, ctx)
    # GoTrue limits sign-up attempts, valid or not, once the body is read.
    _limit(request, ctx, lambda limits: limits.signup)
    email = _email(body.get("email"))
    password = check_policy(body.get("password"))
    metadata = body.get("data") or {}
    if not isinstance(metadata, dict):
        raise invalid("data must be a JSON object")
    async with ctx.admin_pool.acquire() as conn:
        # Checked before hashing so a duplicate costs no bcrypt round; the unique index catches races.
        if await store.email_taken(conn, email):
            raise AuthError(422, "user_already_exists", "User already registered")
    hashed = await hash_password(password)
    async with ctx.admin_pool.acquire() as conn, conn.transaction():
        grant = await store.create_user(conn, email, hashed, metadata)
    return json_response(_session(ctx, grant))


async def _token(request: Request, ctx: GatewayContext) -> Response:
    grant_type = request.query_params.get("grant_type")
    if grant_type not in ("password", "refresh_token"):
        raise AuthError(400, "invalid_credentials", "unsupported_grant_type")
    # One bucket for both grants, as GoTrue's /token limiter (token_refresh in config.toml).
    _limit(request, ctx, lambda limits: limits.token)
    body = await _body(request, ctx)
    if grant_type == "password":
        grant = await _password_grant(ctx, body)
    elif grant_type == "refresh_token":
        token = body.get("refresh_token")
        if not isinstance(token, str) or not token:
            raise invalid("Refresh Token is required")
        async with ctx.admin_pool.acquire() as conn:
            try:
                async with conn.transaction():
                    grant = await store.refresh(conn, token, reuse_interval=ctx.settings.refresh_token_reuse_interval)
            except store.TokenReused as reuse:
                # Committed on its own: the refresh transaction was rolled back by the error.
                await store.revoke_session_tokens(conn, reuse.session_id)
                raise
    return json_response(_session(ctx, grant))


async def _password_grant(ctx: GatewayContext, body: dict[str, Any]) -> store.Grant:
    email, password = body.get("email"), body.get("password")
    if not isinstance(email, str) or not email or not isinstance(password, str) or not password:
        raise invalid("Sign in requires an email and a password")
    async with ctx.admin_pool.acquire() as conn:
        found = await store.credentials(conn, email.strip())
    if found is not None and not found.scannable:
        # GoTrue cannot load a user whose token columns are NULL (a seed that left them out).
        raise AuthError(500, "unexpected_failure", "Database error querying schema")
    # An unknown address costs the same bcrypt check as a wrong password (a check against a dummy hash).
    if not await password_matches(password, found.encrypted_password if found else None) or found is None:
        raise invalid_credentials()
    if found.banned:
        raise AuthError(400, "user_banned", "User is banned")
    async with ctx.admin_pool.acquire() as conn, conn.transaction():
        return await store.sign_in(conn, found.user_id)


@dataclass(frozen=True)
class _Caller:
    user_id: uuid.UUID
    session_id: uuid.UUID | None


async def _authenticate(request: Request, ctx: GatewayContext) -> _Caller:
    """The signed-in user behind the Bearer token, refused the way GoTrue refuses it."""
    scheme, _, token = request.headers.get("authorization", "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError(401, "no_authorization", "This endpoint requires a Bearer token")
    try:
        claims = jwt.verify(token.strip(), ctx.settings.jwt_secret)
    except jwt.TokenError as error:
        reason = "token has invalid claims: token is expired" if error.expired else str(error)
        raise AuthError(403, "bad_jwt", f"invalid JWT: unable to parse or verify signature, {reason}") from None
    subject = claims.get("sub")
    if not subject:
        raise AuthError(403, "bad_jwt", "invalid claim: missing sub claim")
    try:
        user_id = uuid.UUID(str(subject))
        session_id = uuid.UUID(str(claims["session_id"])) if claims.get("session_id") else None
    except ValueError:
        raise AuthError(400, "bad_jwt", "invalid claim: sub and session_id claims must be UUIDs") from None
    async with ctx.admin_pool.acquire() as conn:
        if await store.user_json(conn, user_id) is None:
            raise AuthError(403, "user_not_found", "User from sub claim in JWT does not exist")
        if session_id is not None and not await store.session_exists(conn, session_id):
            raise AuthError(403, "session_not_found", "Session from session_id claim in JWT does not exist")
    return _Caller(user_id, session_id)


async def _user(request: Request, ctx: GatewayContext) -> Response:
    caller = await _authenticate(request, ctx)
    if request.method == "PUT":
        await _update_user(request, ctx, caller)
    async with ctx.admin_pool.acquire() as conn:
        user = await store.user_json(conn, caller.user_id)
    if user is None:
        raise AuthError(403, "user_not_found", "User from sub claim in JWT does not exist")
    return json_response(user)


async def _update_user(request: Request, ctx: GatewayContext, caller: _Caller) -> None:
    _limit(request, ctx, lambda limits: limits.user)
    body = await _body(request, ctx)
    metadata = body.get("data")
    if metadata is not None and not isinstance(metadata, dict):
        raise invalid("data must be a JSON object")
    email = body.get("email")
    if email is not None:
        async with ctx.admin_pool.acquire() as conn:
            current = await store.user_json(conn, caller.user_id)
        if current is None or _email(email) != current.get("email"):
            raise invalid("Changing the email address is not supported by the devstack gateway", status=422)
    hashed = None
    if body.get("password") is not None:
        password = check_policy(body["password"])
        async with ctx.admin_pool.acquire() as conn:
            old = await store.password_hash(conn, caller.user_id)
        if await password_matches(password, old):
            raise AuthError(422, "same_password", "New password should be different from the old password.")
        hashed = await hash_password(password)
    async with ctx.admin_pool.acquire() as conn, conn.transaction():
        await store.update_user(conn, caller.user_id, metadata=metadata, hashed=hashed)


async def _logout(request: Request, ctx: GatewayContext) -> Response:
    scope = request.query_params.get("scope", "global")
    if scope not in ("global", "local", "others"):
        raise invalid(f"Unsupported logout scope {scope!r}")
    caller = await _authenticate(request, ctx)
    async with ctx.admin_pool.acquire() as conn:
        await store.end_sessions(conn, caller.user_id, caller.session_id, scope)
    return Response(status_code=204, headers=API_VERSION_HEADER)


async def _admin_users(request: Request, ctx: GatewayContext) -> Response:
    admin.require_admin(request, ctx)
    if request.method == "GET":
        return await admin.list_users(request, ctx)
    return await admin.create_user(request, ctx, await _body(request, ctx))


async def _admin_user(request: Request, ctx: GatewayContext) -> Response:
    admin.require_admin(request, ctx)
    if request.method == "GET":
        return await admin.get_user(request, ctx)
    body = await _body(request, ctx)
    if request.method == "PUT":
        return await admin.update_user(request, ctx, body)
    return await admin.delete_user(request, ctx, body)
