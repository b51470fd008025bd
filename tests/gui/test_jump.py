"""Jumping to any message in the main window over the fake store: a window around an old message,
anchored while newer and older pages come, live messages kept for later, and the way back to the newest."""

from __future__ import annotations

import asyncio

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from desktop_chat.config import Settings
from desktop_chat.errors import BackendUnavailable
from desktop_chat.models import ChatId, MessageId
from desktop_chat.ui.bridge import StoreBridge
from desktop_chat.ui.main_window import MainWindow
from desktop_chat.ui.notifications import Notifier
from desktop_chat.ui.theme import Theme
from desktop_chat.ui.timeline_view import TimelineView
from tests.gui.conftest import NOW
from tests.gui.fakes import Cast, FakeChatStore, populated_store

HISTORY = 5000
TARGET = 2000


@pytest.fixture
def cast_and_store(qloop: asyncio.AbstractEventLoop) -> tuple[FakeChatStore, Cast]:
    return populated_store(history=HISTORY)


@pytest.fixture
def window(
    qtbot: QtBot, bridge: StoreBridge, cast: Cast, settings: Settings, theme: Theme, notifier: Notifier
) -> MainWindow:
    main = MainWindow(
        bridge, cast.alice, settings=settings, theme=theme, notifier=notifier, clock=lambda: NOW, is_active=lambda: True
    )
    qtbot.addWidget(main)
    main.resize(1000, 700)
    main.show()
    with qtbot.waitSignal(bridge.finished):
        bridge.refresh_chats()
    return main


def team(store: FakeChatStore) -> ChatId:
    return store.chat_id("Team")


def jump(qtbot: QtBot, window: MainWindow, bridge: StoreBridge, chat: ChatId, seq: int) -> MessageId:
    with qtbot.waitSignal(bridge.chat_opened_at):
        window.open_message(chat, seq)
    message_id = window.chat_panel.model.row_of_seq(seq)
    assert message_id is not None
    return message_id


def bubble_top(view: TimelineView, message_id: MessageId) -> int:
    view.executeDelayedItemsLayout()
    row = view.model().row_of(message_id)  # type: ignore[attr-defined]
    assert row is not None
    return view.visualRect(view.model().index(row, 0)).top() + round(view.message_delegate.geometry(row).bubble.top())


def on_screen(view: TimelineView, message_id: MessageId) -> bool:
    row = view.model().row_of(message_id)  # type: ignore[attr-defined]
    return row is not None and row in view.visible_rows()


def test_a_message_far_back_opens_centred_and_marked(
    qtbot: QtBot, window: MainWindow, bridge: StoreBridge, store: FakeChatStore
) -> None:
    target = jump(qtbot, window, bridge, team(store), TARGET)
    panel = window.chat_panel
    assert panel.chat_id == team(store)
    assert window.chat_list.list_view.currentIndex().data() == "Team"
    assert [m.seq for m in panel.model.items()] == list(range(TARGET - 25, TARGET + 26))
    assert panel.view.highlighted == target and on_screen(panel.view, target)
    assert panel.model.has_newer() and not panel.view.is_at_bottom()
    assert panel.view.jump_button.isVisible()
    assert ("open_chat", (team(store),)) not in store.calls  # straight to the window, not the newest page first
    qtbot.waitUntil(lambda: panel.view.highlighted is None, timeout=5000)  # the mark fades


def test_newer_and_older_pages_come_without_moving_what_the_user_reads(
    qtbot: QtBot, window: MainWindow, bridge: StoreBridge, store: FakeChatStore
) -> None:
    target = jump(qtbot, window, bridge, team(store), TARGET)
    view, model = window.chat_panel.view, window.chat_panel.model
    before = bubble_top(view, target)
    with qtbot.waitSignal(bridge.newer_loaded):
        assert model.fetch_newer()
    assert bubble_top(view, target) == before
    assert view.unseen == 0  # history below, not new messages
    model.set_older_wanted(True)
    with qtbot.waitSignal(bridge.older_loaded):
        model.fetchMore(model.index(0, 0).parent())
    assert bubble_top(view, target) == before
    assert [m.seq for m in model.items()] == list(range(TARGET - 75, TARGET + 76))


