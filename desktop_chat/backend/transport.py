"""``RenewableTransport``: an HTTP connection pool that can be replaced while the client lives on (see
``connections.py`` for why). Apart from ``CallDeadlines`` because it needs ``httpx``, which is imported only
when the backend builds its client, after the first paint."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import httpx

log = logging.getLogger(__name__)


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
