"""Password policy and bcrypt hashing, compatible with ``extensions.crypt(p, gen_salt('bf'))``.

Hashes use the ``$2a$`` prefix and cost 10, as GoTrue and the seed do, so either side can check the
other's hashes. bcrypt takes tens of milliseconds by design, so it runs in a worker thread and the
event loop keeps serving other requests meanwhile.
"""

from __future__ import annotations

import asyncio

import bcrypt

from devstack.gateway.auth.errors import validation_failed, weak_password

MIN_LENGTH = 6  # supabase/config.toml: auth.minimum_password_length
MAX_BYTES = 72  # bcrypt ignores (and the library refuses) anything longer
ROUNDS = 10


def check_policy(password: object) -> str:
    """The password if it may be set, else the GoTrue error for it."""
    if not isinstance(password, str) or not password:
        raise validation_failed("Password is required", status=422)
    if len(password) < MIN_LENGTH:
        raise weak_password(f"Password should be at least {MIN_LENGTH} characters.")
    if len(password.encode()) > MAX_BYTES:
        raise validation_failed(f"Password cannot be longer than {MAX_BYTES} characters", status=422)
    return password


def _hash(password: str) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(ROUNDS, prefix=b"2a")).decode()


def _matches(password: str, hashed: str) -> bool:
    encoded = password.encode()
    if len(encoded) > MAX_BYTES:
        return False
    try:
        return bcrypt.checkpw(encoded, hashed.encode())
    except ValueError:  # not a bcrypt hash (a user without a password, or another scheme)
        return False


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hash, password)


async def password_matches(password: str, hashed: str | None) -> bool:
    if not hashed:
        return False
    return await asyncio.to_thread(_matches, password, hashed)
