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
select (jsonb_build_object(
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
) || jsonb_strip_nulls(jsonb_build_object(
  'invited_at', u.invited_at, 'banned_until', u.banned_until, 'deleted_at', u.deleted_at
)))::text
from auth.users u
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
    """A user as sign-in sees it.

    ``scannable`` is False when a column GoTrue reads into a plain string is NULL (a seed that inserted
    into ``auth.users`` without setting the token columns): GoTrue then fails to load the user, and so
    does this gateway, so such a seed is caught here rather than on a real project.
    """

    user_id: uuid.UUID
    encrypted_password: str | None
    banned: bool = False
    scannable: bool = True


@dataclass(frozen=True)
class Grant:
    """What a sign-in or refresh hands out: the user (GoTrue's JSON), its session and refresh token."""

    user: dict[str, Any]
    session_id: uuid.UUID
    refresh_token: str


async def user_json(conn: Conn, user_id: uuid.UUID) -> dict[str, Any] | None:
    text = await conn.fetchval(_USER_JSON + " where u.id = $1", user_id)
    return None if text is None else dict(json.loads(text))


async def list_users(conn: Conn, *, page: int, per_page: int, search: str | None) -> tuple[list[dict[str, Any]], int]:
    """One page of the users GoTrue lists (its instance and audience), newest first, and their total.

    ``search`` matches the e-mail (case-sensitively, as GoTrue's LIKE does) or ``full_name``.
    """
    where = (
        " where u.instance_id = $1 and u.aud = 'authenticated'"
        " and ($2::text is null or u.email like '%' || $2 || '%'"
        " or u.raw_user_meta_data ->> 'full_name' ilike '%' || $2 || '%')"
    )
    # The SQL is made of this module's constants only; the search text is a parameter.
    total = await conn.fetchval("select count(*) from auth.users u" + where, uuid.UUID(NIL_INSTANCE), search)  # noqa: S608
    rows = await conn.fetch(
        _USER_JSON + where + " order by u.created_at desc, u.id limit $3 offset $4",
        uuid.UUID(NIL_INSTANCE),
        search,
        per_page,
        (page - 1) * per_page,
    )
    return [dict(json.loads(row[0])) for row in rows], int(total)


async def email_taken(conn: Conn, email: str) -> bool:
    return bool(await conn.fetchval("select exists (select from auth.users where lower(email) = lower($1))", email))


# The columns GoTrue's user model reads into non-nullable strings (models.User).
_STRING_COLUMNS = (
    "confirmation_token",
    "recovery_token",
    "email_change_token_new",
    "email_change_token_current",
    "email_change",
    "phone_change",
    "phone_change_token",
    "reauthentication_token",
)
_SCANNABLE = " and ".join(f"{column} is not null" for column in _STRING_COLUMNS)
# Made of this module's constants only; the address is a parameter.
_CREDENTIALS_SQL = (
    "select id, encrypted_password, coalesce(banned_until > now(), false) as banned,"  # noqa: S608
    f" {_SCANNABLE} as scannable from auth.users"
    " where lower(email) = lower($1) and deleted_at is null and not is_sso_user"
)


async def credentials(conn: Conn, email: str) -> Credentials | None:
    row = await conn.fetchrow(_CREDENTIALS_SQL, email)
    if row is None:
        return None
    return Credentials(row["id"], row["encrypted_password"], bool(row["banned"]), bool(row["scannable"]))


async def password_hash(conn: Conn, user_id: uuid.UUID) -> str | None:
    value = await conn.fetchval("select encrypted_password from auth.users where id = $1", user_id)
    return None if value is None else str(value)


NIL_INSTANCE = "00000000-0000-0000-0000-000000000000"


