"""The session's state machine (``desktop_chat.backend.session_state``): every path of a start, pure."""

from __future__ import annotations

import pytest

from desktop_chat.backend.session_state import (
    CallVerdict,
    InvalidTransition,
    SessionEvent,
    SessionState,
    call_verdict,
    next_state,
)

S, E = SessionState, SessionEvent


def run(*events: SessionEvent, start: SessionState = S.SIGNED_OUT) -> list[SessionState]:
    states = [start]
    for event in events:
        states.append(next_state(states[-1], event))
    return states


def test_restored_online_shows_the_saved_session_then_confirms_it() -> None:
    assert run(E.RESTORE, E.CONFIRMED) == [S.SIGNED_OUT, S.RESTORING, S.CONFIRMED]


def test_restored_offline_stays_offline_until_the_server_answers() -> None:
    assert run(E.RESTORE, E.UNREACHABLE, E.UNREACHABLE, E.CONFIRMED) == [
        S.SIGNED_OUT,
        S.RESTORING,
        S.OFFLINE,
        S.OFFLINE,
        S.CONFIRMED,
    ]


def test_a_revoked_saved_session_goes_back_to_signed_out_before_or_after_going_offline() -> None:
    assert run(E.RESTORE, E.REFUSED)[-1] is S.SIGNED_OUT
    assert run(E.RESTORE, E.UNREACHABLE, E.REFUSED)[-1] is S.SIGNED_OUT
    assert run(E.CONFIRMED, E.REFUSED)[-1] is S.SIGNED_OUT  # a refresh refused later


def test_no_saved_session_signs_in_with_a_password() -> None:
    assert run(E.CONFIRMED, E.CONFIRMED, E.UNREACHABLE) == [S.SIGNED_OUT, S.CONFIRMED, S.CONFIRMED, S.CONFIRMED]
    # A restore without a saved identity that fails shows nothing, so nothing moves.
    assert run(E.UNREACHABLE, E.REFUSED) == [S.SIGNED_OUT, S.SIGNED_OUT, S.SIGNED_OUT]


@pytest.mark.parametrize("state", list(SessionState))
def test_signing_out_works_from_every_state(state: SessionState) -> None:
    assert next_state(state, E.SIGNED_OUT) is S.SIGNED_OUT


@pytest.mark.parametrize("state", [S.RESTORING, S.OFFLINE, S.CONFIRMED])
def test_a_restore_while_a_session_is_shown_is_a_bug(state: SessionState) -> None:
    with pytest.raises(InvalidTransition, match="restore"):
        next_state(state, E.RESTORE)


def test_calls_wait_while_restoring_and_fail_fast_offline() -> None:
    assert {state: call_verdict(state) for state in SessionState} == {
        S.SIGNED_OUT: CallVerdict.GO,
        S.RESTORING: CallVerdict.WAIT,
        S.OFFLINE: CallVerdict.UNAVAILABLE,
        S.CONFIRMED: CallVerdict.GO,
    }
