"""The delivery decisions: transient → retry with capped jittered backoff, 401 → refresh, refusal → failed."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from desktop_chat.errors import BackendUnavailable, Bug, NotSignedIn, Rejected, Unauthorized
from desktop_chat.sync.delivery import (
    MAX_DELAY,
    UNREACHABLE_MAX_DELAY,
    GiveUp,
    RefreshAndRetry,
    RetryLater,
    backoff,
    decide,
)


def test_transient_failures_retry_with_growing_delays() -> None:
    """Capped low while the server is unreachable: the retry is how the app notices it is back."""
    rng = random.Random(1)
    delays = [decide(BackendUnavailable("down"), attempts, rng) for attempts in range(12)]
    assert all(isinstance(delay, RetryLater) for delay in delays)
    ceilings = [min(UNREACHABLE_MAX_DELAY, 0.5 * 2**n) for n in range(12)]
    for decision, ceiling in zip(delays, ceilings, strict=True):
        assert isinstance(decision, RetryLater)
        assert ceiling / 2 <= decision.delay <= ceiling


@given(st.integers(min_value=0, max_value=10_000), st.floats(min_value=0, max_value=1, exclude_max=True))
def test_backoff_is_capped_and_positive(attempts: int, draw: float) -> None:
    class Fixed(random.Random):
        def random(self) -> float:
            return draw

    delay = backoff(attempts, Fixed())
    assert 0 < delay <= MAX_DELAY


def test_a_5xx_or_a_database_away_is_retried_never_given_up() -> None:
    for code in ("PGRST000", "PGRST001", "PGRSTX00", "57P03", "503"):
        decision = decide(BackendUnavailable("the server is having trouble", code=code), 3)
        assert isinstance(decision, RetryLater), code
        assert decision.delay <= UNREACHABLE_MAX_DELAY


def test_an_expired_session_is_refreshed_then_retried() -> None:
    assert isinstance(decide(Unauthorized("expired", code="PGRST303"), 0), RefreshAndRetry)
    assert isinstance(decide(NotSignedIn("out"), 0), RetryLater)


def test_refusals_fail_with_a_readable_reason() -> None:
    rls = decide(Rejected("denied", code="42501"), 0)
    assert rls == GiveUp("You can no longer post in this chat.")
    gone = decide(Rejected("fk", code="23503"), 3)
    assert gone == GiveUp("This chat no longer exists.")
    check = decide(Rejected("The server refused the data: too long", code="23514"), 0)
    assert isinstance(check, GiveUp)
    assert "too long" in check.reason
    assert isinstance(decide(Bug("odd reply"), 0), GiveUp)
    assert isinstance(decide(KeyError("x"), 0), GiveUp)
