"""The UI's words: times, day labels, typing lines, initials."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from desktop_chat.ui.text import (
    HUE_SLOTS,
    byte_size,
    day_label,
    distinct_hues,
    hue_for,
    initials,
    list_time,
    local,
    one_line,
    plural,
    typing_line,
)

NOW = datetime(2026, 11, 26, 14, 30, tzinfo=UTC)


def test_list_time_gets_coarser_with_age() -> None:
    today = local(NOW)
    assert list_time(NOW - timedelta(minutes=5), NOW) == (today - timedelta(minutes=5)).strftime("%H:%M")
    assert list_time(NOW - timedelta(days=1), NOW) == "Yesterday"
    assert list_time(NOW - timedelta(days=3), NOW) == local(NOW - timedelta(days=3)).strftime("%a")
    assert list_time(NOW - timedelta(days=20), NOW) == f"{local(NOW - timedelta(days=20)).day} Nov"
    assert list_time(NOW - timedelta(days=400), NOW).endswith("2025")


def test_day_labels() -> None:
    today = date(2026, 11, 26)
    assert day_label(today, today) == "Today"
    assert day_label(date(2026, 11, 25), today) == "Yesterday"
    assert day_label(date(2026, 11, 23), today) == "Monday 23 November"
    assert day_label(date(2025, 11, 23), today) == "Sunday 23 November 2025"


@pytest.mark.parametrize(
    ("names", "line"),
    [
        ([], ""),
        (["Bob"], "Bob is typing…"),
        (["Bob", "Carol"], "Bob and Carol are typing…"),
        (["Bob", "Carol", "Dave"], "Several people are typing…"),
    ],
)
def test_typing_line(names: list[str], line: str) -> None:
    assert typing_line(names) == line


@pytest.mark.parametrize(
    ("name", "letters"),
    [("Alice Martin", "AM"), ("bob", "B"), ("Release 0.2", "R"), ("Jean-Luc de la Rue", "JR"), ("42", "?")],
)
def test_initials(name: str, letters: str) -> None:
    assert initials(name) == letters


def test_small_helpers() -> None:
    assert plural(1, "message") == "1 message"
    assert plural(1200, "message") == "1,200 messages"
    assert one_line("a\n  b\tc ") == "a b c"
    assert byte_size(512) == "512 B"
    assert byte_size(3.5 * 1024 * 1024) == "3.5 MB"
    assert hue_for("alice") == hue_for("alice")
    assert 0 <= hue_for("bob") < 360


SEED_PEOPLE = ("a11ce000-0000-4000-8000-000000000001", "b0b00000-0000-4000-8000-000000000002")
SEED_CAROL = "ca201000-0000-4000-8000-000000000003"


def test_bob_and_carol_no_longer_share_a_colour() -> None:
    """The seed's Bob and Carol hash to hues 7° apart (177 and 184): side by side, the same colour."""
    assert abs(hue_for(SEED_PEOPLE[1]) - hue_for(SEED_CAROL)) < 10
    hues = distinct_hues([*SEED_PEOPLE, SEED_CAROL])
    assert abs(hues[SEED_PEOPLE[1]] - hues[SEED_CAROL]) >= 360 // HUE_SLOTS
    assert distinct_hues(reversed([*SEED_PEOPLE, SEED_CAROL])) == hues  # the same people, the same colours


@given(st.lists(st.uuids().map(str), min_size=1, max_size=HUE_SLOTS, unique=True))
def test_up_to_twelve_people_of_a_chat_all_get_their_own_colour(people: list[str]) -> None:
    hues = distinct_hues(people)
    assert len(set(hues.values())) == len(people)
    assert all(0 <= hue < 360 for hue in hues.values())
