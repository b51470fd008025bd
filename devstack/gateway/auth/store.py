"""Users, sessions and rotating refresh tokens in GoTrue's ``auth`` tables.

A session is one sign-in; its refresh tokens form a chain in which only the newest is live. Using a
token revokes it and issues its successor; presenting a revoked one again is treated as theft (GoTrue's
reuse detection): every token of that session is revoked.
"""

from __future__ import annotations

import json
import secrets
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import asyncpg

from devstack.gateway.auth.errors import AuthError

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    Conn = asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]

_USER_JSON = """
select jsonb_build_object(
  'id', u.id,
  'aud', coalesce(u.aud, 'authenticated'),
  'role', coalesce(u.role, 'authenticated'),
  'email', coalesce(u.email, ''),
  'email_confirmed_at', u.email_confirmed_at,
  'phone', '',
  'confirmed_at', u.email_confirmed_at,
  'last_sign_in_at', u.last_sign_in_at,
  'app_metadata', coalesce(u.raw_app_meta_data, '{}'),
  'user_metadata', coalesce(u.raw_user_meta_data, '{}'),
  'identities', coalesce((
    select jsonb_agg(jsonb_build_object(
      'identity_id', i.id, 'id', i.provider_id, 'user_id', i.user_id, 'identity_data', i.identity_data,
      'provider', i.provider, 'last_sign_in_at', i.last_sign_in_at, 'created_at', i.created_at,
      'updated_at', i.updated_at, 'email', i.email) order by i.created_at)
      from auth.identities i where i.user_id = u.id), '[]'),
  'created_at', coalesce(u.created_at, now()),
  'updated_at', coalesce(u.updated_at, u.created_at, now()),
  'is_anonymous', u.is_anonymous
)::text
from auth.users u where u.id = $1
"""


class TokenReused(AuthError):
    """A revoked refresh token came back: whoever holds the session's tokens, it is not only its owner.

    Raised out of the refresh transaction; the caller then revokes the session's tokens and answers it.
    """

    def __init__(self, session_id: uuid.UUID) -> None:
        super().__init__(400, "refresh_token_already_used", "Invalid Refresh Token: Already Used")
        self.session_id = session_id


@dataclass(frozen=True)
class Credentials:
    user_id: uuid.UUID
    encrypted_password: str | None


@dataclass(frozen=True)
class Grant:
    """What a sign-in or refresh hands out: the user (GoTrue's JSON), its session and refresh token."""

    user: dict[str, Any]
    session_id: uuid.UUID
    refresh_token: str


async def user_json(conn: Conn, user_id: uuid.UUID) -> dict[str, Any] | None:
    text = await conn.fetchval(_USER_JSON, user_id)
    return None if text is None else dict(json.loads(text))


async def email_taken(conn: Conn, email: str) -> bool:
    return bool(await conn.fetchval("select exists (select from auth.users where lower(email) = lower($1))", email))


async def credentials(conn: Conn, email: str) -> Credentials | None:
    row = await conn.fetchrow(
        "select id, encrypted_password from auth.users where lower(email) = lower($1) and deleted_at is null",
        email,
    )
    return None if row is None else Credentials(row["id"], row["encrypted_password"])


async def password_hash(conn: Conn, user_id: uuid.UUID) -> str | None:
    value = await conn.fetchval("select encrypted_password from auth.users where id = $1", user_id)
    return None if value is None else str(value)


async def create_user(conn: Conn, email: str, hashed: str, metadata: dict[str, Any]) -> Grant:
    """A confirmed user (autoconfirm) with its email identity, signed in. Runs in the caller's transaction.

    ``metadata`` becomes ``raw_user_meta_data``, where the profile trigger finds ``display_name``.
    """
    user_id = uuid.uuid4()
    try:
        await conn.execute(
            """
            insert into auth.users (instance_id, id, aud, role, email, encrypted_password, email_confirmed_at,
                                    raw_app_meta_data, raw_user_meta_data, created_at, updated_at)
            values ('00000000-0000-0000-0000-000000000000', $1, 'authenticated', 'authenticated', $2, $3, now(),
                    '{"provider": "email", "providers": ["email"]}', $4::jsonb, now(), now())
            """,
            user_id,
            email,
            hashed,
            json.dumps(metadata),
        )
    except asyncpg.UniqueViolationError:
        raise AuthError(422, "user_already_exists", "User already registered") from None
    identity = {"sub": str(user_id), "email": email, "email_verified": True, "phone_verified": False}
    await conn.execute(
        "insert into auth.identities (provider_id, user_id, identity_data, provider, last_sign_in_at)"
        " values ($1, $2, $3::jsonb, 'email', now())",
        str(user_id),
        user_id,
        json.dumps(identity),
    )
    return await sign_in(conn, user_id)


