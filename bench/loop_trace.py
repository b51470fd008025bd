"""``LoopTrace``: which event-loop callbacks used the CPU, and which collections ran (a benchmark aid).

While installed, every ``asyncio.Handle`` run is timed with the thread's CPU clock (``time.thread_time``: the
loop's own work, not the time it waited for a core on a shared machine); those over ``threshold`` are kept
with what they were (a task: its name, its coroutine and where it suspended after the step; else the
callback). ``gc.callbacks`` give each collection's generation and pause. So a loop stall the stall monitor
reports can be named afterwards: a long callback, a collection, or the process waiting for a core.

It wraps ``asyncio.events.Handle._run`` (a private method: a benchmark aid, never used by the app) and costs
two clock reads a callback, which is why ``bench stream`` installs it only on request
(``BENCH_STREAM_TRACE=1``).
"""

from __future__ import annotations

import asyncio
import asyncio.events
import collections
import gc
import re
import time
from collections.abc import Callable
from typing import Any

_ADDRESS = re.compile(r" at 0x[0-9a-f]+|0x[0-9a-f]+")


def describe(handle: asyncio.Handle) -> str:
    """A task step as ``task <name> <coroutine> at <where it suspended>``; any other callback by its repr."""
    callback: Any = getattr(handle, "_callback", None)
    owner = getattr(callback, "__self__", None)
    if isinstance(owner, asyncio.Task):
        coro: Any = owner.get_coro()
        where = []
        while coro is not None:
            frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
            if frame is not None:
                where.append(f"{frame.f_code.co_filename.rsplit('/', 1)[-1]}:{frame.f_code.co_name}")
            coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
        name = re.sub(r"\d+$", "N", owner.get_name())
        return f"task {name} {getattr(owner.get_coro(), '__qualname__', '?')} at {' > '.join(where) or 'end'}"
    return _ADDRESS.sub("", repr(callback))[:160]


class LoopTrace:
    """Times every event-loop callback while installed (``with LoopTrace() as trace``)."""

    def __init__(self, threshold: float = 0.002) -> None:
        self.threshold = threshold
        self.callbacks = 0
        self.slow: list[tuple[float, float, str]] = []  # (start, CPU seconds, description)
        self.collections: list[tuple[float, float, float, int]] = []  # (start, pause, CPU seconds, generation)
        self._original: Callable[[asyncio.Handle], None] | None = None
        self._gc_started = (0.0, 0.0)
        self._entered = 0.0

    def __enter__(self) -> LoopTrace:
        original = asyncio.events.Handle._run
        trace = self

        def run(handle: asyncio.Handle) -> None:
            trace.callbacks += 1
            started, cpu = time.perf_counter(), time.thread_time()
            try:
                original(handle)
            finally:
                spent = time.thread_time() - cpu
                if spent >= trace.threshold:
                    trace.slow.append((started, spent, describe(handle)))

        self._original = original
        self._entered = time.perf_counter()
        asyncio.events.Handle._run = run  # type: ignore[method-assign]
        gc.callbacks.append(self._on_gc)
        return self

    def __exit__(self, *_: object) -> None:
        if self._original is not None:
            asyncio.events.Handle._run = self._original  # type: ignore[method-assign]
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        now, cpu = time.perf_counter(), time.thread_time()
        if phase == "start":
            self._gc_started = (now, cpu)
        else:
            started, cpu_started = self._gc_started
            self.collections.append((started, now - started, cpu - cpu_started, info["generation"]))

    def figures(self, top: int = 12) -> dict[str, Any]:
        """The slowest callbacks (CPU; ``at_s``: seconds after the trace began), the same grouped by
        description, and the collections by generation (wall pause and the thread's CPU in it)."""
        groups: dict[str, list[float]] = collections.defaultdict(list)
        for _, spent, what in self.slow:
            groups[what].append(spent)
        by_generation: dict[int, list[tuple[float, float]]] = collections.defaultdict(list)
        for _, pause, cpu, generation in self.collections:
            by_generation[generation].append((pause, cpu))
        return {
            "callbacks": self.callbacks,
            "threshold_ms": self.threshold * 1000,
            "slowest": [
                {"at_s": round(started - self._entered, 3), "cpu_ms": round(spent * 1000, 2), "what": what}
                for started, spent, what in sorted(self.slow, key=lambda item: -item[1])[:top]
            ],
            "slow_by_kind": [
                {"count": len(spent), "cpu_ms_max": round(max(spent) * 1000, 2), "what": what}
                for what, spent in sorted(groups.items(), key=lambda item: -sum(item[1]))[:top]
            ],
            "collections": {
                str(generation): {
                    "count": len(pauses),
                    "max_ms": round(max(pause for pause, _ in pauses) * 1000, 2),
                    "max_cpu_ms": round(max(cpu for _, cpu in pauses) * 1000, 2),
                }
                for generation, pauses in sorted(by_generation.items())
            },
        }
