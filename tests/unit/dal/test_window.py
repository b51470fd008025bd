"""The timeline window: which seqs an open timeline holds, and when a detached one is back at the live end."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from desktop_chat.dal.window import TimelineWindow, newest_window_holds, window_around


def test_a_window_at_the_live_end_holds_everything_from_its_oldest_on() -> None:
    window = TimelineWindow(oldest=100)
    assert window.at_live_end and window.has_older
    assert not window.holds(99)
    assert window.holds(100) and window.holds(10**9)
    assert window.holds(None)  # an unsent message of ours belongs at the live end


def test_a_detached_window_does_not_take_live_messages_beyond_its_newest() -> None:
    window = TimelineWindow(oldest=49_975, newest=50_025)
    assert not window.at_live_end
    assert window.holds(50_000) and window.holds(50_025)
    assert not window.holds(50_026)  # would leave a hole between 50,025 and it
    assert not window.holds(100_001)
    assert not window.holds(None)  # a pending message is shown at the live end only


def test_a_jump_far_back_gives_a_detached_window() -> None:
    window = window_around(50_000, tuple(range(49_976, 50_001)), tuple(range(50_001, 50_026)), newer_has_more=True)
    assert window == TimelineWindow(49_976, 50_025)


def test_a_jump_that_reaches_the_newest_message_is_at_the_live_end() -> None:
    window = window_around(90, tuple(range(66, 91)), tuple(range(91, 101)), newer_has_more=False)
    assert window == TimelineWindow(66, None)
    assert window.at_live_end


def test_a_jump_into_an_empty_chat() -> None:
    assert window_around(1, (), (), newer_has_more=False) == TimelineWindow(None, None)


def test_newer_pages_grow_the_window_until_one_comes_back_short() -> None:
    window = TimelineWindow(10, 20)
    window = window.after_newer_page(70, has_more=True)
    assert window == TimelineWindow(10, 70)
    window = window.after_newer_page(95, has_more=False)
    assert window == TimelineWindow(10, None)  # joined the live end
    assert window.after_newer_page(200, has_more=True) == window  # at the live end nothing moves it


def test_older_pages_move_the_oldest_down_only() -> None:
    window = TimelineWindow(100, 150)
    assert window.after_older_page(50) == TimelineWindow(50, 150)
    assert window.after_older_page(None) == window
    assert window.after_older_page(120) == window
    assert not TimelineWindow(1, 150).has_older


def test_the_cached_newest_window_may_already_hold_the_target() -> None:
    assert newest_window_holds(150, 101, 300)
    assert not newest_window_holds(100, 101, 300)
    assert not newest_window_holds(5, None, None)


@given(
    oldest=st.integers(1, 1000),
    size=st.integers(0, 1000),
    pages=st.lists(st.tuples(st.integers(1, 100), st.booleans()), max_size=20),
)
def test_a_detached_window_never_takes_a_seq_beyond_what_was_loaded(
    oldest: int, size: int, pages: list[tuple[int, bool]]
) -> None:
    window = TimelineWindow(oldest, oldest + size)
    loaded = oldest + size
    for step, has_more in pages:
        loaded += step
        window = window.after_newer_page(loaded, has_more)
        if window.at_live_end:
            break
        # Detached: everything it holds was loaded; the first seq beyond is not its.
        assert window.newest == loaded
        assert not window.holds(loaded + 1)
