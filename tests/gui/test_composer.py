"""The composer: Enter sends, Shift+Enter breaks the line, limits are checked before anything is sent."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from desktop_chat.models import MAX_MESSAGE_CHARS, ChatId, Message, MessageId, UserId
from desktop_chat.ui.composer import COUNTER_MARGIN, Composer
from tests.gui.fakes import stable_id


@pytest.fixture
def composer(qtbot: QtBot) -> Composer:
    widget = Composer()
    qtbot.addWidget(widget)
    widget.show()
    return widget


def test_enter_sends_and_clears(qtbot: QtBot, composer: Composer) -> None:
    qtbot.keyClicks(composer.editor, "hello there")
    with qtbot.waitSignal(composer.send_requested) as sent:
        qtbot.keyClick(composer.editor, Qt.Key.Key_Return)
    assert sent.args == ["hello there"]
    assert composer.text == ""


def test_shift_enter_starts_a_new_line_without_sending(qtbot: QtBot, composer: Composer) -> None:
    sent: list[str] = []
    composer.send_requested.connect(sent.append)
    qtbot.keyClicks(composer.editor, "first")
    qtbot.keyClick(composer.editor, Qt.Key.Key_Return, Qt.KeyboardModifier.ShiftModifier)
    qtbot.keyClicks(composer.editor, "second")
    assert composer.text == "first\nsecond"
    assert sent == []
    qtbot.keyClick(composer.editor, Qt.Key.Key_Enter, Qt.KeyboardModifier.KeypadModifier)
    assert sent == ["first\nsecond"]


def test_blank_text_is_not_sent(qtbot: QtBot, composer: Composer) -> None:
    sent: list[str] = []
    composer.send_requested.connect(sent.append)
    qtbot.keyClicks(composer.editor, "   ")
    qtbot.keyClick(composer.editor, Qt.Key.Key_Return)
    assert sent == []
    assert not composer.send_button.isEnabled()


def test_the_counter_appears_near_the_limit_and_warns_past_it(qtbot: QtBot, composer: Composer) -> None:
    composer.set_text("x" * (MAX_MESSAGE_CHARS - COUNTER_MARGIN - 1))
    assert composer.counter.isHidden()
    composer.set_text("x" * (MAX_MESSAGE_CHARS - COUNTER_MARGIN))
    assert composer.counter.isVisible()
    assert composer.counter.text() == f"{MAX_MESSAGE_CHARS - COUNTER_MARGIN:,} / {MAX_MESSAGE_CHARS:,}"
    assert composer.counter.property("over") is False
    assert composer.send_button.isEnabled()
    composer.set_text("x" * (MAX_MESSAGE_CHARS + 1))
    assert composer.counter.property("over") is True
    assert not composer.send_button.isEnabled()
    sent: list[str] = []
    composer.send_requested.connect(sent.append)
    qtbot.keyClick(composer.editor, Qt.Key.Key_Return)
    assert sent == []
    assert composer.error_label.text() == "The message is 8,001 characters long; the limit is 8,000."
    assert len(composer.text) == MAX_MESSAGE_CHARS + 1  # nothing the user typed is lost


def test_typing_is_reported_on_the_first_key_and_withdrawn_on_send(qtbot: QtBot, composer: Composer) -> None:
    states: list[bool] = []
    composer.typing_changed.connect(states.append)
    qtbot.keyClicks(composer.editor, "abc")
    assert states == [True]
    qtbot.keyClick(composer.editor, Qt.Key.Key_Return)
    assert states == [True, False]


def test_editing_a_message_submits_an_edit_and_esc_cancels(qtbot: QtBot, composer: Composer) -> None:
    message = Message(
        id=MessageId(stable_id("edit")),
        chat_id=ChatId(stable_id("chat")),
        sender_id=UserId(stable_id("me")),
        content="original",
        created_at=datetime(2026, 11, 26, tzinfo=UTC),
        seq=3,
        rev=3,
    )
    composer.start_edit(message)
    assert composer.edit_banner.isVisible()
    assert composer.text == "original"
    composer.editor.selectAll()
    qtbot.keyClicks(composer.editor, "changed")
    with qtbot.waitSignal(composer.edit_submitted) as edited:
        qtbot.keyClick(composer.editor, Qt.Key.Key_Return)
    assert edited.args == [message.id, "changed"]
    assert composer.editing is None and composer.edit_banner.isHidden()
    composer.start_edit(message)
    qtbot.keyClick(composer.editor, Qt.Key.Key_Escape)
    assert composer.editing is None and composer.text == ""


def test_text_comes_back_after_a_failed_send_unless_something_new_was_typed(composer: Composer) -> None:
    composer.give_back("lost words")
    assert composer.text == "lost words"
    composer.set_text("new words")
    composer.give_back("lost words")
    assert composer.text == "new words"


def test_the_editor_grows_with_lines_and_stops_growing(qtbot: QtBot, composer: Composer) -> None:
    one_line = composer.editor.height()
    composer.set_text("a\nb\nc")
    three_lines = composer.editor.height()
    assert three_lines > one_line
    composer.set_text("\n".join("x" * 30))
    assert composer.editor.height() > three_lines
    tall = composer.editor.height()
    composer.set_text("\n".join("y" * 60))
    assert composer.editor.height() == tall  # it scrolls from here on
