"""LoopTrace names the event-loop callbacks that used the CPU, and takes itself out again."""

from __future__ import annotations

import asyncio
import asyncio.events
import time

from bench.loop_trace import LoopTrace


def spin(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


async def busy_step() -> None:
    spin(0.01)
    await asyncio.sleep(0)


async def test_a_slow_task_step_is_named_and_a_quick_callback_is_not() -> None:
    loop = asyncio.get_running_loop()
    with LoopTrace(threshold=0.005) as trace:
        await loop.create_task(busy_step(), name="busy-7")
        done = loop.create_future()
        loop.call_soon(done.set_result, None)
        await done
    figures = trace.figures()
    assert [item["what"] for item in figures["slowest"]] == [
        "task busy-N busy_step at test_loop_trace.py:busy_step > tasks.py:sleep > tasks.py:__sleep0"
    ]
    assert figures["slowest"][0]["cpu_ms"] >= 10
    assert trace.callbacks >= 2


async def test_the_loop_runs_its_own_handles_again_after_the_trace() -> None:
    original = asyncio.events.Handle._run
    with LoopTrace():
        assert asyncio.events.Handle._run is not original
    assert asyncio.events.Handle._run is original