async def sign_in(conn: Conn, user_id: uuid.UUID) -> Grant:
    """A new session with its first refresh token. Runs in the caller's transaction."""
    session_id = await conn.fetchval("insert into auth.sessions (user_id) values ($1) returning id", user_id)
    token = await _new_refresh_token(conn, user_id, session_id, parent=None)
    await conn.execute("update auth.users set last_sign_in_at = now() where id = $1", user_id)
    user = await user_json(conn, user_id)
    assert user is not None  # inserted or found under the same transaction
    return Grant(user, session_id, token)


async def refresh(conn: Conn, token: str) -> Grant:
    """Rotate ``token``: revoke it and issue its successor in the same session. Runs in a transaction."""
    row = await conn.fetchrow(
        "select user_id, session_id, revoked from auth.refresh_tokens where token = $1 for update", token
    )
    if row is None:
        raise AuthError(400, "refresh_token_not_found", "Invalid Refresh Token: Refresh Token Not Found")
    if row["revoked"]:
        raise TokenReused(row["session_id"])
    await conn.execute("update auth.refresh_tokens set revoked = true, updated_at = now() where token = $1", token)
    successor = await _new_refresh_token(conn, row["user_id"], row["session_id"], parent=token)
    await conn.execute("update auth.sessions set updated_at = now() where id = $1", row["session_id"])
    user = await user_json(conn, row["user_id"])
    if user is None:
        raise AuthError(400, "refresh_token_not_found", "Invalid Refresh Token: Refresh Token Not Found")
    return Grant(user, row["session_id"], successor)


async def revoke_session_tokens(conn: Conn, session_id: uuid.UUID) -> None:
    await conn.execute(
        "update auth.refresh_tokens set revoked = true, updated_at = now() where session_id = $1 and not revoked",
        session_id,
    )


async def _new_refresh_token(conn: Conn, user_id: uuid.UUID, session_id: uuid.UUID, *, parent: str | None) -> str:
    token = secrets.token_urlsafe(24)
    await conn.execute(
        "insert into auth.refresh_tokens (token, user_id, session_id, parent) values ($1, $2, $3, $4)",
        token,
        user_id,
        session_id,
        parent,
    )
    return token


async def session_exists(conn: Conn, session_id: uuid.UUID) -> bool:
    return bool(await conn.fetchval("select exists (select from auth.sessions where id = $1)", session_id))


async def end_sessions(conn: Conn, user_id: uuid.UUID, session_id: uuid.UUID | None, scope: str) -> None:
    """Log out: ``local`` ends this session, ``others`` every other one, ``global`` all of the user's.

    Deleting a session deletes its refresh tokens (foreign key cascade), so none of them works again.
    """
    if scope == "local":
        await conn.execute("delete from auth.sessions where id = $1 and user_id = $2", session_id, user_id)
    elif scope == "others":
        await conn.execute(
            "delete from auth.sessions where user_id = $1 and id is distinct from $2", user_id, session_id
        )
    else:
        await conn.execute("delete from auth.sessions where user_id = $1", user_id)


async def update_user(conn: Conn, user_id: uuid.UUID, *, metadata: dict[str, Any] | None, hashed: str | None) -> None:
    """Merge ``metadata`` into the user's (a null value removes a key, as in GoTrue) and set a new hash."""
    if metadata is not None:
        removed = [key for key, value in metadata.items() if value is None]
        kept = {key: value for key, value in metadata.items() if value is not None}
        await conn.execute(
            "update auth.users set raw_user_meta_data = (coalesce(raw_user_meta_data, '{}') || $2::jsonb) - $3::text[],"
            " updated_at = now() where id = $1",
            user_id,
            json.dumps(kept),
            removed,
        )
    if hashed is not None:
        await conn.execute(
            "update auth.users set encrypted_password = $2, updated_at = now() where id = $1", user_id, hashed
        )
