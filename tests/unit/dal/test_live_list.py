"""LiveList: the announced row operations, applied to a mirror, always reproduce the list."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st

from desktop_chat.dal.live_list import (
    LiveList,
    RowChange,
    RowsChanged,
    RowsInserted,
    RowsRemoved,
    RowsReset,
    apply_changes,
    coalesce,
)


@dataclass(frozen=True)
class Item:
    key: int
    rank: int
    text: str = ""


def make() -> tuple[LiveList[Item, int], list[Item], list[Sequence[RowChange[Item]]]]:
    live: LiveList[Item, int] = LiveList(key=lambda item: item.key, sort_key=lambda item: item.rank)
    mirror: list[Item] = []
    batches: list[Sequence[RowChange[Item]]] = []

    def listener(changes: Sequence[RowChange[Item]]) -> None:
        batches.append(changes)
        apply_changes(mirror, changes)

    live.subscribe(listener)
    return live, mirror, batches


def test_insert_keeps_sort_order_and_announces_the_position() -> None:
    live, mirror, batches = make()
    live.upsert(Item(1, 10))
    live.upsert(Item(2, 30))
    live.upsert(Item(3, 20))
    assert [item.key for item in live.rows] == [1, 3, 2]
    assert batches[-1] == [RowsInserted(1, (Item(3, 20),))]
    assert mirror == list(live.rows)


def test_an_update_in_place_is_a_change_and_a_move_is_remove_plus_insert() -> None:
    live, mirror, batches = make()
    live.upsert_many([Item(1, 10), Item(2, 20), Item(3, 30)])
    live.upsert(Item(2, 20, "edited"))
    assert batches[-1] == [RowsChanged(1, (Item(2, 20, "edited"),))]
    live.upsert(Item(1, 40))
    assert batches[-1] == [RowsRemoved(0, 1), RowsInserted(2, (Item(1, 40),))]
    assert mirror == list(live.rows)


def test_a_burst_of_appends_is_announced_as_one_insert() -> None:
    live, _, batches = make()
    live.upsert(Item(0, 0))
    with live.batch():
        for n in range(1, 1001):
            live.upsert(Item(n, n))
    assert len(batches) == 2
    assert len(batches[-1]) == 1
    change = batches[-1][0]
    assert isinstance(change, RowsInserted)
    assert change.start == 1
    assert len(change.rows) == 1000


def test_remove_and_retain() -> None:
    live, mirror, _ = make()
    live.upsert_many([Item(n, n) for n in range(10)])
    assert live.remove(3) == Item(3, 3)
    assert live.remove(3) is None
    live.retain(lambda item: item.rank >= 5)
    assert [item.key for item in live.rows] == [5, 6, 7, 8, 9]
    assert mirror == list(live.rows)


def test_reset_deduplicates_and_sorts() -> None:
    live, mirror, batches = make()
    live.reset([Item(2, 20), Item(1, 10), Item(2, 5)])
    assert [item.key for item in live.rows] == [2, 1]
    assert isinstance(batches[-1][0], RowsReset)
    assert mirror == list(live.rows)


def test_unsubscribe_stops_announcements() -> None:
    live: LiveList[Item, int] = LiveList(key=lambda item: item.key, sort_key=lambda item: item.rank)
    seen: list[object] = []
    unsubscribe = live.subscribe(seen.append)
    live.upsert(Item(1, 1))
    unsubscribe()
    live.upsert(Item(2, 2))
    assert len(seen) == 1


operations = st.lists(
    st.one_of(
        st.tuples(st.just("upsert"), st.integers(0, 15), st.integers(0, 8), st.text(max_size=2)),
        st.tuples(st.just("remove"), st.integers(0, 15), st.just(0), st.just("")),
        st.tuples(st.just("retain"), st.just(0), st.integers(0, 8), st.just("")),
    ),
    max_size=60,
)


@given(operations, st.booleans())
def test_the_mirror_always_matches(ops: list[tuple[str, int, int, str]], batched: bool) -> None:
    live, mirror, _ = make()

    def run() -> None:
        for op, key, rank, text in ops:
            if op == "upsert":
                live.upsert(Item(key, rank, text))
            elif op == "remove":
                live.remove(key)
            else:
                live.retain(lambda item, limit=rank: item.rank >= limit)

    if batched:
        with live.batch():
            run()
    else:
        run()
    assert mirror == list(live.rows)
    assert [item.rank for item in live.rows] == sorted(item.rank for item in live.rows)
    assert len({item.key for item in live.rows}) == len(live.rows)


@given(st.lists(st.integers(0, 5), max_size=30))
def test_coalesce_preserves_the_effect_of_inserts(positions: list[int]) -> None:
    base = ["x"]
    plain = list(base)
    changes: list[RowChange[str]] = []
    for n, position in enumerate(positions):
        start = min(position, len(plain))
        change = RowsInserted(start, (str(n),))
        changes.append(change)
        apply_changes(plain, [change])
    merged = list(base)
    apply_changes(merged, coalesce(changes))
    assert merged == plain
