"""The limits the database enforces, checked before anything is sent (same numbers as the migration)."""

from __future__ import annotations

import re

from desktop_chat.errors import InvalidInput

MAX_MESSAGE_CHARS = 8000
MAX_TITLE_CHARS = 200
MAX_DISPLAY_NAME_CHARS = 100
MAX_EMOJI_CHARS = 16
MAX_EMOJI_BYTES = 64
MAX_SEARCH_CHARS = 500

# Postgres's [[:space:]] in the check constraints; Python's str.isspace agrees on these.
_HAS_VISIBLE = re.compile(r"\S")


def _check(value: str, what: str, limit: int) -> str:
    if not _HAS_VISIBLE.search(value):
        raise InvalidInput(f"The {what} is empty.")
    if len(value) > limit:
        raise InvalidInput(f"The {what} is {len(value):,} characters long; the limit is {limit:,}.")
    return value


def validate_message_text(text: str) -> str:
    """Return ``text`` unchanged if the database would accept it as message content, else raise."""
    # Characters, not bytes: Postgres's char_length counts code points, and so does len(str).
    return _check(text, "message", MAX_MESSAGE_CHARS)


def validate_title(title: str) -> str:
    """Return ``title`` stripped if it is a valid chat title, else raise."""
    return _check(title.strip(), "chat title", MAX_TITLE_CHARS)


def validate_display_name(name: str) -> str:
    """Return ``name`` stripped if it is a valid display name, else raise."""
    return _check(name.strip(), "display name", MAX_DISPLAY_NAME_CHARS)


# The reaction check of message_reactions: no whitespace, no control characters (Postgres's [[:space:]]
# and [[:cntrl:]]: C0, DEL and C1), no ASCII letters, at least one character beyond ASCII.
_EMOJI_FORBIDDEN = re.compile(r"[\s\x00-\x1f\x7f-\x9f]|[A-Za-z]")
_NON_ASCII = re.compile(r"[^\x00-\x7f]")


def validate_emoji(emoji: str) -> str:
    """Return ``emoji`` unchanged if the database would accept it as a reaction, else raise."""
    if not emoji:
        raise InvalidInput("The reaction is empty.")
    if len(emoji) > MAX_EMOJI_CHARS or len(emoji.encode()) > MAX_EMOJI_BYTES:
        raise InvalidInput(f"The reaction is {len(emoji)} characters long; an emoji has at most {MAX_EMOJI_CHARS}.")
    if _EMOJI_FORBIDDEN.search(emoji) or not _NON_ASCII.search(emoji):
        raise InvalidInput("A reaction is one emoji (no letters, blanks or control characters).")
    return emoji


def validate_search_text(text: str) -> str:
    """Return ``text`` unchanged if it is short enough to search for, else raise.

    Blank text is allowed: it finds nothing.
    """
    if len(text) > MAX_SEARCH_CHARS:
        raise InvalidInput(f"The search text is {len(text):,} characters long; the limit is {MAX_SEARCH_CHARS}.")
    return text
