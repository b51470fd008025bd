"""LiveSync applies a big batch in slices, in order, each change once, giving the event loop back between."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, cast

from desktop_chat.dal.cursor import RevCursor
from desktop_chat.dal.live import APPLY_SLICE, LiveSync
from desktop_chat.models import ChangeEvent, ChatChanges, ChatId, ChatRemoved, MessageUpserted
from tests.builders import bare_live_sync, message, messages


def live_sync() -> tuple[LiveSync, list[list[ChangeEvent]]]:
    """A LiveSync whose slices are recorded instead of reduced, written and shown."""
    live = bare_live_sync()
    slices: list[list[ChangeEvent]] = []

    async def record(events: Sequence[ChangeEvent], *, realtime: bool) -> None:
        slices.append(list(events))

    live._apply_slice = record  # type: ignore[method-assign]
    return live, slices


def changes(count: int) -> list[ChangeEvent]:
    return [ChatRemoved(chat_id=ChatId(uuid.uuid4())) for _ in range(count)]


async def test_a_big_batch_goes_in_slices_in_order_each_change_once() -> None:
    live, slices = live_sync()
    events = changes(APPLY_SLICE * 2 + 7)
    await live.apply_now(events)
    assert [len(part) for part in slices] == [APPLY_SLICE, APPLY_SLICE, 7]
    assert [event for part in slices for event in part] == events


async def test_a_batch_within_one_slice_goes_at_once() -> None:
    live, slices = live_sync()
    events = changes(APPLY_SLICE)
    await live.apply_now(events)
    assert slices == [events]


async def test_the_event_loop_runs_other_work_between_slices() -> None:
    live, slices = live_sync()
    seen: list[int] = []  # how many slices were applied each time the other task ran

    async def other() -> None:
        while len(seen) < 10:
            seen.append(len(slices))
            await asyncio.sleep(0)

    watcher = asyncio.ensure_future(other())
    await asyncio.sleep(0)  # the watcher runs first: it sees nothing applied yet
    await live.apply_now(changes(APPLY_SLICE * 3))
    await watcher
    assert 1 in seen and 2 in seen  # it ran after the first slice and after the second, before the last


async def test_a_second_batch_waits_for_every_slice_of_the_first() -> None:
    live, slices = live_sync()
    first, second = changes(APPLY_SLICE + 1), changes(3)
    await asyncio.gather(live.apply_now(first), live.apply_now(second))
    assert [event for part in slices for event in part] == first + second


class Reads:
    """A back-fill answer: the chat's messages in rev order, an edited old one last."""

    def __init__(self, answer: ChatChanges) -> None:
        self.answer = answer

    async def changes_since_many(self, cursors: Mapping[ChatId, int], limit: int) -> list[ChatChanges]:
        return [self.answer]


async def test_a_back_fill_goes_in_seq_order_so_no_slice_skips_a_seq() -> None:
    chat = ChatId(uuid.uuid4())
    # seq 1..60 inserted in order (rev = seq), then seq 3 edited (rev 61): by rev, seq 3 comes last, so
    # the first slice would hold seq 1, 2, 4..51 and the cache would see seq 4 follow seq 2.
    found = [m for m in messages(chat, 1, 60) if m.seq != 3] + [message(chat, 3, rev=61, edited=True)]
    live, slices = live_sync()
    live._reads = cast(Any, Reads(ChatChanges(chat_id=chat, last_rev=61, messages=tuple(found))))
    live._cursors[chat] = RevCursor(0)
    await live.backfill_chat(chat)
    seqs = [cast(MessageUpserted, event).message.seq for part in slices for event in part]
    assert seqs == list(range(1, 61))
    assert live.cursor_of(chat) == 61