def test_scrolling_down_joins_the_newest_messages_and_then_follows_them(
    qtbot: QtBot, window: MainWindow, bridge: StoreBridge, store: FakeChatStore, cast: Cast
) -> None:
    jump(qtbot, window, bridge, team(store), HISTORY - 200)
    view, model = window.chat_panel.view, window.chat_panel.model
    store.receive(team(store), cast.bob, "while you were away")
    assert model.row_of_seq(HISTORY + 1) is None  # waits beyond the window, not lost
    bar = view.verticalScrollBar()

    def scrolled_to_the_end() -> bool:
        """The user keeps the scroll bar at the bottom; newer pages come as the view reaches it."""
        view.executeDelayedItemsLayout()
        bar.setValue(bar.maximum())
        return not model.has_newer()

    qtbot.waitUntil(scrolled_to_the_end, timeout=10_000)
    assert sum(1 for name, _ in store.calls if name == "load_newer") >= 4  # 200 newer messages, pages of 50
    qtbot.waitUntil(lambda: model.row_of_seq(HISTORY + 1) is not None)
    bar.setValue(bar.maximum())
    qtbot.waitUntil(view.is_at_bottom)
    store.receive(team(store), cast.bob, "and now live")
    assert model.item(model.rowCount() - 1).content == "and now live"
    qtbot.waitUntil(view.is_at_bottom)  # following again


def test_ctrl_end_goes_to_the_newest_messages_with_those_that_came_meanwhile(
    qtbot: QtBot, window: MainWindow, bridge: StoreBridge, store: FakeChatStore, cast: Cast
) -> None:
    jump(qtbot, window, bridge, team(store), TARGET)
    view, model = window.chat_panel.view, window.chat_panel.model
    store.receive(team(store), cast.bob, "meanwhile")
    with qtbot.waitSignal(bridge.chat_opened):
        qtbot.keyClick(view, Qt.Key.Key_End, Qt.KeyboardModifier.ControlModifier)
    assert model.item(model.rowCount() - 1).content == "meanwhile"
    assert not model.has_newer()
    qtbot.waitUntil(view.is_at_bottom)
    assert not view.jump_button.isVisible() or view.unseen == 0


def test_sending_from_far_back_shows_the_message_at_the_newest_end(
    qtbot: QtBot, window: MainWindow, bridge: StoreBridge, store: FakeChatStore
) -> None:
    jump(qtbot, window, bridge, team(store), TARGET)
    panel = window.chat_panel
    qtbot.keyClicks(panel.composer.editor, "back to the present")
    with qtbot.waitSignal(bridge.chat_opened):
        qtbot.keyClick(panel.composer.editor, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: panel.model.item(panel.model.rowCount() - 1).content == "back to the present")
    assert not panel.model.has_newer()


def test_a_loaded_message_is_scrolled_to_without_asking_the_store(
    qtbot: QtBot, window: MainWindow, bridge: StoreBridge, store: FakeChatStore
) -> None:
    with qtbot.waitSignal(bridge.chat_opened):
        window.open_chat(team(store))
    panel = window.chat_panel
    message_id = panel.model.row_of_seq(HISTORY - 40)
    assert message_id is not None
    window.open_message(team(store), HISTORY - 40)
    assert panel.view.highlighted == message_id and on_screen(panel.view, message_id)
    assert not any(name == "open_at" for name, _ in store.calls)


def test_a_first_unread_message_far_back_is_jumped_to_with_its_divider(
    qtbot: QtBot, window: MainWindow, bridge: StoreBridge, store: FakeChatStore, cast: Cast
) -> None:
    store.set_read_position(team(store), cast.alice, HISTORY - 1000)
    with qtbot.waitSignal(bridge.finished):
        bridge.refresh_chats()
    with qtbot.waitSignal(bridge.chat_opened_at):
        window.open_chat(team(store))
    panel = window.chat_panel
    row = panel.model.first_unread_row()
    assert row is not None
    assert (panel.model.item(row).seq or 0) > HISTORY - 1000
    assert row in panel.view.visible_rows()
    assert panel.model.has_newer()


def test_at_the_bottom_of_a_window_far_back_a_newer_page_does_not_pull_the_view_down(
    qtbot: QtBot, window: MainWindow, bridge: StoreBridge, store: FakeChatStore
) -> None:
    jump(qtbot, window, bridge, team(store), TARGET)
    view = window.chat_panel.view
    bar = view.verticalScrollBar()
    view.executeDelayedItemsLayout()
    with qtbot.waitSignal(bridge.newer_loaded):
        bar.setValue(bar.maximum())
    last_seen = window.chat_panel.model.row_of_seq(TARGET + 25)
    assert last_seen is not None and on_screen(view, last_seen)  # still where the user was
    view.executeDelayedItemsLayout()
    assert bar.maximum() - bar.value() > view.viewport().height()  # the new page lies below, unseen
    assert not view.is_at_bottom()


def test_a_jump_that_fails_says_why_and_shows_the_newest_messages(
    qtbot: QtBot, window: MainWindow, bridge: StoreBridge, store: FakeChatStore
) -> None:
    store.fail_next("open_at", BackendUnavailable("Cannot reach the server."))
    with qtbot.waitSignal(bridge.chat_opened):
        window.open_message(team(store), TARGET)
    panel = window.chat_panel
    assert panel.notice.isVisible() and panel.notice.text().startswith("Cannot show the message: Cannot reach")
    assert panel.model.item(panel.model.rowCount() - 1).seq == HISTORY  # the newest, not an empty chat
