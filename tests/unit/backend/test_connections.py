"""Ending every call in flight and renewing the connection pool when the path to the server goes silent."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from desktop_chat.backend.connections import CallDeadlines
from desktop_chat.backend.transport import RenewableTransport


async def test_expire_all_ends_the_calls_in_flight_as_timeouts_and_only_those() -> None:
    deadlines = CallDeadlines()
    started = asyncio.Event()

    async def stuck() -> None:
        async with deadlines.within(3600):
            started.set()
            await asyncio.Event().wait()

    async with deadlines.within(3600):
        pass  # a call that finished is not ended again, nor counted
    task = asyncio.create_task(stuck())
    await started.wait()
    assert deadlines.in_flight == 1
    assert deadlines.expire_all() == 1
    with pytest.raises(TimeoutError):
        await task
    assert deadlines.in_flight == 0
    assert deadlines.expired == 1
    assert deadlines.expire_all() == 0


async def test_a_call_after_expire_all_gets_its_whole_time() -> None:
    deadlines = CallDeadlines()
    deadlines.expire_all()
    async with deadlines.within(3600):
        await asyncio.sleep(0.01)  # not ended: the expiry applied to the calls in flight at that moment


class _Pool(httpx.AsyncBaseTransport):
    def __init__(self, name: str) -> None:
        self.name = name
        self.closed = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.closed:
            raise httpx.ConnectError("closed pool")
        return httpx.Response(200, text=self.name)

    async def aclose(self) -> None:
        self.closed = True


async def test_renew_sends_what_follows_through_a_new_pool_and_closes_the_old_one() -> None:
    pools: list[_Pool] = []

    def make() -> _Pool:
        pools.append(_Pool(f"pool {len(pools)}"))
        return pools[-1]

    transport = RenewableTransport(make)
    async with httpx.AsyncClient(transport=transport, base_url="http://server") as client:
        assert (await client.get("/a")).text == "pool 0"
        transport.renew()
        assert (await client.get("/b")).text == "pool 1"
        await asyncio.sleep(0.01)
        assert pools[0].closed and not pools[1].closed
        assert transport.renewals == 1
    assert pools[1].closed  # closing the client closes the pool in use
