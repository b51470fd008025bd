"""Offline search over the cached messages: prefixes, any case and accents, CJK substrings, safe snippets."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from desktop_chat.dal.local_search import fold, query_words, search_cached
from desktop_chat.models import SNIPPET_END, SNIPPET_START, ChatId, split_snippet
from tests.builders import message

CHAT = ChatId(uuid.UUID("00000000-0000-4000-8000-0000000000c1"))


def _texts(*contents: str) -> list:  # type: ignore[type-arg]
    return [message(CHAT, seq, content=content) for seq, content in enumerate(contents, start=1)]


def test_every_word_must_start_a_word_of_the_message() -> None:
    cached = _texts("The release train leaves on Friday", "Releasing is hard", "prerelease notes")
    found = search_cached(cached, "rel fri")
    assert [hit.seq for hit in found] == [1]
    assert {hit.seq for hit in search_cached(cached, "rel")} == {1, 2}  # not the middle of "prerelease"


def test_case_and_accents_do_not_matter() -> None:
    cached = _texts("Viele Grüße aus der Straße", "Ёлка в лесу")
    assert [hit.seq for hit in search_cached(cached, "GRUSSE")] == [1]  # ß folds to ss, ü to u
    assert [hit.seq for hit in search_cached(cached, "grü")] == [1]
    assert [hit.seq for hit in search_cached(cached, "grusse")] == [1]
    assert [hit.seq for hit in search_cached(cached, "strasse")] == [1]
    assert [hit.seq for hit in search_cached(cached, "елка")] == [2]
    assert fold("Ünïcödé") == "unicode"


def test_cjk_runs_match_anywhere() -> None:
    cached = _texts("今天我们讨论发布计划", "東京で会いましょう")
    assert [hit.seq for hit in search_cached(cached, "发布")] == [1]
    assert [hit.seq for hit in search_cached(cached, "会い")] == [2]


def test_newest_first_and_limited() -> None:
    cached = _texts(*(f"deploy number {n}" for n in range(10)))
    found = search_cached(cached, "deploy", limit=3)
    assert [hit.seq for hit in found] == [10, 9, 8]


def test_deleted_and_unsent_messages_are_never_found() -> None:
    gone = message(CHAT, 1, content="secret plan").model_copy(update={"deleted_at": datetime.now(UTC)})
    unsent = message(CHAT, 2, content="secret plan").model_copy(update={"seq": None, "rev": None})
    assert search_cached([gone, unsent], "secret") == []


def test_nothing_searchable_finds_nothing() -> None:
    cached = _texts("anything at all")
    assert query_words("  ?! ") == []
    assert search_cached(cached, " ?! ") == []
    assert search_cached(cached, "") == []


def test_the_snippet_marks_matches_and_a_message_cannot_forge_a_highlight() -> None:
    forged = f"{SNIPPET_START}fake{SNIPPET_END} <b>bold</b> launch day"
    [hit] = search_cached(_texts(forged), "launch")
    parts = split_snippet(hit.snippet)
    assert [text for text, lit in parts if lit] == ["launch"]  # only the real match is highlighted
    assert "".join(text for text, _ in parts) == " fake  <b>bold</b> launch day"  # the markup is just text


def test_the_snippet_is_a_window_around_the_first_match() -> None:
    long = "word " * 200 + "needle " + "tail " * 200
    [hit] = search_cached(_texts(long), "needle")
    assert len(hit.snippet) < 200
    assert hit.snippet.startswith("…") and hit.snippet.endswith("…")
    assert [text for text, lit in split_snippet(hit.snippet) if lit] == ["needle"]


def test_folding_that_changes_length_highlights_the_original_characters() -> None:
    [hit] = search_cached(_texts("Die Straße ist lang"), "strasse")
    assert [text for text, lit in split_snippet(hit.snippet) if lit] == ["Straße"]
