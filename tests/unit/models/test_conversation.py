"""Search snippets, emoji and read positions: the pure parts the app builds on."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from desktop_chat.errors import InvalidInput
from desktop_chat.models import (
    SNIPPET_END,
    SNIPPET_START,
    ChatId,
    MessageId,
    ReadPosition,
    ReadPositions,
    SearchHit,
    UserId,
    split_snippet,
    validate_emoji,
    validate_search_text,
)

S, E = SNIPPET_START, SNIPPET_END


@pytest.mark.parametrize(
    ("snippet", "parts"),
    [
        ("plain", [("plain", False)]),
        (f"a {S}b{E} c", [("a ", False), ("b", True), (" c", False)]),
        (f"{S}x{E}{S}y{E}", [("x", True), ("y", True)]),
        (f"<b>{S}&{E}</b>", [("<b>", False), ("&", True), ("</b>", False)]),  # text stays text
        (f"open {S}never closed", [("open ", False), ("never closed", True)]),
        (f"stray{E} end", [("stray", False), (" end", False)]),
        ("", []),
    ],
)
def test_snippets_split_at_the_markers(snippet: str, parts: list[tuple[str, bool]]) -> None:
    assert split_snippet(snippet) == parts


@given(st.text(alphabet=st.sampled_from(["a", " ", S, E, "中"])))
def test_splitting_keeps_every_character_but_the_markers(snippet: str) -> None:
    parts = split_snippet(snippet)
    assert "".join(text for text, _ in parts) == snippet.replace(S, "").replace(E, "")
    assert all(text for text, _ in parts)


def test_a_hit_names_the_cursor_of_the_next_page() -> None:
    moment = datetime(2026, 12, 5, tzinfo=UTC)
    hit = SearchHit(
        id=MessageId(uuid.uuid4()),
        chat_id=ChatId(uuid.uuid4()),
        seq=3,
        sender_id=None,
        created_at=moment,
        snippet=f"{S}hi{E}",
    )
    assert (hit.cursor.before_at, hit.cursor.before_id) == (moment, hit.id)
    assert hit.snippet_parts() == [("hi", True)]


@pytest.mark.parametrize("emoji", ["👍", "❤️", "👍🏽", "👨‍👩‍👧‍👦", "🇺🇦", "1️⃣", "©"])
def test_emoji_the_database_accepts(emoji: str) -> None:
    assert validate_emoji(emoji) == emoji


@pytest.mark.parametrize("emoji", ["", " ", "👍 ", "lol", "+1", "1", "a👍", "👍\n", "\u0007👍", "👍" * 17])
def test_emoji_the_database_refuses(emoji: str) -> None:
    with pytest.raises(InvalidInput):
        validate_emoji(emoji)


def test_search_text_is_bounded() -> None:
    assert validate_search_text("x" * 500) == "x" * 500
    with pytest.raises(InvalidInput, match="limit is 500"):
        validate_search_text("x" * 501)


def test_read_by_leaves_the_sender_out() -> None:
    a, b, c = (UserId(uuid.uuid4()) for _ in range(3))
    positions = ReadPositions(
        chat_id=ChatId(uuid.uuid4()),
        positions=(
            ReadPosition(user_id=a, last_read_seq=9),
            ReadPosition(user_id=b, last_read_seq=5),
            ReadPosition(user_id=c, last_read_seq=0),
        ),
        member_count=3,
    )
    assert positions.read_by(5, sender_id=a) == [b]
    assert positions.read_by(6, sender_id=b) == [a]
    assert positions.read_by(1, sender_id=None) == [a, b]
