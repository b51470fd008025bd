"""SingleFlight shares one load among concurrent readers."""

from __future__ import annotations

import asyncio

import pytest

from desktop_chat.dal.readthrough import SingleFlight


async def test_concurrent_readers_share_one_load() -> None:
    flight: SingleFlight[str, int] = SingleFlight()
    calls = 0
    release = asyncio.Event()

    async def load() -> int:
        nonlocal calls
        calls += 1
        await release.wait()
        return 42

    readers = [asyncio.create_task(flight.run("k", load)) for _ in range(10)]
    await asyncio.sleep(0)
    assert "k" in flight
    release.set()
    assert await asyncio.gather(*readers) == [42] * 10
    assert calls == 1
    assert "k" not in flight


async def test_a_later_read_starts_a_new_load() -> None:
    flight: SingleFlight[str, int] = SingleFlight()
    results = iter([1, 2])

    async def load() -> int:
        return next(results)

    assert await flight.run("k", load) == 1
    assert await flight.run("k", load) == 2


async def test_an_error_reaches_every_reader_and_is_not_cached() -> None:
    flight: SingleFlight[str, int] = SingleFlight()
    release = asyncio.Event()

    async def failing() -> int:
        await release.wait()
        raise ValueError("boom")

    readers = [asyncio.create_task(flight.run("k", failing)) for _ in range(3)]
    await asyncio.sleep(0)
    release.set()
    outcomes = await asyncio.gather(*readers, return_exceptions=True)
    assert all(isinstance(outcome, ValueError) for outcome in outcomes)

    async def working() -> int:
        return 7

    assert await flight.run("k", working) == 7


async def test_a_cancelled_reader_does_not_cancel_the_load_for_others() -> None:
    flight: SingleFlight[str, int] = SingleFlight()
    release = asyncio.Event()

    async def load() -> int:
        await release.wait()
        return 5

    first = asyncio.create_task(flight.run("k", load))
    second = asyncio.create_task(flight.run("k", load))
    await asyncio.sleep(0)
    first.cancel()
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await first
    assert await second == 5
