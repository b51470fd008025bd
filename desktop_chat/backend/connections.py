"""Giving up on every connection to the server at once, when the path to it has gone silent.

A middlebox can black-hole a connection: no FIN, no RST, nothing in or out (a NAT that forgot the mapping,
a Wi-Fi roam, a laptop waking up on another network). The realtime link notices within seconds (its
heartbeat goes unanswered), but the REST calls in flight on keep-alive connections of the same path would
wait out their whole timeout, and the connections idle in the pool would swallow the retries too. So when
the realtime link is given up for silence, the backend drops them all (``SupabaseBackend.drop_connections``):

- every call in flight has its deadline brought forward to now (``CallDeadlines``), so it ends as a timeout,
  which every caller already treats as transient (sends are idempotent and retried, reads fall back);
- the HTTP connection pool is replaced by a fresh one (``RenewableTransport``), so the next request opens a
  new connection instead of reusing one that leads nowhere.

A healthy server costs only a reconnect for the calls that were in flight: it is the same choice the
heartbeat already makes for the socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

import httpx

log = logging.getLogger(__name__)


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


class RenewableTransport(httpx.AsyncBaseTransport):
    """An HTTP transport whose connection pool can be thrown away and replaced while the client lives on.

    The ``httpx.AsyncClient`` is shared with the official client's PostgREST and auth parts, which keep a
    reference to it, so the client itself cannot be swapped; its transport can.

    Args:
        make: Builds a fresh transport (a new, empty connection pool).
    """

    def __init__(self, make: Callable[[], httpx.AsyncBaseTransport]) -> None:
        self._make = make
        self._current = make()
        self._retired: set[asyncio.Task[None]] = set()
        self.renewals = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self._current.handle_async_request(request)

    def renew(self) -> None:
        """New requests go through a new pool from now on; the old pool's connections are closed."""
        old, self._current = self._current, self._make()
        self.renewals += 1
        # Closed in a task: the requests still running on it are being ended by their deadlines right
        # now, and closing must not wait for a peer that does not answer.
        task = asyncio.get_running_loop().create_task(self._close(old), name="http-pool-retired")
        self._retired.add(task)
        task.add_done_callback(self._retired.discard)

    @staticmethod
    async def _close(transport: httpx.AsyncBaseTransport) -> None:
        await asyncio.sleep(0)  # let the ended requests unwind first
        try:
            await transport.aclose()
        except Exception as error:  # a pool that fails to close must not stop anything else
            log.info("Closing a retired HTTP pool failed: %s", error)

    async def aclose(self) -> None:
        for task in list(self._retired):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._current.aclose()
