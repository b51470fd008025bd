"""The limits the database enforces, checked before anything is sent (same numbers as the migration)."""

from __future__ import annotations

import re

from desktop_chat.errors import InvalidInput

MAX_MESSAGE_CHARS = 8000
MAX_TITLE_CHARS = 200
MAX_DISPLAY_NAME_CHARS = 100

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
