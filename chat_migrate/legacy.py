"""The legacy Redis layout, and turning its values into clean records (pure: no I/O).

The "Redis as the database" chat server keeps::

    total_users                 string      the last user id handed out
    username:{name}             string      "user:{id}"
    user:{id}                   hash        username, password (bcrypt $2b$, cost 10)
    user:{id}:rooms             set         room ids: "0" (the shared room) and private rooms "{a}:{b}", a < b
    room:{id}:name              string      a named room's title (room:0:name = "General")
    room:{id}                   sorted set  one JSON member per message, score int(date):
                                            {"from": user id, "date": unix seconds, "message": text, "roomId": id}
    online_users                set         ephemeral, not migrated

Real data is dirty, and every quirk below is handled here, deterministically:

- ``from`` is an integer or a string of digits; ``date`` an integer, a float or a numeric string (a
  missing or unusable date falls back to the member's score, which the server set to ``int(date)``);
- text was stored HTML-escaped once (``& < > " '``); it is unescaped exactly once, so ``&amp;lt;`` becomes
  ``&lt;`` and a literal ``&copy;`` typed by a user stays as typed;
- members that are not UTF-8, not JSON, not an object, without a sender or a text, with an empty text
  (nothing but whitespace), a text longer than the schema's 8,000 characters after unescaping, or a NUL
  character (PostgreSQL text cannot hold one) are quarantined, each under its own category;
- several messages with the same score are ordered by ``date``, then by the member's bytes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

import orjson

MAX_TEXT_CHARS = 8000  # chat_messages_content_length in the schema
SHARED_ROOM = "0"

# What the escaping servers wrote for the five characters, and nothing else. In escaped text every "&"
# starts one of these entities and none contains another, so replacing each one everywhere, "&amp;"
# last, is exactly one left-to-right pass: "&amp;lt;" becomes "&lt;", not "<". The first four are
# what the legacy server writes; the rest are other escapers' spellings (html.escape, markupsafe).
_COMMON = (("&lt;", "<"), ("&gt;", ">"), ("&quot;", '"'), ("&#39;", "'"))
_RARE = (("&#34;", '"'), ("&#x22;", '"'), ("&#x27;", "'"), ("&apos;", "'"))
_DIGITS = re.compile(r"\s*\+?(\d{1,18})\s*")
_ROOM_KEY = re.compile(rb"room:(?P<id>.+)")
_PRIVATE_ROOM = re.compile(r"(?P<a>\d{1,18}):(?P<b>\d{1,18})")
_USER_KEY = re.compile(rb"user:(?P<id>\d{1,18})")
# Dates a PostgreSQL timestamptz can hold comfortably: 1970 .. 9999.
_MAX_DATE = 253_402_300_799


class Reason(StrEnum):
    """Why a legacy message was quarantined (left out, reported, and kept in Redis and in the backup)."""

    NOT_UTF8 = "not_utf8"
    NOT_JSON = "not_json"
    NOT_AN_OBJECT = "not_an_object"
    BAD_SENDER = "bad_sender"
    BAD_DATE = "bad_date"
    NO_TEXT = "no_text"
    EMPTY_TEXT = "empty_text"
    TOO_LONG = "too_long"
    NUL_CHARACTER = "nul_character"
    ROOM_WITHOUT_MEMBERS = "room_without_members"


REASON_TEXT = {
    Reason.NOT_UTF8: "member is not valid UTF-8",
    Reason.NOT_JSON: "member is not valid JSON",
    Reason.NOT_AN_OBJECT: "member is JSON but not an object",
    Reason.BAD_SENDER: '"from" is missing or not a user id',
    Reason.BAD_DATE: '"date" and the score are both unusable as a time',
    Reason.NO_TEXT: '"message" is missing or not a string',
    Reason.EMPTY_TEXT: "text is empty or only whitespace",
    Reason.TOO_LONG: f"text is longer than {MAX_TEXT_CHARS} characters after unescaping",
    Reason.NUL_CHARACTER: "text contains a NUL character",
    Reason.ROOM_WITHOUT_MEMBERS: "room has no member left who exists (all its users are gone)",
}


class Message(NamedTuple):
    """One clean legacy message (a named tuple: a million of them are made per million messages).

    Attributes:
        sender: The legacy user id of ``from``.
        micros: ``date`` in microseconds since the Unix epoch (UTC).
        text: The text, unescaped once.
        date_from_score: The member's own ``date`` was unusable and the score stood in for it.
    """

    sender: int
    micros: int
    text: str
    date_from_score: bool = False


@dataclass(frozen=True, slots=True)
class Rejected:
    """A member that cannot be migrated, and why."""

    reason: Reason
    detail: str


def unescape_html(text: str) -> str:
    """Undo one round of the legacy server's HTML escaping."""
    if "&" not in text:
        return text
    if "&#" in text or "&apos;" in text:
        for entity, char in _RARE:
            text = text.replace(entity, char)
    for entity, char in _COMMON:
        text = text.replace(entity, char)
    return text.replace("&amp;", "&")


