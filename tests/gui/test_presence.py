"""Presence in the window: a dot on the chat's avatar in the list, on a sender's avatar in the timeline,
and beside the member's name; never for oneself, and gone when the person leaves. And coming back to the
window asks the data layer to check that nothing was missed."""

from __future__ import annotations

from datetime import date

from PySide6.QtCore import QEvent, QRect, Qt
from PySide6.QtGui import QColor, QImage, QPainter
from PySide6.QtWidgets import QApplication, QStyleOptionViewItem, QWidget
from pytestqt.qtbot import QtBot

from desktop_chat.models import ChatId
from desktop_chat.ui.bridge import StoreBridge
from desktop_chat.ui.chat_list_model import ChatRole
from desktop_chat.ui.dialogs import MembersDialog
from desktop_chat.ui.main_window import MainWindow
from desktop_chat.ui.theme import LIGHT
from tests.gui.fakes import Cast, FakeChatStore
from tests.gui.test_main_window import Switches, open_chat, switches, window

__all__ = ["Switches", "switches", "window"]


def dot_pixels(image: QImage, color: QColor = LIGHT.online) -> int:
    """How many pixels have exactly the dot's colour (its inside; the edges are blended)."""
    wanted = color.rgb()
    return sum(1 for y in range(image.height()) for x in range(image.width()) if image.pixel(x, y) == wanted)


def paint_chat_row(window: MainWindow, chat_id: ChatId) -> QImage:
    panel = window.chat_list
    row = panel.proxy.mapFromSource(window.chats.index(window.chats.row_of(chat_id) or 0, 0))
    option = QStyleOptionViewItem()
    option.initFrom(panel.list_view)
    size = panel.list_view.itemDelegate().sizeHint(option, row)
    option.rect = QRect(0, 0, size.width(), size.height())
    image = QImage(size, QImage.Format.Format_RGB32)
    image.fill(LIGHT.surface)
    painter = QPainter(image)
    panel.list_view.itemDelegate().paint(painter, option, row)
    painter.end()
    return image


def grab(widget: QWidget) -> QImage:
    return widget.grab().toImage().convertToFormat(QImage.Format.Format_RGB32)


def test_a_chat_with_someone_else_online_gets_a_dot_on_its_avatar(
    qtbot: QtBot, window: MainWindow, store: FakeChatStore, cast: Cast
) -> None:
    team = store.chat_id("Team")
    row = window.chats.row_of(team)
    assert row is not None
    assert dot_pixels(paint_chat_row(window, team)) == 0
    store.presence(team, [cast.alice])  # only oneself: no dot
    assert window.chats.index(row, 0).data(ChatRole.ONLINE) == 0
    assert dot_pixels(paint_chat_row(window, team)) == 0
    with qtbot.waitSignal(window.chats.dataChanged):
        store.presence(team, [cast.alice, cast.bob])
    assert window.chats.index(row, 0).data(ChatRole.ONLINE) == 1
    assert dot_pixels(paint_chat_row(window, team)) > 4
    assert "online" in str(window.chats.index(row, 0).data(Qt.ItemDataRole.AccessibleTextRole))
    assert dot_pixels(paint_chat_row(window, store.chat_id("Bob"))) == 0  # only the chat whose people are there
    store.presence(team, [cast.alice])  # bob left
    assert window.chats.index(row, 0).data(ChatRole.ONLINE) == 0
    assert dot_pixels(paint_chat_row(window, team)) == 0


def test_the_timeline_dots_the_avatars_of_senders_who_are_online(
    qtbot: QtBot, window: MainWindow, bridge: StoreBridge, store: FakeChatStore, cast: Cast
) -> None:
    chat = store.chat_id("Bob")
    open_chat(qtbot, window, bridge, chat)
    window.chat_panel.view.message_delegate.set_today(date(2026, 11, 26))
    store.receive(chat, cast.bob, "are you there?")
    view = window.chat_panel.view
    qtbot.waitUntil(lambda: window.chat_panel.model.rowCount() > 0)
    before = dot_pixels(grab(view.viewport()))
    store.presence(chat, [cast.alice, cast.bob])
    model = window.chat_panel.model
    assert model.is_online(model.item(model.rowCount() - 1))
    qtbot.waitUntil(lambda: dot_pixels(grab(view.viewport())) > before + 4)
    store.presence(chat, [cast.alice])
    assert not model.is_online(model.item(model.rowCount() - 1))
    qtbot.waitUntil(lambda: dot_pixels(grab(view.viewport())) == before)
    # Another chat's presence does not touch the open one, and one's own messages never get the dot.
    store.presence(store.chat_id("Team"), [cast.bob])
    assert not model.is_online(model.item(model.rowCount() - 1))
    store.presence(chat, [cast.alice, cast.bob])
    own = [model.item(row) for row in range(model.rowCount()) if model.is_own(model.item(row))]
    assert all(not model.is_online(message) for message in own)


def test_the_members_list_marks_who_is_online_and_follows_changes(
    qtbot: QtBot, window: MainWindow, bridge: StoreBridge, store: FakeChatStore, cast: Cast
) -> None:
    team = store.chat_id("Team")
    open_chat(qtbot, window, bridge, team)
    store.presence(team, [cast.alice, cast.bob])
    with qtbot.waitSignal(bridge.members_loaded):
        window.chat_panel.show_members()
    dialog = window.chat_panel.findChild(MembersDialog)
    assert dialog is not None
    qtbot.waitUntil(lambda: dialog.member_list.count() == 3)

    def marked() -> dict[str, bool]:
        items = [dialog.member_list.item(row) for row in range(dialog.member_list.count())]
        return {
            str(item.data(Qt.ItemDataRole.UserRole + 1)): str(item.data(Qt.ItemDataRole.AccessibleTextRole)).endswith(
                ", online"
            )
            for item in items
        }

    assert marked() == {"Alice Martin (you) · owner": False, "Bob Chen": True, "Carol Diaz": False}
    assert dialog.is_online(cast.bob.id) and not dialog.is_online(cast.alice.id)
    store.presence(team, [cast.alice, cast.carol])
    assert marked() == {"Alice Martin (you) · owner": False, "Bob Chen": False, "Carol Diaz": True}
    store.presence(store.chat_id("Bob"), [cast.bob])  # another chat: nothing changes here
    assert marked()["Bob Chen"] is False
    dialog.close()


def test_coming_back_to_the_window_asks_the_data_layer_to_catch_up(
    qtbot: QtBot, window: MainWindow, bridge: StoreBridge, store: FakeChatStore, switches: Switches
) -> None:
    open_chat(qtbot, window, bridge, store.chat_id("Team"))
    switches.active = False
    qtbot.wait(1)
    before = store.call_names().count("catch_up")  # the window's first activation counts too
    QApplication.sendEvent(window, QEvent(QEvent.Type.ActivationChange))  # the window went away
    assert store.call_names().count("catch_up") == before
    switches.active = True
    QApplication.sendEvent(window, QEvent(QEvent.Type.ActivationChange))  # and came back
    assert store.call_names().count("catch_up") == before + 1
