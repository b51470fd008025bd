"""Parsing and normalising every kind of dirt in legacy members (chat_migrate/legacy.py)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chat_migrate.legacy import (
    MAX_TEXT_CHARS,
    Message,
    Reason,
    Rejected,
    parse_member,
    parse_user_id,
    private_parties,
    room_of_key,
    room_sort_key,
    to_micros,
    unescape_html,
    user_of_key,
)
from tests.legacy.writer import escape, member


def reason(raw: bytes, score: float | bytes = 1_700_000_000) -> Reason:
    parsed = parse_member(raw, score)
    assert isinstance(parsed, Rejected), parsed
    return parsed.reason


def ok(raw: bytes, score: float | bytes = 1_700_000_000) -> Message:
    parsed = parse_member(raw, score)
    assert isinstance(parsed, Message), parsed
    return parsed


def test_a_member_as_the_server_writes_it() -> None:
    parsed = ok(member(3, 1_700_000_000, "hi <b>you</b> & 'me'", "0"))
    assert parsed == Message(3, 1_700_000_000_000_000, "hi <b>you</b> & 'me'", False)


@pytest.mark.parametrize("sender", [7, "7", " 7 ", "+7"])
def test_from_is_an_int_or_a_string_of_digits(sender: int | str) -> None:
    assert ok(member(sender, 1, "x", "0")).sender == 7


@pytest.mark.parametrize("sender", ["abc", None, True, -1, 1.5, [], "7a"])
def test_anything_else_as_from_is_quarantined(sender: object) -> None:
    raw = json.dumps({"from": sender, "date": 1, "message": "x"}).encode()
    assert reason(raw) is Reason.BAD_SENDER


def test_dates_integer_float_and_string() -> None:
    assert ok(member(1, 1_700_000_000, "x", "0")).micros == 1_700_000_000_000_000
    assert ok(member(1, 1_700_000_000.25, "x", "0")).micros == 1_700_000_000_250_000
    raw = json.dumps({"from": 1, "date": "1700000001", "message": "x"}).encode()
    assert ok(raw).micros == 1_700_000_001_000_000


def test_a_missing_or_unusable_date_falls_back_to_the_score() -> None:
    raw = json.dumps({"from": 1, "message": "x"}).encode()
    parsed = ok(raw, b"1700000005")
    assert parsed.micros == 1_700_000_005_000_000 and parsed.date_from_score
    raw = json.dumps({"from": 1, "date": "soon", "message": "x"}).encode()
    assert ok(raw, 1_700_000_006.0).date_from_score
    assert reason(raw, b"inf") is Reason.BAD_DATE
    assert reason(json.dumps({"from": 1, "date": -5, "message": "x"}).encode(), b"nan") is Reason.BAD_DATE


def test_text_is_unescaped_exactly_once() -> None:
    typed = "a &lt; b, &copy; & <tag> \"q\" 'x'"
    assert ok(member(1, 1, typed, "0")).text == typed  # what the user typed, literally
    assert unescape_html("&amp;lt;") == "&lt;"
    assert unescape_html("&lt;&gt;&quot;&#39;&amp;") == "<>\"'&"
    assert unescape_html("&#34;&#x22;&#x27;&apos;") == "\"\"''"
    assert unescape_html("&copy; &AMP; &nbsp;") == "&copy; &AMP; &nbsp;"  # not entities this server wrote


@given(st.text())
def test_unescape_undoes_the_servers_escape(text: str) -> None:
    assert unescape_html(escape(text)) == text


def test_text_limits_count_characters_after_unescaping() -> None:
    assert ok(member(1, 1, "x" * MAX_TEXT_CHARS, "0")).text == "x" * MAX_TEXT_CHARS
    assert ok(member(1, 1, "<" * MAX_TEXT_CHARS, "0")).text == "<" * MAX_TEXT_CHARS  # 32,000 bytes stored
    assert reason(member(1, 1, "y" * (MAX_TEXT_CHARS + 1), "0")) is Reason.TOO_LONG
    assert reason(member(1, 1, "", "0")) is Reason.EMPTY_TEXT
    assert reason(member(1, 1, " \n\t\u00a0", "0")) is Reason.EMPTY_TEXT
    assert reason(member(1, 1, "a\x00b", "0")) is Reason.NUL_CHARACTER


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"{not json", Reason.NOT_JSON),
        (b'\xff\xfe{"from": 1}', Reason.NOT_UTF8),
        (b'{"from": 1, "date": 1, "message": "\xe9t\xe9"}', Reason.NOT_UTF8),  # latin-1 bytes in a JSON string
        (b"[1, 2]", Reason.NOT_AN_OBJECT),
        (b'"just a string"', Reason.NOT_AN_OBJECT),
        (b'{"from": 1, "date": 1}', Reason.NO_TEXT),
        (b'{"from": 1, "date": 1, "message": 5}', Reason.NO_TEXT),
        (b'{"from": 1, "date": 1, "message": "\\ud800"}', Reason.NOT_JSON),  # a lone surrogate
    ],
)
def test_broken_members_are_quarantined_by_category(raw: bytes, expected: Reason) -> None:
    assert reason(raw) is expected


def test_user_ids_and_keys() -> None:
    assert parse_user_id(b"12") == 12 and parse_user_id(True) is None and parse_user_id(None) is None
    assert room_of_key(b"room:0") == "0" and room_of_key(b"room:3:17") == "3:17"
    assert room_of_key(b"room:0:name") is None and room_of_key(b"user:1") is None
    assert user_of_key(b"user:5") == 5 and user_of_key(b"user:5:rooms") is None
    assert private_parties("3:17") == (3, 17) and private_parties("17:3") == (3, 17)
    assert private_parties("0") is None and private_parties("a:b") is None
    assert sorted(["2:3", "1", "0", "x"], key=room_sort_key) == ["0", "1", "2:3", "x"]


def test_micros_are_exact_for_integers_and_rounded_for_floats() -> None:
    assert to_micros(1_700_000_000) == 1_700_000_000_000_000
    assert to_micros(0.0000005) in (0, 1)
    assert to_micros(1.5) == 1_500_000
