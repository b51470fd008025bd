"""One load per key at a time: ``SingleFlight`` makes concurrent readers of a missing key share one load.

(The other guard of the read-through, no stale write-back, is the cache's load tokens:
``TieredCache.begin_load``.)
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class SingleFlight(Generic[K, V]):
    """Deduplicate concurrent loads by key.

    The load runs in its own task, so a caller that is cancelled (the user switched chats) does not
    cancel the load for the others, and the result still lands in the cache.
    """

    def __init__(self) -> None:
        self._inflight: dict[K, asyncio.Task[V]] = {}
        self._completed: dict[K, int] = {}

    def completed(self, key: K) -> int:
        """How many loads of ``key`` have finished (to tell whether one ended during a cache read)."""
        return self._completed.get(key, 0)

    def __contains__(self, key: K) -> bool:
        return key in self._inflight

    async def run(self, key: K, load: Callable[[], Awaitable[V]]) -> V:
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.ensure_future(load())
            self._inflight[key] = task
            task.add_done_callback(functools.partial(self._forget, key))
        return await asyncio.shield(task)

    def _forget(self, key: K, task: asyncio.Task[V]) -> None:
        if self._inflight.get(key) is task:
            del self._inflight[key]
        self._completed[key] = self._completed.get(key, 0) + 1
        if not task.cancelled():
            task.exception()  # retrieved here so an error nobody awaited is not reported as lost
