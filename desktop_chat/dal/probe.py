"""The consistency probe: pushes are the fast path, the ``rev`` back-fill is the truth.

A push can be lost without anyone noticing: a proxy that drops a frame, a server that restarts and forgets
what it had not sent yet, a socket the server stopped writing to, a big chat whose ``activity`` notices
are thinned to one per 2 s. So while a user is signed in, every ``PROBE_INTERVAL`` (jittered, so that a
fleet of clients does not probe in step) and whenever asked (``poke``), the probe reads the chat list's
newest ``rev`` per chat and compares it with this client's cursors; ``LiveSync.check_consistency``
back-fills whatever differs and corrects the rows. A lost push is shown within one interval, whatever
lost it.

Both reads are one call each, however many chats: the chat list's first page (its rows carry each chat's
newest ``rev``) and, only when something differs, the multi-chat back-fill (``changes_since`` with
``(chat, rev)`` pairs).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable

from desktop_chat.errors import DesktopChatError

log = logging.getLogger(__name__)

PROBE_INTERVAL = (4.0, 7.0)  # seconds between probes: a uniform draw from this range


class ConsistencyProbe:
    """Runs ``check`` every ``interval`` (a uniform draw) and when poked, one at a time.

    Args:
        check: The comparison and repair (``LiveSync.check_consistency``).
        interval: The range the pause between two checks is drawn from, in seconds.
        rng: Where the draws come from.
    """

    def __init__(
        self,
        check: Callable[[], Awaitable[object]],
        *,
        interval: tuple[float, float] = PROBE_INTERVAL,
        rng: random.Random | None = None,
    ) -> None:
        self._check = check
        self._interval = interval
        self._rng = rng or random.Random()
        self._poked = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.runs = 0

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="consistency-probe")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def poke(self) -> None:
        """Check now (the window came back to the foreground, say) rather than at the next interval."""
        self._poked.set()

    async def _loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._rng.uniform(*self._interval)):
                    await self._poked.wait()
            self._poked.clear()
            self.runs += 1
            try:
                await self._check()
            except asyncio.CancelledError:
                raise
            except DesktopChatError as error:  # offline, or refused: the next round tries again
                log.info("Consistency probe did not complete: %s", type(error).__name__)