async def insert_user(
    conn: Conn,
    *,
    user_id: uuid.UUID,
    email: str,
    hashed: str | None,
    user_metadata: dict[str, Any] | None,
    app_metadata: dict[str, Any],
    role: str = "authenticated",
    confirmed: bool = True,
) -> None:
    """A user and its email identity, as GoTrue writes them (the token columns empty, not NULL).

    Runs in the caller's transaction; ``user_metadata`` becomes ``raw_user_meta_data``, where the
    profile trigger finds ``display_name``.
    """
    try:
        await conn.execute(
            """
            insert into auth.users (instance_id, id, aud, role, email, encrypted_password, email_confirmed_at,
                                    confirmation_token, recovery_token, email_change_token_new, email_change,
                                    raw_app_meta_data, raw_user_meta_data, created_at, updated_at)
            values ($1, $2, 'authenticated', $3, $4, $5, case when $6 then now() end, '', '', '', '',
                    $7::jsonb, $8::jsonb, now(), now())
            """,
            uuid.UUID(NIL_INSTANCE),
            user_id,
            role,
            email,
            hashed,
            confirmed,
            json.dumps(app_metadata),
            json.dumps(user_metadata if user_metadata is not None else {}),
        )
    except asyncpg.UniqueViolationError:
        raise AuthError(422, "user_already_exists", "User already registered") from None
    identity = {"sub": str(user_id), "email": email, "email_verified": confirmed, "phone_verified": False}
    await conn.execute(
        "insert into auth.identities (provider_id, user_id, identity_data, provider, last_sign_in_at)"
        " values ($1, $2, $3::jsonb, 'email', now())",
        str(user_id),
        user_id,
        json.dumps(identity),
    )


async def create_user(conn: Conn, email: str, hashed: str, metadata: dict[str, Any]) -> Grant:
    """A confirmed user (autoconfirm) with its email identity, signed in. Runs in the caller's transaction."""
    user_id = uuid.uuid4()
    await insert_user(
        conn,
        user_id=user_id,
        email=email,
        hashed=hashed,
        user_metadata=metadata,
        app_metadata={"provider": "email", "providers": ["email"]},
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


async def refresh(conn: Conn, token: str, *, reuse_interval: int) -> Grant:
    """Rotate ``token`` in its session, GoTrue's way. Runs in a transaction.

    A live token is revoked and succeeded by a new one. A revoked token whose successor is the session's
    live token (a client that lost the answer to its refresh) gets that live token again. Another revoked
    token still works within ``reuse_interval`` seconds of its revocation (a new successor); after that it
    is treated as stolen: ``TokenReused``, and the caller revokes the whole session.
    """
    row = await conn.fetchrow(
        "select t.user_id, t.session_id, t.revoked,"
        " t.updated_at < now() - make_interval(secs => $2) as stale,"
        " coalesce(u.banned_until > now(), false) as banned"
        " from auth.refresh_tokens t join auth.users u on u.id = t.user_id"
        " where t.token = $1 for update of t",
        token,
        float(reuse_interval),
    )
    if row is None:
        raise AuthError(400, "refresh_token_not_found", "Invalid Refresh Token: Refresh Token Not Found")
    if row["banned"]:
        raise AuthError(400, "user_banned", "User is banned")
    issued = None
    if row["revoked"]:
        active = await conn.fetchrow(
            "select token, parent from auth.refresh_tokens where session_id = $1 and not revoked"
            " order by id desc limit 1",
            row["session_id"],
        )
        if active is not None and active["parent"] == token:
            issued = str(active["token"])
        elif row["stale"]:
            raise TokenReused(row["session_id"])
    if issued is None:
        await conn.execute(
            "update auth.refresh_tokens set revoked = true, updated_at = now() where token = $1 and not revoked", token
        )
        issued = await _new_refresh_token(conn, row["user_id"], row["session_id"], parent=token)
    await conn.execute("update auth.sessions set updated_at = now() where id = $1", row["session_id"])
    user = await user_json(conn, row["user_id"])
    if user is None:
        raise AuthError(400, "refresh_token_not_found", "Invalid Refresh Token: Refresh Token Not Found")
    return Grant(user, row["session_id"], issued)


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
