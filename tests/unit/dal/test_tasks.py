"""``TaskGroup.close`` leaves nothing running, not even work that a task being cancelled starts."""

from __future__ import annotations

import asyncio

from desktop_chat.dal.tasks import TaskGroup


async def test_close_cancels_what_is_spawned_while_it_closes() -> None:
    group = TaskGroup()
    late_started = asyncio.Event()
    finished: list[str] = []

    async def late() -> None:
        late_started.set()
        await asyncio.sleep(10)
        finished.append("late")  # an old session's write after its sign-out

    async def spawns_on_the_way_out() -> None:
        try:
            await asyncio.sleep(10)
        finally:
            group.spawn(late(), "late")  # as a timer or a listener may, while the group closes

    group.spawn(spawns_on_the_way_out(), "first")
    await asyncio.sleep(0)
    await group.close()
    assert not late_started.is_set() or not finished
    assert all(task.done() for task in asyncio.all_tasks() if task is not asyncio.current_task())
