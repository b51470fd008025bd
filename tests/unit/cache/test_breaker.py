"""The circuit breaker's state machine, driven by a fake clock."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from desktop_chat.cache.breaker import BreakerChange, BreakerState, CircuitBreaker, FailureKind


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(**options: float) -> tuple[CircuitBreaker, Clock, list[BreakerChange]]:
    clock = Clock()
    breaker = CircuitBreaker(clock=clock, **options)  # type: ignore[arg-type]
    changes: list[BreakerChange] = []
    breaker.subscribe(changes.append)
    return breaker, clock, changes


def test_starts_closed_and_lets_requests_through() -> None:
    breaker, _, changes = make()
    assert breaker.state is BreakerState.CLOSED and breaker.allows_requests
    breaker.record_success(0.001)
    assert breaker.state is BreakerState.CLOSED and changes == []


def test_an_error_opens_it_at_the_default_threshold() -> None:
    breaker, _, changes = make()
    breaker.record_failure(FailureKind.CONNECTION)
    assert breaker.state is BreakerState.OPEN and not breaker.allows_requests
    assert breaker.reason is FailureKind.CONNECTION
    assert changes == [BreakerChange(BreakerState.CLOSED, BreakerState.OPEN, FailureKind.CONNECTION)]


def test_consecutive_errors_count_and_a_success_resets_them() -> None:
    breaker, _, _ = make(error_threshold=3)
    breaker.record_failure(FailureKind.TIMEOUT)
    breaker.record_failure(FailureKind.TIMEOUT)
    breaker.record_success(0.001)
    breaker.record_failure(FailureKind.TIMEOUT)
    breaker.record_failure(FailureKind.TIMEOUT)
    assert breaker.state is BreakerState.CLOSED
    breaker.record_failure(FailureKind.TIMEOUT)
    assert breaker.state is BreakerState.OPEN and breaker.reason is FailureKind.TIMEOUT


def test_a_forced_failure_opens_below_the_threshold() -> None:
    breaker, _, _ = make(error_threshold=5)
    breaker.record_failure(FailureKind.OOM, force=True)
    assert breaker.state is BreakerState.OPEN and breaker.reason is FailureKind.OOM


def test_slowness_opens_it_after_several_slow_calls_within_the_window() -> None:
    breaker, _, _ = make(slow_seconds=0.1, slow_calls=3, slow_window=10)
    breaker.record_success(0.5)
    breaker.record_success(0.05)  # fast calls in between do not excuse the slow ones
    breaker.record_success(0.1)
    assert breaker.state is BreakerState.CLOSED
    breaker.record_success(0.2)
    assert breaker.state is BreakerState.OPEN and breaker.reason is FailureKind.SLOW


def test_slow_calls_outside_the_window_are_forgotten() -> None:
    breaker, clock, _ = make(slow_seconds=0.1, slow_calls=3, slow_window=10)
    breaker.record_success(0.5)
    breaker.record_success(0.5)
    clock.now += 10.5
    breaker.record_success(0.5)
    assert breaker.state is BreakerState.CLOSED
    breaker.record_success(0.5)
    breaker.record_success(0.5)
    assert breaker.state is BreakerState.OPEN


def test_probe_is_due_after_the_backoff_and_success_closes_it() -> None:
    breaker, clock, changes = make(backoff=2, backoff_max=30)
    breaker.record_failure(FailureKind.CONNECTION)
    assert not breaker.probe_due() and breaker.seconds_until_probe() == 2
    clock.now += 1.5
    assert not breaker.probe_due() and breaker.seconds_until_probe() == pytest.approx(0.5)
    clock.now += 0.5
    assert breaker.probe_due()
    breaker.begin_probe()
    assert breaker.state is BreakerState.HALF_OPEN and not breaker.allows_requests
    breaker.probe_succeeded()
    assert breaker.state is BreakerState.CLOSED and breaker.reason is None
    assert [c.new for c in changes] == [BreakerState.OPEN, BreakerState.HALF_OPEN, BreakerState.CLOSED]


def test_failed_probes_double_the_backoff_up_to_the_maximum() -> None:
    breaker, clock, _ = make(backoff=1, backoff_max=5)
    breaker.record_failure(FailureKind.CONNECTION)
    waits = []
    for _ in range(5):
        clock.now += breaker.seconds_until_probe()
        breaker.begin_probe()
        breaker.probe_failed(FailureKind.CONNECTION)
        waits.append(breaker.seconds_until_probe())
    assert waits == [2, 4, 5, 5, 5]
    clock.now += 5
    breaker.begin_probe()
    breaker.probe_succeeded()
    breaker.record_failure(FailureKind.TIMEOUT)
    assert breaker.seconds_until_probe() == 1  # a new outage starts from the initial backoff


def test_a_probe_can_be_forced_before_the_backoff_is_over() -> None:
    breaker, _, _ = make(backoff=60)
    breaker.record_failure(FailureKind.CONNECTION)
    breaker.begin_probe()
    assert breaker.state is BreakerState.HALF_OPEN


def test_outcomes_of_calls_under_way_when_it_opened_are_ignored() -> None:
    breaker, _, changes = make(slow_calls=1)
    breaker.record_failure(FailureKind.CONNECTION)
    breaker.record_failure(FailureKind.OOM, force=True)
    breaker.record_success(10.0)
    breaker.record_success(0.001)
    assert breaker.state is BreakerState.OPEN and breaker.reason is FailureKind.CONNECTION
    assert len(changes) == 1


@pytest.mark.parametrize("action", ["begin_probe", "probe_succeeded"])
def test_probing_steps_out_of_order_are_bugs(action: str) -> None:
    breaker, _, _ = make()
    with pytest.raises(RuntimeError):
        getattr(breaker, action)()


def test_unsubscribe_stops_notifications() -> None:
    breaker = CircuitBreaker(clock=Clock())
    seen: list[BreakerChange] = []
    unsubscribe = breaker.subscribe(seen.append)
    unsubscribe()
    unsubscribe()  # harmless twice
    breaker.record_failure(FailureKind.CONNECTION)
    assert seen == []


@given(st.lists(st.sampled_from(["ok", "slow", "fail", "tick", "probe-ok", "probe-fail"]), max_size=60))
def test_any_sequence_keeps_the_state_machine_consistent(steps: list[str]) -> None:
    breaker, clock, changes = make(error_threshold=2, slow_calls=2, slow_window=5, backoff=1, backoff_max=8)
    for step in steps:
        if step == "ok":
            breaker.record_success(0.01)
        elif step == "slow":
            breaker.record_success(1.0)
        elif step == "fail":
            breaker.record_failure(FailureKind.TIMEOUT)
        elif step == "tick":
            clock.now += 1
        elif breaker.state is BreakerState.OPEN and breaker.probe_due():
            breaker.begin_probe()
            (breaker.probe_succeeded if step == "probe-ok" else lambda: breaker.probe_failed(FailureKind.TIMEOUT))()
        assert breaker.allows_requests == (breaker.state is BreakerState.CLOSED)
        assert (breaker.reason is None) == (breaker.state is BreakerState.CLOSED)
        assert 1 <= breaker.backoff <= 8
    # Every change starts where the previous one ended, and only allowed edges are taken.
    allowed = {
        (BreakerState.CLOSED, BreakerState.OPEN),
        (BreakerState.OPEN, BreakerState.HALF_OPEN),
        (BreakerState.HALF_OPEN, BreakerState.CLOSED),
        (BreakerState.HALF_OPEN, BreakerState.OPEN),
    }
    state = BreakerState.CLOSED
    for change in changes:
        assert change.old is state and (change.old, change.new) in allowed
        state = change.new
    assert state is breaker.state