def parse_user_id(value: object) -> int | None:
    """A legacy user id from an int or a string of digits (``"7"``, ``" 7 "``); None otherwise."""
    if type(value) is int:  # the common case first (bool is an int subclass, and no user id)
        return value if value >= 0 else None
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, str):
        match = _DIGITS.fullmatch(value)
        return int(match.group(1)) if match else None
    if isinstance(value, bytes):
        return parse_user_id(value.decode("ascii", "replace"))
    return None


def _seconds(value: object) -> float | int | None:
    if type(value) is int:
        return value if 0 <= value <= _MAX_DATE else None
    if isinstance(value, bytes):  # a score as Redis sends it
        value = value.decode("ascii", "replace")
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number: float | int = value
    elif isinstance(value, str):
        try:
            number = float(value.strip()) if not value.strip().isdigit() else int(value.strip())
        except ValueError:
            return None
    else:
        return None
    if number != number or not 0 <= number <= _MAX_DATE:  # NaN, or outside what a timestamptz holds
        return None
    return number


def to_micros(seconds: float | int) -> int:
    """Unix seconds to whole microseconds; integers exactly, floats rounded half to even."""
    if isinstance(seconds, int):
        return seconds * 1_000_000
    return round(seconds * 1_000_000)


def _snippet(raw: bytes, limit: int = 80) -> str:
    text = raw[:limit].decode("utf-8", "backslashreplace")
    return text + ("…" if len(raw) > limit else "")


def parse_member(raw: bytes, score: float | bytes) -> Message | Rejected:
    """One sorted-set member (and its score, a number or Redis's bytes) as a clean :class:`Message`, or why not."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            return Rejected(Reason.NOT_UTF8, _snippet(raw))
        return Rejected(Reason.NOT_JSON, _snippet(raw))
    if not isinstance(value, dict):
        return Rejected(Reason.NOT_AN_OBJECT, _snippet(raw))
    sender = parse_user_id(value.get("from"))
    if sender is None:
        return Rejected(Reason.BAD_SENDER, f"from={value.get('from')!r}")
    seconds = _seconds(value.get("date"))
    from_score = False
    if seconds is None:
        seconds = _seconds(score)
        from_score = True
        if seconds is None:
            return Rejected(Reason.BAD_DATE, f"date={value.get('date')!r} score={score!r}")
    text = value.get("message")
    if not isinstance(text, str):
        return Rejected(Reason.NO_TEXT, f"message={_short(repr(text))}")
    text = unescape_html(text)
    if "\x00" in text:
        return Rejected(Reason.NUL_CHARACTER, _short(text.replace("\x00", "\\0")))
    if len(text) > MAX_TEXT_CHARS:
        return Rejected(Reason.TOO_LONG, f"{len(text)} characters: {_short(text)}")
    # Python's whitespace includes every character PostgreSQL's [[:space:]] does (in any locale), so a
    # text kept here always passes the schema's "not only whitespace" check.
    if not text or text.isspace():
        return Rejected(Reason.EMPTY_TEXT, repr(_short(text)))
    return Message(sender, to_micros(seconds), text, from_score)


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


# --- keys ----------------------------------------------------------------------------------------------


def room_of_key(key: bytes) -> str | None:
    """The room id of a ``room:{id}`` key (not of ``room:{id}:name``); None for any other key."""
    match = _ROOM_KEY.fullmatch(key)
    if match is None or key.endswith(b":name"):
        return None
    try:
        return match.group("id").decode("utf-8")
    except UnicodeDecodeError:
        return None


def user_of_key(key: bytes) -> int | None:
    """The user id of a ``user:{id}`` hash key; None for ``user:{id}:rooms`` and anything else."""
    match = _USER_KEY.fullmatch(key)
    return int(match.group("id")) if match else None


def private_parties(room: str) -> tuple[int, int] | None:
    """The two user ids of a private room ``"{a}:{b}"`` (in ascending order), or None for a named room."""
    match = _PRIVATE_ROOM.fullmatch(room)
    if match is None:
        return None
    a, b = int(match["a"]), int(match["b"])
    return (a, b) if a <= b else (b, a)


def room_sort_key(room: str) -> tuple[int, int, int, str]:
    """Rooms in a stable, human order: the shared room, named rooms by number, then private rooms."""
    if room.isdigit():
        return (0, int(room), 0, room)
    parties = private_parties(room)
    if parties is not None:
        return (1, parties[0], parties[1], room)
    return (2, 0, 0, room)
