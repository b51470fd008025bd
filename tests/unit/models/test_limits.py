"""The client checks the same limits as the database before sending anything."""

from __future__ import annotations

import pytest

from desktop_chat.errors import InvalidInput
from desktop_chat.models import validate_display_name, validate_message_text, validate_title


def test_message_limits() -> None:
    assert validate_message_text("x" * 8000) == "x" * 8000
    assert validate_message_text("  padded  ") == "  padded  "  # content is stored as typed
    with pytest.raises(InvalidInput, match="8,001 characters long; the limit is 8,000"):
        validate_message_text("x" * 8001)
    for empty in ("", "   ", "\n\t "):
        with pytest.raises(InvalidInput, match="empty"):
            validate_message_text(empty)


def test_limits_count_characters_not_bytes() -> None:
    assert validate_message_text("é" * 8000)
    assert validate_title("🙂" * 200)


def test_title_and_display_name_limits() -> None:
    assert validate_title("  Team  ") == "Team"
    with pytest.raises(InvalidInput):
        validate_title("t" * 201)
    with pytest.raises(InvalidInput):
        validate_display_name(" ")
    assert validate_display_name("Al") == "Al"
