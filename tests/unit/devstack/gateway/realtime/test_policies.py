"""The pure parts of Realtime Authorization: rights, and refusals in Realtime's words."""

from __future__ import annotations

import time

import jwt as pyjwt

from devstack.gateway import jwt
from devstack.gateway.realtime.policies import Policies, read_refusal, read_revoked, token_refusal


def test_a_join_needs_one_read_right() -> None:
    assert not Policies().may_join
    assert not Policies(broadcast_read=False, presence_read=False).may_join
    assert Policies(broadcast_read=True, presence_read=False).may_join
    assert Policies(broadcast_read=False, presence_read=True).may_join


def test_a_right_is_revoked_only_when_it_was_held_and_is_now_refused() -> None:
    both = Policies(broadcast_read=True, presence_read=True)
    assert both.read_revoked_by(Policies(broadcast_read=True, presence_read=False))
    assert not both.read_revoked_by(Policies(broadcast_read=True, presence_read=None))  # not checked again
    assert not Policies(broadcast_read=True).read_revoked_by(Policies(broadcast_read=True, presence_read=False))


def test_merging_keeps_what_was_not_checked() -> None:
    rights = Policies(broadcast_read=True, presence_read=False)
    merged = rights.merged(broadcast_write=False, presence_write=None, presence_read=None)
    assert merged == Policies(broadcast_read=True, presence_read=False, broadcast_write=False)


def test_refusals_in_realtimes_words() -> None:
    assert read_refusal("chat:1") == "You do not have permissions to read from this Channel topic: chat:1"
    assert read_revoked("chat:1") == "You no longer have permission to read from this Channel topic: chat:1"
    expired = pyjwt.encode({"role": "authenticated", "exp": int(time.time()) - 5}, "s" * 32)
    assert token_refusal(jwt.TokenError("JWT expired", expired=True), expired).startswith(
        "InvalidJWTToken: Token has expired "
    )
    assert token_refusal(jwt.TokenError("x", reason="signature"), "t") == (
        "JwtSignatureError: Failed to validate JWT signature"
    )
    assert token_refusal(jwt.TokenError("x", reason="malformed"), "t") == (
        "MalformedJWT: The token provided is not a valid JWT"
    )
    assert token_refusal(jwt.TokenError("x"), "t") == "InvalidJWTToken: Fields `role` and `exp` are required in JWT"
