"""Giving up on every connection to the server at once, when the path to it has gone silent.

A middlebox can black-hole a connection: no FIN, no RST, nothing in or out (a NAT that forgot the mapping,
a Wi-Fi roam, a laptop waking up on another network). The realtime link notices within seconds (its
heartbeat goes unanswered), but the REST calls in flight on keep-alive connections of the same path would
wait out their whole timeout, and the connections idle in the pool would swallow the retries too. So when
the realtime link is given up for silence, the backend drops them all (``SupabaseBackend.drop_connections``):

- every call in flight has its deadline brought forward to now (``CallDeadlines``), so it ends as a timeout,
  which every caller already treats as transient (sends are idempotent and retried, reads fall back);
- the HTTP connection pool is replaced by a fresh one (``RenewableTransport``), so the next request opens a
  new connection instead of reusing one that leads nowhere. It lives in ``transport.py``, which imports
  ``httpx``: this module is imported by the first frame, the HTTP stack only when the client is built.

A healthy server costs only a reconnect for the calls that were in flight: it is the same choice the
heartbeat already makes for the socket.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator


class CallDeadlines:
    """The deadlines of the calls in flight, so that they can all be ended at once."""

    def __init__(self) -> None:
        self._active: set[asyncio.Timeout] = set()
        self.expired = 0
        """Calls ended early by ``expire_all`` (diagnostics, tests)."""

    @contextlib.asynccontextmanager
    async def within(self, seconds: float) -> AsyncIterator[None]:
        """Like ``asyncio.timeout(seconds)``, and ended early (``TimeoutError``) by ``expire_all``."""
        async with asyncio.timeout(seconds) as deadline:
            self._active.add(deadline)
            try:
                yield
            finally:
                self._active.discard(deadline)

    @property
    def in_flight(self) -> int:
        return len(self._active)

    def expire_all(self) -> int:
        """Bring every active deadline forward to now. Returns how many calls were in flight."""
        now = asyncio.get_running_loop().time()
        active = [deadline for deadline in self._active if not deadline.expired()]
        for deadline in active:
            deadline.reschedule(now)
        self.expired += len(active)
        return len(active)
