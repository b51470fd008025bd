"""Password policy and bcrypt hashing, compatible with ``extensions.crypt(p, gen_salt('bf'))``.

Hashes use the ``$2a$`` prefix and cost 10, as GoTrue and the seed do, so either side can check the
other's hashes; ``$2b$`` and ``$2y$`` hashes (an admin's ``password_hash``) check too. bcrypt takes tens of
milliseconds by design, so it runs in a worker thread and the event loop keeps serving other requests
meanwhile.

A check against no hash at all (an unknown e-mail, a user without a password) still runs bcrypt, on a
dummy hash of the same cost: answering an unknown e-mail as fast as a wrong password would tell an
attacker which addresses have accounts.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import Callable

import bcrypt

from devstack.gateway.auth.errors import validation_failed, weak_password

MIN_LENGTH = 6  # supabase/config.toml: auth.minimum_password_length
MAX_BYTES = 72  # bcrypt ignores (and the library refuses) anything longer
ROUNDS = 10
# What GoTrue accepts as a bcrypt ``password_hash`` (x/crypto/bcrypt's format): version, cost, salt+hash.
_BCRYPT = re.compile(r"^\$2[aby]?\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}$")
_dummy: list[str] = []


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


def is_bcrypt_hash(value: str) -> bool:
    return bool(_BCRYPT.match(value))


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hash, password)


def dummy_hash() -> str:
    """A hash of a random password at the usual cost, made once per process (on first use)."""
    if not _dummy:
        _dummy.append(_hash(secrets.token_urlsafe(16)))
    return _dummy[0]


async def password_matches(password: str, hashed: str | None, *, check: Callable[[str, str], bool] = _matches) -> bool:
    """Whether ``password`` fits ``hashed``; without a hash the same bcrypt work is done and False returned."""
    if not hashed:
        await asyncio.to_thread(check, password, await asyncio.to_thread(dummy_hash))
        return False
    return await asyncio.to_thread(check, password, hashed)
