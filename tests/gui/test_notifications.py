"""Which messages deserve a notification, and what it says."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from desktop_chat.models import ChatId, Message, MessageId, UserId
from desktop_chat.ui.notifications import PREVIEW_CHARS, notification_body, should_notify
from tests.gui.fakes import stable_id

ME = UserId(stable_id("me"))
THEM = UserId(stable_id("them"))
OPEN = ChatId(stable_id("open"))
OTHER = ChatId(stable_id("other"))


def message(sender: UserId, session: ChatId, *, deleted: bool = False) -> Message:
    at = datetime(2026, 11, 26, tzinfo=UTC)
    return Message(
        id=MessageId(stable_id("n", sender, session)),
        chat_id=session,
        sender_id=sender,
        content="hello",
        created_at=at,
        deleted_at=at if deleted else None,
        seq=1,
        rev=1,
    )


@pytest.mark.parametrize(
    ("sender", "session", "active", "deleted", "expected"),
    [
        (THEM, OTHER, True, False, True),  # another chat
        (THEM, OPEN, True, False, False),  # on screen
        (THEM, OPEN, False, False, True),  # window in the background
        (ME, OTHER, False, False, False),  # my own, from another device
        (THEM, OTHER, False, True, False),  # already deleted
    ],
)
def test_should_notify(sender: UserId, session: ChatId, active: bool, deleted: bool, expected: bool) -> None:
    assert (
        should_notify(message(sender, session, deleted=deleted), own_user=ME, open_chat=OPEN, window_active=active)
        is expected
    )


def test_the_body_is_one_short_line() -> None:
    assert notification_body("Bob", "a\nb") == "Bob: a b"
    assert notification_body(None, "x") == "x"
    long = notification_body(None, "word " * 100)
    assert len(long) == PREVIEW_CHARS and long.endswith("…")
