"""``TaskGroup``: the background work of one owner, awaited together and cancelled together."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any

from desktop_chat.errors import BackendUnavailable, NotSignedIn

log = logging.getLogger(__name__)


class TaskGroup:
    """Tasks started with ``spawn``; ``settle`` waits for them, ``close`` cancels them.

    A task that fails is logged (the server being away, or the user gone, at INFO; anything else as an
    error with its traceback): background work has no caller to raise to.
    """

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coroutine: Awaitable[Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coroutine)
        task.set_name(name)
        self._tasks.add(task)

        def done(finished: asyncio.Task[Any]) -> None:
            self._tasks.discard(finished)
            if not finished.cancelled() and (error := finished.exception()) is not None:
                if isinstance(error, (BackendUnavailable, NotSignedIn)):
                    log.info("%s did not finish: %s", name, error)
                else:
                    log.error("%s failed", name, exc_info=error)

        task.add_done_callback(done)
        return task

    async def settle(self) -> None:
        """Wait until the work started so far (and whatever it starts meanwhile) is done."""
        while pending := [task for task in self._tasks if not task.done()]:
            await asyncio.gather(*pending, return_exceptions=True)

    async def close(self) -> None:
        """Cancel every task (but the one calling) and wait until they are gone, including tasks spawned
        while closing (a task's cleanup or a timer may start one): left running, such a task could write
        an old session's state after sign-out cleared it."""
        me = asyncio.current_task()
        while pending := {task for task in self._tasks if task is not me and not task.done()}:
            # Cancel again if a library swallowed the first cancellation: closing must never hang.
            for task in pending:
                task.cancel()
            await asyncio.wait(pending, timeout=1.0)
