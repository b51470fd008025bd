"""The consistency probe runs on its own schedule and when poked, survives a failed round, and stops."""

from __future__ import annotations

import asyncio
import random

from desktop_chat.dal.probe import PROBE_INTERVAL, ConsistencyProbe
from desktop_chat.errors import BackendUnavailable

HOUR = 3600.0


async def test_a_poke_runs_a_check_at_once_and_a_failed_round_is_not_the_last() -> None:
    ran: list[int] = []

    async def check() -> None:
        ran.append(len(ran))
        if len(ran) == 1:
            raise BackendUnavailable("Cannot reach the server.")

    probe = ConsistencyProbe(check, interval=(HOUR, HOUR))
    probe.start()
    for expected in (1, 2):
        probe.poke()
        async with asyncio.timeout(10):
            while len(ran) < expected:  # noqa: ASYNC110 - the probe's own task runs the check
                await asyncio.sleep(0.001)
    assert probe.runs == 2
    await probe.stop()
    probe.poke()
    await asyncio.sleep(0.01)
    assert len(ran) == 2  # stopped: a poke does nothing


class Draws(random.Random):
    """Records the ranges the pauses are drawn from, and makes each pause short."""

    def __init__(self) -> None:
        super().__init__(0)
        self.ranges: list[tuple[float, float]] = []

    def uniform(self, a: float, b: float) -> float:
        self.ranges.append((a, b))
        return 0.01


async def test_it_runs_on_its_own_after_a_pause_drawn_from_the_interval() -> None:
    ran = asyncio.Event()

    async def check() -> None:
        ran.set()

    draws = Draws()
    probe = ConsistencyProbe(check, rng=draws)
    probe.start()
    async with asyncio.timeout(10):
        await ran.wait()
    await probe.stop()
    # A fresh draw from the whole range before each round: clients started together do not probe in step.
    assert draws.ranges and set(draws.ranges) == {PROBE_INTERVAL}
