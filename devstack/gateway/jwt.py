"""HS256 JSON Web Tokens, as GoTrue issues them and PostgREST and Realtime check them."""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt as pyjwt


class TokenError(Exception):
    """A token that cannot be used. ``expired`` tells an old token from a forged or malformed one.

    ``reason`` says which check failed, so each service can answer in its own words: ``malformed``
    (not a JWT), ``algorithm`` (not HS256, including ``none``), ``signature`` (wrong key), ``expired``,
    or ``claims`` (a required claim is missing or wrong).
    """

    def __init__(self, message: str, *, expired: bool = False, reason: str = "claims") -> None:
        super().__init__(message)
        self.expired = expired
        self.reason = "expired" if expired else reason


def verify(token: str, secret: str) -> dict[str, Any]:
    """The claims of a valid token, else ``TokenError``.

    Only HS256 with our secret is accepted: ``alg: none`` and other algorithms are refused by name, not
    by accident. ``exp`` is enforced when present (the Supabase anon key has one far in the future).
    """
    try:
        header = pyjwt.get_unverified_header(token)
    except pyjwt.PyJWTError:
        raise TokenError("malformed token", reason="malformed") from None
    if header.get("alg") != "HS256":
        raise TokenError(f"unsupported token algorithm {header.get('alg')!r}", reason="algorithm")
    try:
        claims: dict[str, Any] = pyjwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            options={"verify_aud": False, "require": ["role"]},
        )
    except pyjwt.ExpiredSignatureError:
        raise TokenError("JWT expired", expired=True) from None
    except pyjwt.InvalidSignatureError:
        raise TokenError("invalid token: signature verification failed", reason="signature") from None
    except pyjwt.DecodeError as error:
        raise TokenError(f"malformed token: {error}", reason="malformed") from None
    except pyjwt.PyJWTError as error:
        raise TokenError(f"invalid token: {error}") from None
    if not isinstance(claims.get("role"), str):
        raise TokenError("token has no role")
    return claims


def issue_access_token(
    secret: str,
    *,
    user_id: uuid.UUID,
    email: str | None,
    session_id: uuid.UUID,
    ttl: int,
    role: str = "authenticated",
    user_metadata: dict[str, Any] | None = None,
    now: float | None = None,
) -> tuple[str, int]:
    """A user's access token and its expiry (epoch seconds), with GoTrue's claims."""
    issued = int(now if now is not None else time.time())
    expires = issued + ttl
    claims = {
        "iss": "devstack",
        "sub": str(user_id),
        "aud": "authenticated",
        "role": role,
        "email": email or "",
        "phone": "",
        "session_id": str(session_id),
        "iat": issued,
        "exp": expires,
        "aal": "aal1",
        "amr": [{"method": "password", "timestamp": issued}],
        "app_metadata": {"provider": "email", "providers": ["email"]},
        "user_metadata": user_metadata or {},
        "is_anonymous": False,
    }
    return pyjwt.encode(claims, secret, algorithm="HS256"), expires
