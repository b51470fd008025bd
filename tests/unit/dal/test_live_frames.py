"""LiveSync hands realtime changes to the views at most once a frame, without holding back a lone change."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

from desktop_chat.dal.live import LiveSync
from desktop_chat.models import ChangeEvent, ChatId, ChatRemoved
from tests.builders import bare_live_sync

HOUR = 3600.0


def live_sync(frame: float) -> tuple[LiveSync, list[list[ChangeEvent]]]:
    """A LiveSync whose batches are recorded instead of applied."""
    live = bare_live_sync(frame_interval=frame)
    batches: list[list[ChangeEvent]] = []

    async def record(events: Sequence[ChangeEvent]) -> None:
        batches.append(list(events))

    live.apply_now = record  # type: ignore[method-assign]
    return live, batches


def change() -> ChangeEvent:
    return ChatRemoved(chat_id=ChatId(uuid.uuid4()))


async def loop_turns(count: int = 5) -> None:
    for _ in range(count):
        await asyncio.sleep(0)


async def test_a_change_after_a_quiet_frame_is_not_held_for_a_frame() -> None:
    live, batches = live_sync(HOUR)
    first = change()
    live.enqueue([first])
    await loop_turns()
    assert batches == [[first]]
    await live.stop()


async def test_changes_within_a_frame_of_the_last_batch_wait_for_the_frame() -> None:
    live, batches = live_sync(HOUR)
    first, second, third = change(), change(), change()
    live.enqueue([first])
    await loop_turns()
    live.enqueue([second])
    live.enqueue([third])
    await loop_turns()
    assert batches == [[first]]  # the next batch goes an hour after the first
    await live.stop()


async def test_a_burst_goes_as_one_batch_at_the_end_of_the_frame_then_the_next_quiet_change_at_once() -> None:
    frame = 0.05
    live, batches = live_sync(frame)
    first, second, third, fourth = change(), change(), change(), change()
    live.enqueue([first])
    await loop_turns()
    live.enqueue([second])
    live.enqueue([third])
    async with asyncio.timeout(10):
        while len(batches) < 2:  # noqa: ASYNC110 - the batch comes from a timer
            await asyncio.sleep(frame / 5)
    assert batches == [[first], [second, third]]
    await asyncio.sleep(frame * 2)  # a quiet frame
    live.enqueue([fourth])
    await loop_turns()
    assert batches == [[first], [second, third], [fourth]]
    await live.stop()
