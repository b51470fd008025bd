"""The session's states and what moves it between them (pure: no I/O, no asyncio).

A start with a saved session shows the user's saved identity and cached chats at once, before the server
has confirmed the saved refresh token; the confirmation runs behind the first paint::

    SIGNED_OUT  --restore-->      RESTORING   (saved identity shown, token with the server)
    SIGNED_OUT  --confirmed-->    CONFIRMED   (a sign-in, or a restore without a saved identity)
    RESTORING   --confirmed-->    CONFIRMED
    RESTORING   --unreachable-->  OFFLINE     (tried again in the background)
    OFFLINE     --confirmed-->    CONFIRMED
    RESTORING, OFFLINE, CONFIRMED --refused-->  SIGNED_OUT   (token revoked, account deleted)
    any         --signed_out-->   SIGNED_OUT

- ``RESTORING``: the saved identity is shown; the token is with the server now. Calls to Supabase wait for
  the answer (sent before it, they would go out without the user's token, and row level security would
  answer "nothing", which must not be mistaken for data).
- ``OFFLINE``: the server could not be reached to confirm; what is saved is shown, calls fail at once with
  "not connected", and the token is tried again in the background.
- ``CONFIRMED``: the server accepted the session (a sign-in, or the saved one confirmed). A refresh that
  cannot reach the server keeps it: the access token may run out meanwhile, and the next refresh recovers.
- A refusal (token revoked, account deleted) ends the session: back to ``SIGNED_OUT``, the sign-in window.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["CallVerdict", "InvalidTransition", "SessionEvent", "SessionState", "call_verdict", "next_state"]


class SessionState(StrEnum):
    SIGNED_OUT = "signed-out"
    RESTORING = "restoring"
    OFFLINE = "offline"
    CONFIRMED = "confirmed"


class SessionEvent(StrEnum):
    RESTORE = "restore"  # a start with a saved identity and refresh token: shown before it is confirmed
    CONFIRMED = "confirmed"  # the server answered with a session (sign-in, sign-up, refresh, restore)
    UNREACHABLE = "unreachable"  # the server could not be reached to confirm or refresh the session
    REFUSED = "refused"  # the server refused the refresh token (revoked, account deleted)
    SIGNED_OUT = "signed-out"  # the user signed out (or the data layer is closing)


class CallVerdict(StrEnum):
    """What a call to Supabase does in a state."""

    GO = "go"
    WAIT = "wait"  # until the confirmation is answered, then ask again
    UNAVAILABLE = "unavailable"  # fail now: the session is not confirmed and the server is away


class InvalidTransition(ValueError):
    """An event that cannot happen in the current state (a bug in the caller)."""


_S, _E = SessionState, SessionEvent
_TRANSITIONS: dict[tuple[SessionState, SessionEvent], SessionState] = {
    (_S.SIGNED_OUT, _E.RESTORE): _S.RESTORING,
    (_S.SIGNED_OUT, _E.CONFIRMED): _S.CONFIRMED,
    # A restore without a saved identity waits for its answer while signed out: nothing was shown.
    (_S.SIGNED_OUT, _E.UNREACHABLE): _S.SIGNED_OUT,
    (_S.SIGNED_OUT, _E.REFUSED): _S.SIGNED_OUT,
    (_S.RESTORING, _E.CONFIRMED): _S.CONFIRMED,
    (_S.RESTORING, _E.UNREACHABLE): _S.OFFLINE,
    (_S.RESTORING, _E.REFUSED): _S.SIGNED_OUT,
    (_S.OFFLINE, _E.CONFIRMED): _S.CONFIRMED,
    (_S.OFFLINE, _E.UNREACHABLE): _S.OFFLINE,
    (_S.OFFLINE, _E.REFUSED): _S.SIGNED_OUT,
    (_S.CONFIRMED, _E.CONFIRMED): _S.CONFIRMED,
    (_S.CONFIRMED, _E.UNREACHABLE): _S.CONFIRMED,
    (_S.CONFIRMED, _E.REFUSED): _S.SIGNED_OUT,
}


def next_state(state: SessionState, event: SessionEvent) -> SessionState:
    """The state after ``event``.

    Raises:
        InvalidTransition: ``event`` cannot happen in ``state`` (e.g. a restore while signed in).
    """
    if event is SessionEvent.SIGNED_OUT:
        return SessionState.SIGNED_OUT
    try:
        return _TRANSITIONS[(state, event)]
    except KeyError:
        raise InvalidTransition(f"session event {event.value!r} cannot happen while {state.value}") from None


def call_verdict(state: SessionState) -> CallVerdict:
    """Whether a call to Supabase may go out now (see the module docstring)."""
    if state is SessionState.RESTORING:
        return CallVerdict.WAIT
    if state is SessionState.OFFLINE:
        return CallVerdict.UNAVAILABLE
    # Signed out: sign-in and health calls go out as the project (anon); the data layer's reads raise
    # NotSignedIn before they get here.
    return CallVerdict.GO
