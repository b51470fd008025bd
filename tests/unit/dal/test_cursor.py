"""RevCursor advances through contiguous revs, waits at a gap, and jumps after a back-fill."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from desktop_chat.dal.cursor import RevCursor


def test_in_order_events_advance_the_cursor() -> None:
    cursor = RevCursor(5)
    assert [cursor.observe(rev) for rev in (6, 7, 8)] == [False, False, False]
    assert cursor.value == 8
    assert not cursor.observe(7)  # a duplicate
    assert cursor.value == 8


def test_a_gap_holds_the_cursor_until_a_backfill() -> None:
    cursor = RevCursor(5)
    assert cursor.observe(9)  # 6..8 were missed while disconnected
    assert cursor.value == 5 and cursor.has_gap
    cursor.backfilled(9)
    assert cursor.value == 9 and not cursor.has_gap


def test_events_ahead_of_a_backfill_are_not_lost() -> None:
    cursor = RevCursor(5)
    cursor.observe(11)
    cursor.observe(12)
    cursor.backfilled(10)  # the back-fill's snapshot ended at 10; 11 and 12 arrived live meanwhile
    assert cursor.value == 12
    assert not cursor.has_gap


@given(st.integers(0, 50), st.lists(st.integers(1, 80), max_size=60))
def test_the_cursor_never_goes_backwards_and_never_passes_an_unseen_rev(start: int, revs: list[int]) -> None:
    cursor = RevCursor(start)
    seen = set(range(start + 1))
    for rev in revs:
        before = cursor.value
        cursor.observe(rev)
        seen.add(rev)
        assert cursor.value >= before
        assert all(r in seen for r in range(1, cursor.value + 1))
