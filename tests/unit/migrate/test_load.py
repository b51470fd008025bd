"""Batching, the hot parsing loop and the reader/loader pump (chat_migrate/load.py), without services."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from chat_migrate import ids
from chat_migrate.legacy import Reason
from chat_migrate.load import BatchEnd, RoomStats, Rows, batches, parse_chunk, pump
from chat_migrate.model import LegacyRoom
from tests.legacy.writer import member


def rooms(*sizes: int) -> list[LegacyRoom]:
    return [LegacyRoom(str(n), None, size) for n, size in enumerate(sizes)]


def test_batches_hold_about_batch_size_messages_and_big_rooms_stand_alone() -> None:
    grouped = batches(rooms(3, 3, 3, 20, 1, 1), 7)
    assert [[r.size for r in group] for group in grouped] == [[3, 3], [3], [20], [1, 1]]
    assert batches([], 7) == []


def test_parse_chunk_collects_rows_stats_and_rejects() -> None:
    room = LegacyRoom("0", "General", 4)
    stats = RoomStats(room, ids.chat_id("0"))
    accounts = {1: uuid.UUID(int=1)}
    members = [member(1, 10, "a", "0"), member(2, 5, "b", "0"), b"{bad", member(1, 20.5, "c", "0")]
    rows = parse_chunk(members, [b"10", b"5", b"7", b"20"], 100, stats, ids.MessageIds("0"), accounts)
    assert [(r[1], r[2], r[4], r[5]) for r in rows] == [
        (100, 10_000_000, accounts[1], "a"),
        (101, 5_000_000, None, "b"),
        (103, 20_500_000, accounts[1], "c"),
    ]
    assert rows[0][3] == ids.message_id("0", members[0])
    assert (stats.read, stats.valid, stats.first, stats.last) == (4, 3, 5_000_000, 20_500_000)
    assert stats.senders == {1} and stats.unknown_sender == 1
    assert [(p, r) for p, r, _, _ in stats.rejected] == [(102, Reason.NOT_JSON)]


async def test_pump_delivers_in_order_and_surfaces_reader_errors() -> None:
    seen: list[object] = []

    async def events(fail: bool) -> AsyncIterator[Rows | BatchEnd]:
        for n in range(5):
            yield Rows([])
            await asyncio.sleep(0)
            if fail and n == 2:
                raise RuntimeError("redis went away")
        yield BatchEnd([])

    async def sink(event: Rows | BatchEnd) -> None:
        seen.append(type(event))

    await pump(events(False), sink)
    assert seen == [Rows] * 5 + [BatchEnd]
    seen.clear()
    with pytest.raises(RuntimeError, match="redis went away"):
        await pump(events(True), sink)
    assert seen == [Rows] * 3


async def test_pump_stops_the_reader_when_the_loader_fails() -> None:
    produced = 0

    async def events() -> AsyncIterator[Rows | BatchEnd]:
        nonlocal produced
        while True:
            produced += 1
            yield Rows([])

    async def sink(event: Rows | BatchEnd) -> None:
        raise ValueError("database said no")

    with pytest.raises(ValueError, match="database said no"):
        await pump(events(), sink, depth=2)
    assert produced <= 4  # bounded by the queue, not run to exhaustion
