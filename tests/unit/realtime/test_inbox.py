"""PushInbox: pushes handled in order, off the caller, giving the event loop back between slices."""

from __future__ import annotations

import asyncio

import pytest

from desktop_chat.realtime.inbox import PushInbox


async def test_a_burst_is_handled_in_order_and_other_tasks_run_in_between() -> None:
    seen: list[str] = []
    inbox: PushInbox[str] = PushInbox(seen.append, slice_seconds=0.0)  # yield after every push

    async def other() -> None:
        seen.append("other task")

    for n in range(5):
        inbox.put(f"push {n}")  # as the library's receive loop calls it: no await in between
    assert seen == []  # nothing is handled inside put
    asyncio.get_running_loop().create_task(other())
    while len(inbox) or len(seen) < 6:  # noqa: ASYNC110 - polling the inbox's own task
        await asyncio.sleep(0)
    pushes = [item for item in seen if item.startswith("push")]
    assert pushes == [f"push {n}" for n in range(5)]
    assert seen.index("other task") < seen.index("push 4")  # the burst did not hold the loop to the end
    assert inbox.yields >= 4


async def test_without_a_slice_each_push_is_handled_at_once() -> None:
    seen: list[int] = []
    inbox: PushInbox[int] = PushInbox(seen.append, slice_seconds=None)
    inbox.put(1)
    inbox.put(2)
    assert seen == [1, 2]


async def test_a_failing_push_is_logged_and_the_next_one_handled(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[int] = []

    def handle(push: int) -> None:
        if push == 1:
            raise ValueError("bad push")
        seen.append(push)

    inbox: PushInbox[int] = PushInbox(handle)
    for push in (0, 1, 2):
        inbox.put(push)
    while len(inbox) or len(seen) < 2:  # noqa: ASYNC110
        await asyncio.sleep(0)
    assert seen == [0, 2]
    assert "could not be handled" in caplog.text


async def test_close_drops_what_is_queued() -> None:
    seen: list[int] = []
    inbox: PushInbox[int] = PushInbox(seen.append)
    inbox.put(1)
    await inbox.close()
    await asyncio.sleep(0)
    assert seen == [] and len(inbox) == 0
