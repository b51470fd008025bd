"""GoTrue's admin API under ``/auth/v1/admin/users``, for a Bearer JWT with an admin role (``service_role``).

``GET`` lists users a page at a time (``page``, ``per_page``, ``filter``; ``Link`` and ``X-Total-Count``
headers), ``POST`` creates one (``password`` or a bcrypt ``password_hash``, ``email_confirm``,
``user_metadata``, ``app_metadata``, ``role``, ``id``, ``ban_duration``), ``GET``/``PUT``/``DELETE``
``/{id}`` read, update and delete one (``should_soft_delete``). Answers and errors are GoTrue's
(``internal/api/admin.go``), including its wording.
"""

from __future__ import annotations

import json
import re
import secrets
import uuid
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from devstack.gateway import jwt
from devstack.gateway.auth import store
from devstack.gateway.auth.errors import AuthError, json_response, validate_email
from devstack.gateway.auth.errors import validation_failed as invalid
from devstack.gateway.auth.passwords import check_policy, hash_password, is_bcrypt_hash
from devstack.gateway.context import GatewayContext

ADMIN_ROLES = frozenset({"service_role", "supabase_admin"})
DEFAULT_PER_PAGE = 50
_DURATION = re.compile(r"([0-9]*\.?[0-9]+)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def require_admin(request: Request, ctx: GatewayContext) -> None:
    """GoTrue's ``requireAdminCredentials``: a valid JWT whose role is an admin role."""
    scheme, _, token = request.headers.get("authorization", "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError(401, "no_authorization", "This endpoint requires a valid Bearer token")
    try:
        claims = jwt.verify(token.strip(), ctx.settings.jwt_secret)
    except jwt.TokenError as error:
        reason = "token has invalid claims: token is expired" if error.expired else str(error)
        raise AuthError(403, "bad_jwt", f"invalid JWT: unable to parse or verify signature, {reason}") from None
    if claims.get("role") not in ADMIN_ROLES:
        raise AuthError(403, "not_admin", "User not allowed")


def ban_seconds(value: str) -> float | None:
    """A Go duration (``24h``, ``1h30m``, ``90s``) in seconds; None for ``none`` (unban)."""
    if value == "none":
        return None
    text = value.strip()
    sign = -1.0 if text.startswith("-") else 1.0
    text = text.lstrip("+-")
    if text == "0":
        return 0.0
    position, total = 0, 0.0
    for match in _DURATION.finditer(text):
        if match.start() != position:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        position = match.end()
    if not text or position != len(text):
        raise invalid(f'invalid format for ban duration: time: invalid duration "{value}"')
    return sign * total


def _object(body: dict[str, Any], key: str) -> dict[str, Any] | None:
    value = body.get(key)
    if value is not None and not isinstance(value, dict):
        raise AuthError(400, "bad_json", f"Could not parse request body as JSON: {key} must be an object")
    return value


def _user_id(request: Request) -> uuid.UUID:
    try:
        return uuid.UUID(request.path_params["user_id"])
    except ValueError:
        raise AuthError(404, "validation_failed", "user_id must be an UUID") from None


async def _found(conn: store.Conn, user_id: uuid.UUID) -> dict[str, Any]:
    user = await store.user_json(conn, user_id)
    if user is None:
        raise AuthError(404, "user_not_found", "User not found")
    return user


async def list_users(request: Request, ctx: GatewayContext) -> Response:
    params = request.query_params
    try:
        page = int(params.get("page") or 1)
        per_page = int(params.get("per_page") or DEFAULT_PER_PAGE)
        if page < 1 or per_page < 0:
            raise ValueError
    except ValueError:
        raise invalid("Bad Pagination Parameters: page and per_page must be positive integers") from None
    async with ctx.admin_pool.acquire() as conn:
        users, total = await store.list_users(conn, page=page, per_page=per_page, search=params.get("filter") or None)
    pages = -(-total // per_page) if per_page else 0
    base = str(request.url.replace(query=""))

    def link(target: int, rel: str) -> str:
        # Go's url.Values.Encode: keys in sorted order.
        return f'<{base}?{urlencode(sorted({**dict(params), "page": str(target)}.items()))}>; rel="{rel}"'

    links = [link(page + 1, "next")] if pages > page else []
    links.append(link(pages, "last"))
    response = json_response({"users": users, "aud": "authenticated"})
    response.headers["Link"] = ", ".join(links)
    response.headers["X-Total-Count"] = str(total)
    return response


async def create_user(request: Request, ctx: GatewayContext, body: dict[str, Any]) -> Response:
    email_value = body.get("email")
    if not email_value and not body.get("phone"):
        raise invalid("Cannot create a user without either an email or phone")
    if body.get("phone"):
        raise invalid("Phone sign-ups are not supported by the devstack gateway", status=422)
    email = validate_email(email_value)
    password, password_hash = body.get("password"), body.get("password_hash")
    if password is not None and password_hash:
        raise invalid("Only a password or a password hash should be provided")
    if password_hash:
        if not isinstance(password_hash, str) or not is_bcrypt_hash(password_hash):
            # GoTrue checks the hash with bcrypt.Cost and answers a malformed one with a 500.
            raise AuthError(500, "unexpected_failure", "Error creating user")
        hashed = password_hash
    else:
        if not isinstance(password, str) or not password:
            password = secrets.token_urlsafe(48)
        elif len(password.encode()) > 72:
            raise invalid("bcrypt: password length exceeds 72 bytes")
        hashed = await hash_password(password)
    user_id = uuid.uuid4()
    if body.get("id"):
        try:
            user_id = uuid.UUID(str(body["id"]))
        except ValueError:
            raise invalid("ID must conform to the uuid v4 format") from None
        if user_id.int == 0:
            raise invalid("ID cannot be a nil uuid")
    ban = ban_seconds(str(body["ban_duration"])) if body.get("ban_duration") else None
    app_metadata: dict[str, Any] = {
        "provider": "email",
        "providers": ["email"],
        **(_object(body, "app_metadata") or {}),
    }
    async with ctx.admin_pool.acquire() as conn, conn.transaction():
        if await store.email_taken(conn, email):
            raise AuthError(422, "email_exists", "A user with this email address has already been registered")
        try:
            await store.insert_user(
                conn,
                user_id=user_id,
                email=email,
                hashed=hashed,
                user_metadata=_object(body, "user_metadata"),
                app_metadata=app_metadata,
                role=str(body.get("role") or "authenticated"),
                confirmed=bool(body.get("email_confirm")),
            )
        except AuthError as error:
            if error.code == "user_already_exists":
                raise AuthError(
                    422, "email_exists", "A user with this email address has already been registered"
                ) from None
            raise
        if ban is not None:
            await conn.execute(
                "update auth.users set banned_until = now() + make_interval(secs => $2) where id = $1", user_id, ban
            )
        user = await _found(conn, user_id)
    return json_response(user)


async def get_user(request: Request, ctx: GatewayContext) -> Response:
    user_id = _user_id(request)
    async with ctx.admin_pool.acquire() as conn:
        return json_response(await _found(conn, user_id))


async def update_user(request: Request, ctx: GatewayContext, body: dict[str, Any]) -> Response:
    user_id = _user_id(request)
    email = validate_email(body["email"]) if body.get("email") else None
    ban = None
    banning = bool(body.get("ban_duration"))
    if banning:
        ban = ban_seconds(str(body["ban_duration"]))
    hashed = None
    if body.get("password") is not None:
        hashed = await hash_password(check_policy(body["password"]))
    user_metadata, app_metadata = _object(body, "user_metadata"), _object(body, "app_metadata")
    async with ctx.admin_pool.acquire() as conn, conn.transaction():
        await _found(conn, user_id)
        if body.get("role"):
            await conn.execute(
                "update auth.users set role = $2, updated_at = now() where id = $1", user_id, body["role"]
            )
        if body.get("email_confirm"):
            await conn.execute(
                "update auth.users set email_confirmed_at = coalesce(email_confirmed_at, now()) where id = $1", user_id
            )
        if hashed is not None:
            await store.update_user(conn, user_id, metadata=None, hashed=hashed)
        if email is not None:
            if await conn.fetchval(
                "select exists (select from auth.users where lower(email) = lower($1) and id <> $2)", email, user_id
            ):
                raise AuthError(422, "email_exists", "A user with this email address has already been registered")
            await conn.execute("update auth.users set email = $2, updated_at = now() where id = $1", user_id, email)
            await conn.execute(
                "update auth.identities set identity_data = identity_data || jsonb_build_object('email', $2::text),"
                " updated_at = now() where user_id = $1 and provider = 'email'",
                user_id,
                email,
            )
        if app_metadata is not None:
            await _merge(conn, user_id, "raw_app_meta_data", app_metadata)
        if user_metadata is not None:
            await store.update_user(conn, user_id, metadata=user_metadata, hashed=None)
        if banning:
            await conn.execute(
                "update auth.users set banned_until = case when $2::float8 is null then null"
                " else now() + make_interval(secs => $2) end, updated_at = now() where id = $1",
                user_id,
                ban,
            )
        user = await _found(conn, user_id)
    return json_response(user)


async def _merge(conn: store.Conn, user_id: uuid.UUID, column: str, values: dict[str, Any]) -> None:
    """GoTrue's metadata update: keys set, a null value removes its key. ``column`` is a constant here."""
    kept = {key: value for key, value in values.items() if value is not None}
    removed = [key for key, value in values.items() if value is None]
    await conn.execute(
        f"update auth.users set {column} = (coalesce({column}, '{{}}') || $2::jsonb) - $3::text[],"  # noqa: S608
        " updated_at = now() where id = $1",
        user_id,
        json.dumps(kept),
        removed,
    )


async def delete_user(request: Request, ctx: GatewayContext, body: dict[str, Any]) -> Response:
    user_id = _user_id(request)
    async with ctx.admin_pool.acquire() as conn, conn.transaction():
        await _found(conn, user_id)
        if body.get("should_soft_delete"):
            # GoTrue keeps the row: no way to sign in (no e-mail, password, identities or sessions).
            await conn.execute(
                "update auth.users set deleted_at = coalesce(deleted_at, now()), email = null,"
                " encrypted_password = null, updated_at = now() where id = $1",
                user_id,
            )
            await conn.execute("delete from auth.identities where user_id = $1", user_id)
            await conn.execute("delete from auth.sessions where user_id = $1", user_id)
        else:
            await conn.execute("delete from auth.users where id = $1", user_id)
    return json_response({})
