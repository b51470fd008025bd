"""What to do after a send attempt: the delivery state machine's decisions, free of I/O.

- Network errors, timeouts, 5xx: stay pending, retry after an exponential backoff with jitter (capped).
- 401 (the access token expired): refresh the session, then retry at once.
- Permanent refusals (data errors ``22xxx``, constraint errors ``23xxx`` other than a duplicate of our
  own id, permission ``42501``): failed, with a reason a person understands. Retrying keeps the id.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from desktop_chat.errors import (
    AuthError,
    Bug,
    DesktopChatError,
    EnvironmentFailure,
    InvalidInput,
    NotSignedIn,
    Rejected,
    Unauthorized,
)

_RNG = random.Random()
BASE_DELAY = 0.5
MAX_DELAY = 60.0


@dataclass(frozen=True, slots=True)
class RetryLater:
    delay: float
    reason: str


@dataclass(frozen=True, slots=True)
class RefreshAndRetry:
    reason: str


@dataclass(frozen=True, slots=True)
class GiveUp:
    reason: str


Decision = RetryLater | RefreshAndRetry | GiveUp


def backoff(attempts: int, rng: random.Random | None = None) -> float:
    """Seconds before attempt ``attempts + 1``: exponential, capped, with full-range jitter.

    Jitter spreads the retries of many clients (and many chats) so a recovering server is not hit by
    all of them in the same instant.
    """
    ceiling = min(MAX_DELAY, BASE_DELAY * 2.0 ** min(max(attempts, 0), 16))
    draw = (rng or _RNG).random()
    return ceiling / 2 + draw * ceiling / 2


def _reason_for(error: DesktopChatError) -> str:
    code = error.code or ""
    if code == "42501":
        return "You can no longer post in this chat."
    if code == "23503":
        # A reply's original in another chat (or none) is the one other foreign key a send can break.
        return error.message if "replied to" in error.message else "This chat no longer exists."
    if code.startswith(("22", "23")):
        return f"The server refused this message: {error.message}"
    return error.message


def decide(error: BaseException, attempts: int, rng: random.Random | None = None) -> Decision:
    """Classify a failed attempt (``attempts`` counts the failures before this one)."""
    if isinstance(error, Unauthorized) and error.code not in {"invalid_credentials"}:
        return RefreshAndRetry("The session expired; refreshing it.")
    if isinstance(error, NotSignedIn):
        return RetryLater(backoff(attempts, rng), "Not signed in; the message waits for the next sign-in.")
    if isinstance(error, AuthError):
        return RetryLater(backoff(attempts, rng), error.message)
    if isinstance(error, EnvironmentFailure):
        return RetryLater(backoff(attempts, rng), error.message)
    if isinstance(error, (Rejected, InvalidInput)):
        return GiveUp(_reason_for(error))
    if isinstance(error, (Bug, DesktopChatError)):
        # A bug: retrying will not help, and the user must see that the message did not go.
        return GiveUp(f"Could not send: {error.message}")
    return GiveUp(f"Could not send: unexpected {type(error).__name__}")
