"""``PushInbox``: pushes taken off the realtime library's receive loop and handled in slices.

The library reads the socket in one loop and calls each channel callback inside it; when the gateway
sends a burst (dozens of pushes that arrived together), that loop works through all of them without
giving the event loop back, so a paint, a keystroke or a timer waits for the whole burst. Here the
callback only appends the push to a queue; a task of our own handles the queue in order and yields to
the event loop whenever a slice (``slice_seconds`` of handling) is used up, so no burst holds the loop
longer than about one slice plus one push.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

PUSH_SLICE = 0.004
"""Seconds of push handling between two yields to the event loop (a quarter of a 60 Hz frame)."""
_DEFAULT = object()


class PushInbox(Generic[T]):
    """An ordered queue of pushes, handled by one task that yields between slices.

    Args:
        handle: Called with each push, in arrival order; an exception is logged and the next push handled.
        slice_seconds: Handling time between yields (``PUSH_SLICE`` when omitted); None handles each push at
            once, in ``put`` (the library's receive loop), as without an inbox (benchmarks compare the two).
    """

    def __init__(self, handle: Callable[[T], None], slice_seconds: float | object | None = _DEFAULT) -> None:
        self._handle = handle
        # Read when the inbox is made, not when the module was: a benchmark sets PUSH_SLICE to compare.
        chosen = PUSH_SLICE if slice_seconds is _DEFAULT else slice_seconds
        if chosen is not None and not isinstance(chosen, float | int):
            raise TypeError("slice_seconds is a number of seconds or None")
        self._slice: float | None = None if chosen is None else float(chosen)
        self._queue: collections.deque[T] = collections.deque()
        self._task: asyncio.Task[None] | None = None
        self.yields = 0  # how many times a burst was split (diagnostics, tests)

    def __len__(self) -> int:
        return len(self._queue)

    def put(self, push: T) -> None:
        """Take a push (called from the library's receive loop: cheap, never blocks)."""
        if self._slice is None:
            self._handle_one(push)
            return
        self._queue.append(push)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._drain(), name="realtime-inbox")

    async def close(self) -> None:
        """Drop what is queued (the link is being torn down; the back-fill after the next subscribe covers
        it) and stop the task."""
        self._queue.clear()
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _drain(self) -> None:
        assert self._slice is not None
        started = time.perf_counter()
        while self._queue:
            self._handle_one(self._queue.popleft())
            if self._queue and time.perf_counter() - started >= self._slice:
                self.yields += 1
                await asyncio.sleep(0)
                started = time.perf_counter()

    def _handle_one(self, push: T) -> None:
        try:
            self._handle(push)
        except Exception:  # one bad push must not stop the stream; the back-fill repairs what it missed
            log.exception("A realtime push could not be handled")
