"""The circuit breaker in front of Redis: a pure state machine with an injectable clock.

::

              failures ≥ threshold, a forced failure,
              or ≥ N slow calls within the window
    CLOSED ─────────────────────────────────────────► OPEN ◄──────────┐
       ▲                                               │ backoff over  │ probe failed:
       │ probe succeeded                               ▼ (begin_probe) │ backoff doubles
       └───────────────────────────────────────── HALF_OPEN ──────────┘

While the breaker is not CLOSED, callers do not use Redis at all; the owner (``TieredCache``) runs the
probe when ``probe_due`` says so. Outcomes of calls that were already under way when the breaker opened
are ignored. No I/O and no asyncio here; time comes from ``clock``.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

__all__ = ["BreakerChange", "BreakerListener", "BreakerState", "CircuitBreaker", "FailureKind"]


class BreakerState(StrEnum):
    CLOSED = "closed"  # Redis in use
    OPEN = "open"  # Redis not used; waiting for the backoff to pass
    HALF_OPEN = "half-open"  # a probe is under way; Redis still not used by callers


class FailureKind(StrEnum):
    """Why Redis was given up on (also the ``errors`` metric's label suffix)."""

    CONNECTION = "connection"  # refused, reset, unreachable
    TIMEOUT = "timeout"  # no reply within the socket timeout
    OOM = "oom"  # maxmemory reached: "OOM command not allowed"
    ERROR = "error"  # any other error reply
    SLOW = "slow"  # answers, but too slowly too often


@dataclass(frozen=True, slots=True)
class BreakerChange:
    old: BreakerState
    new: BreakerState
    reason: FailureKind | None  # None when closing


BreakerListener = Callable[[BreakerChange], None]


class CircuitBreaker:
    """Decides whether Redis is used, from the outcomes and latencies of calls.

    Args:
        error_threshold: Consecutive failures that open the breaker.
        slow_seconds: A call at least this slow is a slow call.
        slow_calls: Slow calls within ``slow_window`` seconds that open the breaker.
        slow_window: Seconds over which slow calls are counted.
        backoff: Seconds from opening to the first probe.
        backoff_max: The longest wait between probes; each failed probe doubles the wait up to this.
        clock: Monotonic seconds.
    """

    def __init__(
        self,
        *,
        error_threshold: int = 1,
        slow_seconds: float = 0.1,
        slow_calls: int = 5,
        slow_window: float = 30.0,
        backoff: float = 1.0,
        backoff_max: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if error_threshold < 1 or slow_calls < 1 or min(slow_seconds, slow_window, backoff) <= 0:
            raise ValueError("breaker thresholds must be positive")
        self.error_threshold = error_threshold
        self.slow_seconds = slow_seconds
        self.slow_calls = slow_calls
        self.slow_window = slow_window
        self.initial_backoff = backoff
        self.backoff_max = max(backoff_max, backoff)
        self._clock = clock
        self._state = BreakerState.CLOSED
        self._reason: FailureKind | None = None
        self._errors = 0
        self._slow: deque[float] = deque()
        self._backoff = backoff
        self._next_probe_at = 0.0
        self._listeners: list[BreakerListener] = []

    @property
    def state(self) -> BreakerState:
        return self._state

    @property
    def reason(self) -> FailureKind | None:
        """Why the breaker is not closed (None while closed)."""
        return self._reason

    @property
    def allows_requests(self) -> bool:
        return self._state is BreakerState.CLOSED

    @property
    def backoff(self) -> float:
        """The current wait between opening (or a failed probe) and the next probe."""
        return self._backoff

    def subscribe(self, listener: BreakerListener) -> Callable[[], None]:
        """Call ``listener`` on every state change; returns a function that unsubscribes it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    # --- outcomes of calls -------------------------------------------------------------------------
    def record_success(self, latency: float) -> None:
        """A call succeeded after ``latency`` seconds."""
        if self._state is not BreakerState.CLOSED:
            return
        self._errors = 0
        if latency < self.slow_seconds:
            return
        now = self._clock()
        self._slow.append(now)
        while self._slow and self._slow[0] <= now - self.slow_window:
            self._slow.popleft()
        if len(self._slow) >= self.slow_calls:
            self._open(FailureKind.SLOW)

    def record_failure(self, kind: FailureKind, *, force: bool = False) -> None:
        """A call failed. ``force`` opens at once (a failed write leaves Redis possibly stale)."""
        if self._state is not BreakerState.CLOSED:
            return
        self._errors += 1
        if force or self._errors >= self.error_threshold:
            self._open(kind)

    # --- probing -----------------------------------------------------------------------------------
    def seconds_until_probe(self) -> float:
        """How long until a probe is due (0 when due now; 0 when closed, where none is needed)."""
        if self._state is not BreakerState.OPEN:
            return 0.0
        return max(0.0, self._next_probe_at - self._clock())

    def probe_due(self) -> bool:
        return self._state is BreakerState.OPEN and self._clock() >= self._next_probe_at

    def begin_probe(self) -> None:
        """OPEN → HALF_OPEN, whether or not the backoff is over (a user may ask to retry now)."""
        if self._state is not BreakerState.OPEN:
            raise RuntimeError(f"cannot probe a {self._state} breaker")
        self._change(BreakerState.HALF_OPEN, self._reason)

    def probe_succeeded(self) -> None:
        """HALF_OPEN → CLOSED with fresh counters and backoff."""
        if self._state is not BreakerState.HALF_OPEN:
            raise RuntimeError(f"no probe under way ({self._state})")
        self._errors = 0
        self._slow.clear()
        self._backoff = self.initial_backoff
        self._reason = None
        self._change(BreakerState.CLOSED, None)

    def probe_failed(self, kind: FailureKind) -> None:
        """HALF_OPEN → OPEN with twice the backoff (up to the maximum)."""
        if self._state is not BreakerState.HALF_OPEN:
            raise RuntimeError(f"no probe under way ({self._state})")
        self._backoff = min(self._backoff * 2, self.backoff_max)
        self._next_probe_at = self._clock() + self._backoff
        self._reason = kind
        self._change(BreakerState.OPEN, kind)

    # --- internals ---------------------------------------------------------------------------------
    def _open(self, kind: FailureKind) -> None:
        self._backoff = self.initial_backoff
        self._next_probe_at = self._clock() + self._backoff
        self._reason = kind
        self._errors = 0
        self._slow.clear()
        self._change(BreakerState.OPEN, kind)

    def _change(self, new: BreakerState, reason: FailureKind | None) -> None:
        old, self._state = self._state, new
        change = BreakerChange(old, new, reason)
        for listener in list(self._listeners):
            listener(change)
