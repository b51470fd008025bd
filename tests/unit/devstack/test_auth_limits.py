"""devstack.gateway.auth: rate limits, the equal-work password check and the admin API's pure parts."""

from __future__ import annotations

import asyncio

import bcrypt
import pytest

from devstack.gateway.auth import passwords
from devstack.gateway.auth.admin import ban_seconds
from devstack.gateway.auth.errors import AuthError
from devstack.gateway.auth.limits import BURST, Limiter, RateLimits


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_allows_its_burst_then_refills_at_its_rate() -> None:
    clock = Clock()
    limiter = Limiter(rate=0.5, burst=3, clock=clock)
    assert [limiter.allow("a") for _ in range(4)] == [True, True, True, False]
    assert limiter.allow("b")  # each address has its own bucket
    clock.now += 1.9
    assert not limiter.allow("a")
    clock.now += 0.1
    assert limiter.allow("a")
    clock.now += 1000
    assert [limiter.allow("a") for _ in range(4)] == [True, True, True, False]


def test_config_limits_are_per_five_minutes_with_gotrues_burst() -> None:
    clock = Clock()
    limits = RateLimits({"token_refresh": 150, "sign_in_sign_ups": 30}, clock=clock)
    assert (limits.token.rate, limits.signup.rate, limits.user.rate) == (0.5, 0.1, 0.1)
    assert limits.token.burst == limits.signup.burst == BURST == 30
    for _ in range(BURST):
        RateLimits.check(limits.signup, "127.0.0.1")
    with pytest.raises(AuthError) as caught:
        RateLimits.check(limits.signup, "127.0.0.1")
    assert (caught.value.status, caught.value.code, caught.value.message) == (
        429,
        "over_request_rate_limit",
        "Request rate limit reached",
    )
    RateLimits.check(limits.user, "127.0.0.1")  # another bucket


def test_an_unknown_address_costs_the_same_bcrypt_check_as_a_wrong_password() -> None:
    checked: list[str] = []

    def check(password: str, hashed: str) -> bool:
        checked.append(hashed)
        return False

    assert asyncio.run(passwords.password_matches("guess", None, check=check)) is False
    assert asyncio.run(passwords.password_matches("guess", "", check=check)) is False
    dummy = passwords.dummy_hash()
    assert checked == [dummy, dummy]
    assert dummy.startswith("$2a$10$") and bcrypt.checkpw(b"x", dummy.encode()) is False


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        ("$2a$10$" + "a" * 53, True),
        ("$2b$04$" + "./" * 26 + "A", True),
        ("$2y$12$" + "Z" * 53, True),
        ("$2x$10$" + "a" * 53, False),
        ("$2a$3$" + "a" * 53, False),
        ("$2a$10$" + "a" * 52, False),
        ("$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA", False),
        ("plain text", False),
    ],
)
def test_password_hashes_are_checked_as_bcrypt_hashes(value: str, accepted: bool) -> None:
    assert passwords.is_bcrypt_hash(value) is accepted


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("24h", 86400.0), ("1h30m", 5400.0), ("90s", 90.0), ("1.5h", 5400.0), ("500ms", 0.5), ("0", 0.0), ("none", None)],
)
def test_ban_durations_are_go_durations(value: str, seconds: float | None) -> None:
    assert ban_seconds(value) == seconds


@pytest.mark.parametrize("value", ["1 day", "24", "h", "1h-2m", ""])
def test_malformed_ban_durations_are_validation_failed(value: str) -> None:
    with pytest.raises(AuthError) as caught:
        ban_seconds(value)
    assert (caught.value.status, caught.value.code) == (400, "validation_failed")
