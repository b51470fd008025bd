"""The main window over the fake store: chatting, read state, chat management, notifications, status."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from desktop_chat.config import Settings
from desktop_chat.dal.api import CacheStatus, ConnectionState, StoreStatus
from desktop_chat.errors import BackendUnavailable, LocalStorageError
from desktop_chat.models import ChatId, DeliveryState
from desktop_chat.ui.bridge import StoreBridge
from desktop_chat.ui.chat_list_model import ChatRole
from desktop_chat.ui.dialogs import MembersDialog, NewChatDialog, QuickSwitcher, RenameChatDialog
from desktop_chat.ui.main_window import MainWindow
from desktop_chat.ui.notifications import Notifier
from desktop_chat.ui.theme import Theme
from tests.gui.conftest import NOW
from tests.gui.fakes import Cast, FakeChatStore


class Switches:
    """What the tests decide: is the window in front, does the user confirm."""

    def __init__(self) -> None:
        self.active = True
        self.confirm = True
        self.questions: list[str] = []
        self.texts: list[str] = []

    def ask(self, _parent: object, title: str, text: str, _action: str) -> bool:
        self.questions.append(title)
        self.texts.append(text)
        return self.confirm


@pytest.fixture
def switches() -> Switches:
    return Switches()


@pytest.fixture
def window(
    qtbot: QtBot,
    bridge: StoreBridge,
    store: FakeChatStore,
    cast: Cast,
    settings: Settings,
    theme: Theme,
    notifier: Notifier,
    switches: Switches,
) -> MainWindow:
    main = MainWindow(
        bridge,
        cast.alice,
        settings=settings,
        theme=theme,
        notifier=notifier,
        clock=lambda: NOW,
        confirm=switches.ask,
        is_active=lambda: switches.active,
    )
    qtbot.addWidget(main)
    main.resize(1000, 700)
    main.show()
    with qtbot.waitSignal(bridge.finished):
        bridge.refresh_chats()
    return main


def open_chat(qtbot: QtBot, window: MainWindow, bridge: StoreBridge, chat_id: ChatId) -> None:
    with qtbot.waitSignals([bridge.chat_opened, bridge.chat_details_loaded]):
        window.open_chat(chat_id)
    assert window.chat_panel.model.chat_id == chat_id


def last_row_text(window: MainWindow) -> str:
    model = window.chat_panel.model
    return model.item(model.rowCount() - 1).content


def test_sending_shows_the_message_at_once_and_the_tick_when_delivered(
    qtbot: QtBot, window: MainWindow, bridge: StoreBridge, store: FakeChatStore
) -> None:
    open_chat(qtbot, window, bridge, store.chat_id("Team"))
    composer = window.chat_panel.composer
    qtbot.keyClicks(composer.editor, "On my way")
    qtbot.keyClick(composer.editor, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: last_row_text(window) == "On my way")
    model = window.chat_panel.model
    assert model.item(model.rowCount() - 1).delivery is DeliveryState.PENDING
    assert composer.text == ""
    store.deliver(store.pending()[0].id)
    assert model.item(model.rowCount() - 1).delivery is DeliveryState.SENT
    assert window.chat_list.list_view.currentIndex().data() == "Team"


def test_a_send_that_cannot_be_queued_keeps_the_text_and_says_why(
    qtbot: QtBot, window: MainWindow, bridge: StoreBridge, store: FakeChatStore
) -> None:
    open_chat(qtbot, window, bridge, store.chat_id("Team"))
    store.fail_next("send", LocalStorageError("The outbox cannot be written: the disk is full."))
    composer = window.chat_panel.composer
    qtbot.keyClicks(composer.editor, "important")
    qtbot.keyClick(composer.editor, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: composer.error_label.isVisible())
    assert composer.error_label.text() == "The outbox cannot be written: the disk is full."
    assert composer.text == "important"


def test_the_newest_visible_message_is_marked_read_only_while_the_window_is_active(
    qtbot: QtBot, window: MainWindow, bridge: StoreBridge, store: FakeChatStore, switches: Switches
) -> None:
    team = store.chat_id("Team")
    store.receive(team, store.user("bob@example.com"), "unread until seen")  # seq 121
    switches.active = False
    open_chat(qtbot, window, bridge, team)
    qtbot.wait(500)  # longer than the debounce
    assert "mark_read" not in store.call_names()
    switches.active = True
    window.chat_panel.mark_read_now()
    qtbot.waitUntil(lambda: "mark_read" in store.call_names())
    assert ("mark_read", (team, 121)) in store.calls
    assert window.chats.unread_total() == 0
    window.chat_panel.mark_read_now()
    assert store.call_names().count("mark_read") == 1  # nothing newer on screen


def test_messages_that_came_in_the_background_are_read_when_the_window_comes_to_the_front(
    qtbot: QtBot, window: MainWindow, bridge: StoreBridge, store: FakeChatStore, switches: Switches, cast: Cast
) -> None:
    team = store.chat_id("Team")
    open_chat(qtbot, window, bridge, team)
    qtbot.waitUntil(lambda: window.chats.unread_total() == 0)
    switches.active = False  # the user went to another window
    for n in range(3):
        store.receive(team, cast.bob, f"while you were away {n}")
    qtbot.wait(500)  # longer than the debounce: nothing is read while no one looks
    assert window.chats.summary(team).unread_count == 3  # type: ignore[union-attr]
    # The user comes back: the window is activated (Qt tells the window, not each widget in it).
    switches.active = True
    QApplication.sendEvent(window, QEvent(QEvent.Type.ActivationChange))
    qtbot.waitUntil(lambda: window.chats.summary(team).unread_count == 0)  # type: ignore[union-attr]
    assert store.calls[-1] == ("mark_read", (team, 123))


@pytest.mark.parametrize("unread", [30, 80])  # within the first page, and beyond it
def test_a_chat_with_unread_messages_opens_where_they_start_under_a_divider(
    qtbot: QtBot, window: MainWindow, bridge: StoreBridge, store: FakeChatStore, cast: Cast, unread: int
) -> None:
    team = store.chat_id("Team")
    store.set_read_position(team, cast.alice, 120 - unread)
    summary = window.chats.summary(team)
    assert summary is not None and summary.unread_count == unread
    window.open_chat(team)
    view, model = window.chat_panel.view, window.chat_panel.model
    qtbot.waitUntil(lambda: model.first_unread_row() is not None and view.visible_rows().start > 0)
    row = model.first_unread_row()
    assert row is not None
    first = model.item(row)
    assert first.seq is not None and first.seq > 120 - unread and first.sender_id != cast.alice.id
    assert all(
        m.seq is not None and (m.seq <= 120 - unread or m.sender_id == cast.alice.id) for m in model.items()[:row]
    )
    assert view.message_delegate.geometry(row).divider  # the "New messages" line is painted above it
    qtbot.waitUntil(lambda: view.visible_rows().start == row)  # at the top of the screen
    assert not view.is_at_bottom()
    below = model.unread_below(view.visible_rows().stop - 1)
    assert below > 0 and view.jump_button.isVisible()
    assert view.jump_button.text() == f"↓  {below} new messages"


def test_a_chat_opened_offline_names_people_it_knows_and_catches_up_when_live_returns(
    qtbot: QtBot, window: MainWindow, bridge: StoreBridge, store: FakeChatStore, cast: Cast
) -> None:
    open_chat(qtbot, window, bridge, store.chat_id("Team"))  # the window learns Bob's and Carol's names
    offline = StoreStatus(connection=ConnectionState.OFFLINE, cache=CacheStatus.ONLINE, backend_reachable=False)
    store.set_status(offline)
    store.fail_next("chat_details", BackendUnavailable("Cannot reach the server."))
    bob_chat = store.chat_id("Bob")
    store.add_message(bob_chat, cast.bob, "sent while you were away")
    panel = window.chat_panel
    with qtbot.waitSignal(bridge.failed):
        window.open_chat(bob_chat)
    qtbot.waitUntil(lambda: panel.model.rowCount() > 0)
    last = panel.model.item(panel.model.rowCount() - 1)
    assert panel.model.sender_name(last) == "Bob Chen"  # known from another chat, not "Someone"
    assert panel.subtitle_label.text() == ""  # the members are not known yet
    # Live again: the members are loaded without reopening the chat.
    with qtbot.waitSignal(bridge.chat_details_loaded):
        store.set_status(StoreStatus(connection=ConnectionState.LIVE, cache=CacheStatus.ONLINE))
    assert panel.subtitle_label.text() == "2 members"


def test_a_sender_the_window_cannot_name_gets_the_members_loaded(
    qtbot: QtBot, window: MainWindow, bridge: StoreBridge, store: FakeChatStore, cast: Cast
) -> None:
    team = store.chat_id("Team")
    open_chat(qtbot, window, bridge, team)
    dave = cast.dave
    with qtbot.waitSignal(bridge.chat_details_loaded):
        # Dave joins and says hello: the window has never seen his name.
        store._chats[team].members[dave.id] = (
            store._chats[team]
            .members[cast.bob.id]
            .model_copy(update={"user_id": dave.id, "display_name": dave.display_name})
        )
        store.receive(team, dave, "hi all, just joined")
    last = window.chat_panel.model.item(window.chat_panel.model.rowCount() - 1)
    assert window.chat_panel.model.sender_name(last) == "Dave Okafor"


def test_a_message_waiting_to_go_out_is_the_chats_preview_and_moves_it_up(
    qtbot: QtBot, window: MainWindow, bridge: StoreBridge, store: FakeChatStore
) -> None:
    release = store.chat_id("Release 0.2")  # the oldest chat, at the bottom
    assert window.chats.row_of(release) == window.chats.rowCount() - 1
    with qtbot.waitSignal(bridge.message_queued):
        bridge.send(release, "written on the train")
    assert window.chats.row_of(release) == 0
    index = window.chats.index(0, 0)
    assert index.data(ChatRole.PREVIEW) == "Sending: written on the train"
    (pending,) = store.pending()
    store.reject(pending.id, "You can no longer post in this chat")
    assert window.chats.index(0, 0).data(ChatRole.PREVIEW) == "Not sent: written on the train"
    with qtbot.waitSignal(bridge.finished):
        bridge.retry(pending.id)
    store.deliver(pending.id)
    assert window.chats.index(0, 0).data(ChatRole.PREVIEW) == "written on the train"


def test_signing_out_asks_first_and_says_what_happens(
    qtbot: QtBot, window: MainWindow, store: FakeChatStore, switches: Switches
) -> None:
    store.set_status(StoreStatus(connection=ConnectionState.OFFLINE, cache=CacheStatus.ONLINE, outbox_depth=2))
    signed_out: list[bool] = []
    window.sign_out_requested.connect(lambda: signed_out.append(True))
    switches.confirm = False
    sign_out = next(a for a in window.actions() if a.text() == "Sign &out…")
    sign_out.trigger()
    assert signed_out == []  # said no: still signed in
    assert switches.texts == [
        "Sign out Alice Martin? The chats saved on this computer for Alice Martin are removed."
        " 2 messages waiting to be sent will go out when Alice Martin signs in again."
    ]
    switches.confirm = True
    sign_out.trigger()
    assert signed_out == [True]


def test_everyone_in_a_chat_has_a_colour_of_their_own(
    qtbot: QtBot, window: MainWindow, bridge: StoreBridge, store: FakeChatStore, cast: Cast
) -> None:
    open_chat(qtbot, window, bridge, store.chat_id("Team"))
    model = window.chat_panel.model
    hues = [model.hue_of(person.id) for person in (cast.alice, cast.bob, cast.carol)]
    assert len(set(hues)) == 3
    assert min(abs(a - b) for a in hues for b in hues if a != b) >= 30


def test_a_short_chat_sits_at_the_bottom_next_to_the_composer(
    qtbot: QtBot, window: MainWindow, bridge: StoreBridge, store: FakeChatStore, cast: Cast
) -> None:
    bob = store.chat_id("Bob")
    for text in ("Hi!", "Lunch?", "Sure"):
        store.add_message(bob, cast.bob, text)
    open_chat(qtbot, window, bridge, bob)
    view, model = window.chat_panel.view, window.chat_panel.model
    qtbot.waitUntil(lambda: model.rowCount() == 3)
    view.executeDelayedItemsLayout()
    viewport = view.viewport()
    last = view.visualRect(model.index(2, 0))
    first = view.visualRect(model.index(0, 0))
    assert viewport.height() - last.bottom() <= view.fontMetrics().height()  # at the bottom…
    assert first.top() >= 0 and viewport.mapTo(view, first.topLeft()).y() > view.height() // 2  # …not the top
    # A message more still lands at the bottom, the rest moving up.
    store.receive(bob, cast.bob, "at one?")
    qtbot.waitUntil(lambda: model.rowCount() == 4)
    view.executeDelayedItemsLayout()
    assert view.viewport().height() - view.visualRect(model.index(3, 0)).bottom() <= view.fontMetrics().height()


def test_new_chat_with_members_opens_it(
    qtbot: QtBot, window: MainWindow, bridge: StoreBridge, store: FakeChatStore
) -> None:
    dialog = window.new_chat()
    dialog.title_edit.setText("Offsite")
    dialog.members_edit.setText("bob@example.com, dave@example.com")
    with qtbot.waitSignal(dialog.finished):
        qtbot.mouseClick(dialog.create_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.chat_panel.title_label.text() == "Offsite")
    assert window.chat_list.list_view.currentIndex().data() == "Offsite"
    assert ("create_chat", ("Offsite", ("bob@example.com", "dave@example.com"))) in store.calls


def test_new_chat_errors_stay_in_the_dialog(qtbot: QtBot, window: MainWindow, store: FakeChatStore) -> None:
    dialog = window.new_chat()
    dialog.title_edit.setText("Offsite")
    dialog.members_edit.setText("bob@example")
    dialog.submit()
    assert dialog.error_label.text() == "“bob@example” is not an email address."
    dialog.members_edit.setText("zed@example.com")
    dialog.submit()
    qtbot.waitUntil(lambda: not dialog.busy)
    assert dialog.error_label.text() == "There is no account for zed@example.com."
    assert dialog.isVisible()
    qtbot.keyClick(dialog, Qt.Key.Key_Escape)
    assert not dialog.isVisible()


def test_after_an_error_in_the_new_chat_dialog_the_cursor_stays_where_the_user_was_typing(
    qtbot: QtBot, window: MainWindow
) -> None:
    dialog = window.new_chat()
    qtbot.waitExposed(dialog)
    dialog.activateWindow()
    dialog.title_edit.setText("Offsite")
    dialog.members_edit.setFocus()
    qtbot.keyClicks(dialog.members_edit, "zed@example.com")
    qtbot.keyClick(dialog.members_edit, Qt.Key.Key_Return)  # Enter submits
    qtbot.waitUntil(lambda: dialog.error_label.isVisible() and not dialog.busy)
    assert dialog.error_label.text() == "There is no account for zed@example.com."
    assert QApplication.focusWidget() is dialog.members_edit  # not the Create button
    qtbot.keyClick(dialog.members_edit, Qt.Key.Key_Backspace)
    qtbot.keyClicks(dialog.members_edit, "m")
    assert dialog.members_edit.text() == "zed@example.com"  # the retyped letter went into the field
    # The hint under the field is shown whole, not cut off.
    assert dialog.hint.height() >= dialog.hint.heightForWidth(dialog.hint.width())
    assert dialog.hint.visibleRegion().boundingRect().height() == dialog.hint.height()


def test_owners_rename_and_others_cannot(
    qtbot: QtBot, window: MainWindow, bridge: StoreBridge, store: FakeChatStore
) -> None:
    open_chat(qtbot, window, bridge, store.chat_id("Team"))
    panel = window.chat_panel
    panel._fill_menu()
    assert {action.text(): action.isEnabled() for action in panel.chat_menu.actions() if action.text()} == {
        "Rename…": True,
        "Members…": True,
        "Leave chat…": True,
        "Delete chat…": True,
    }
    panel.rename()
    dialog = window.findChild(RenameChatDialog)
    assert dialog is not None
    dialog.title_edit.setText("Team (Q4)")
    dialog.submit()
    qtbot.waitUntil(lambda: panel.title_label.text() == "Team (Q4)")
    open_chat(qtbot, window, bridge, store.chat_id("Design review"))  # owned by Carol
    panel._fill_menu()
    enabled = {action.text(): action.isEnabled() for action in panel.chat_menu.actions() if action.text()}
    assert not enabled["Rename…"] and not enabled["Delete chat…"]


def test_leaving_asks_first_and_closes_the_chat(
    qtbot: QtBot, window: MainWindow, bridge: StoreBridge, store: FakeChatStore, switches: Switches
) -> None:
    bob_chat = store.chat_id("Bob")
    open_chat(qtbot, window, bridge, bob_chat)
    switches.confirm = False
    window.chat_panel.leave()
    assert switches.questions == ["Leave chat"]
    assert "leave_chat" not in store.call_names()
    switches.confirm = True
    with qtbot.waitSignal(bridge.chat_left):
        window.chat_panel.leave()
    qtbot.waitUntil(lambda: window.stack.currentWidget() is window.empty_state)
    assert window.chats.row_of(bob_chat) is None
    assert window.chat_panel.chat_id is None
    assert not window.chat_list.list_view.currentIndex().isValid()


def test_owners_delete_a_chat_after_confirming(
    qtbot: QtBot, window: MainWindow, bridge: StoreBridge, store: FakeChatStore, switches: Switches
) -> None:
    team = store.chat_id("Team")
    open_chat(qtbot, window, bridge, team)
    with qtbot.waitSignal(bridge.chat_left):
        window.chat_panel.delete()
    assert switches.questions == ["Delete chat"]
    assert window.chats.row_of(team) is None


def test_edit_and_delete_own_messages(
    qtbot: QtBot, window: MainWindow, bridge: StoreBridge, store: FakeChatStore, cast: Cast
) -> None:
    team = store.chat_id("Team")
    mine = store.add_message(team, cast.alice, "tpyo here")
    open_chat(qtbot, window, bridge, team)
    panel = window.chat_panel
    panel.view.edit_requested.emit(mine)
    assert panel.composer.text == "tpyo here"
    panel.composer.set_text("typo fixed")
    qtbot.keyClick(panel.composer.editor, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: last_row_text(window) == "typo fixed")
    assert panel.model.item(panel.model.rowCount() - 1).edited
    panel.view.delete_requested.emit(panel.model.item(panel.model.rowCount() - 1))
    qtbot.waitUntil(lambda: panel.model.item(panel.model.rowCount() - 1).deleted)


def test_editing_says_save_and_deleting_brings_the_cursor_back_to_the_composer(
    qtbot: QtBot, window: MainWindow, bridge: StoreBridge, store: FakeChatStore, cast: Cast, switches: Switches
) -> None:
    team = store.chat_id("Team")
    mine = store.add_message(team, cast.alice, "delete me")
    open_chat(qtbot, window, bridge, team)
    window.activateWindow()
    panel = window.chat_panel
    assert panel.composer.send_button.text() == "Send"
    panel.view.edit_requested.emit(mine)
    assert panel.composer.send_button.text() == "Save"
    assert panel.composer.send_button.accessibleName() == "Save the edited message"
    qtbot.keyClick(panel.composer.editor, Qt.Key.Key_Escape)
    assert panel.composer.send_button.text() == "Send"
    panel.view.setFocus()  # the user right-clicked the message in the list
    panel.view.delete_requested.emit(panel.model.item(panel.model.rowCount() - 1))
    assert switches.questions[-1] == "Delete message"
    qtbot.waitUntil(lambda: panel.model.item(panel.model.rowCount() - 1).deleted)
    assert QApplication.focusWidget() is panel.composer.editor


def test_ctrl_end_in_the_composer_jumps_to_the_newest_message(
    qtbot: QtBot, window: MainWindow, bridge: StoreBridge, store: FakeChatStore
) -> None:
    open_chat(qtbot, window, bridge, store.chat_id("Team"))
    panel = window.chat_panel
    panel.view.verticalScrollBar().setValue(0)  # scrolled up, reading old messages
    qtbot.waitUntil(lambda: not panel.view.is_at_bottom())
    panel.composer.set_text("half a thought")
    qtbot.keyClick(panel.composer.editor, Qt.Key.Key_End, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(panel.view.is_at_bottom)
    assert panel.composer.text == "half a thought"


def test_members_dialog_lets_owners_add_people(
    qtbot: QtBot, window: MainWindow, bridge: StoreBridge, store: FakeChatStore
) -> None:
    open_chat(qtbot, window, bridge, store.chat_id("Team"))
    window.chat_panel.show_members()
    dialog = window.findChild(MembersDialog)
    assert dialog is not None
    qtbot.waitUntil(lambda: dialog.member_list.count() == 3)
    assert dialog.add_button.isVisible()
    dialog.email_edit.setText("dave@example.com")
    dialog.add()
    qtbot.waitUntil(lambda: dialog.member_list.count() == 4)
    assert "Dave Okafor" in [dialog.member_list.item(row).text() for row in range(4)]


def test_notifications_for_chats_not_in_view_and_when_inactive(
    qtbot: QtBot,
    window: MainWindow,
    bridge: StoreBridge,
    store: FakeChatStore,
    cast: Cast,
    notifier: Notifier,
    switches: Switches,
) -> None:
    team = store.chat_id("Team")
    open_chat(qtbot, window, bridge, team)  # its details teach the window Bob's name
    shown: list[tuple[str, str]] = []
    notifier.notified.connect(lambda title, body: shown.append((title, body)))
    store.receive(team, cast.bob, "in the open chat")
    store.receive(store.chat_id("Bob"), cast.bob, "elsewhere")
    assert shown == [("Bob", "Bob Chen: elsewhere")]
    switches.active = False
    store.receive(team, cast.carol, "while away")
    assert shown[-1] == ("Team", "Carol Diaz: while away")


def test_the_title_counts_unread_messages(
    qtbot: QtBot, window: MainWindow, bridge: StoreBridge, store: FakeChatStore, cast: Cast
) -> None:
    assert window.windowTitle() == "Alice Martin — desktop-chat"  # whose window this is
    store.receive(store.chat_id("Bob"), cast.bob, "one")
    store.receive(store.chat_id("Release 0.2"), cast.dave, "two")
    assert window.windowTitle() == "(2) Alice Martin — desktop-chat"
    open_chat(qtbot, window, bridge, store.chat_id("Bob"))
    assert window.windowTitle().endswith(") Bob — Alice Martin — desktop-chat")


def test_the_status_bar_follows_the_store(window: MainWindow, store: FakeChatStore) -> None:
    status = window.status
    assert status.connection_label.text() == "Live"
    assert status.cache_label.text() == "Cache: Redis"
    assert status.outbox_label.isHidden()
    store.set_status(
        StoreStatus(
            connection=ConnectionState.RECONNECTING,
            cache=CacheStatus.OFFLINE,
            outbox_depth=3,
            backend_reachable=False,
            detail="Realtime dropped; retrying in 4 s.",
        )
    )
    assert status.connection_label.text() == "Reconnecting…"
    assert status.cache_label.text() == "Cache: memory only"
    assert status.outbox_label.text() == "3 messages waiting to send"
    assert status.stale_label.text() == "Server unreachable: showing saved chats, not up to date"
    assert status.connection_label.toolTip() == "Realtime dropped; retrying in 4 s."
    assert status.user_label.text() == "Alice Martin"


def test_a_long_sentence_in_the_status_bar_never_widens_the_window(qtbot: QtBot, window: MainWindow) -> None:
    window.resize(700, 500)
    qtbot.waitUntil(lambda: window.width() == 700)
    before = window.minimumSizeHint().width()
    long = "Cannot reach the server at https://a-rather-long-project-name.supabase.co. " * 4
    window.status.show_problem(long)
    window.status.show_status(StoreStatus(connection=ConnectionState.OFFLINE, backend_reachable=False))
    qtbot.wait(50)
    assert window.minimumSizeHint().width() == before
    assert window.width() == 700
    assert window.status.problem_label.toolTip() == long  # all of it, where it can be read


def test_typing_shows_in_the_header_and_the_list(
    qtbot: QtBot, window: MainWindow, bridge: StoreBridge, store: FakeChatStore, cast: Cast
) -> None:
    team = store.chat_id("Team")
    open_chat(qtbot, window, bridge, team)
    store.someone_typing(team, [cast.bob, cast.alice])
    assert window.chat_panel.subtitle_label.text() == "Bob Chen is typing…"
    store.someone_typing(team, [])
    assert window.chat_panel.subtitle_label.text() == "3 members"


def test_quick_switcher_filters_and_opens(qtbot: QtBot, window: MainWindow, store: FakeChatStore) -> None:
    switcher = window.quick_switch()
    assert isinstance(switcher, QuickSwitcher)
    qtbot.keyClicks(switcher.search, "rel")
    assert switcher.proxy.rowCount() == 1
    qtbot.keyClick(switcher.search, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: window.chat_panel.chat_id == store.chat_id("Release 0.2"))
    assert not switcher.isVisible()


def test_keyboard_shortcuts_and_accessible_names(window: MainWindow) -> None:
    shortcuts = {action.shortcut().toString(): action.text().replace("&", "") for action in window.actions()}
    assert shortcuts["Ctrl+N"] == "New chat…"
    assert shortcuts["Ctrl+K"] == "Go to chat…"
    assert shortcuts["Ctrl+F"] == "Search chats"
    assert shortcuts[QKeySequence("Ctrl+Q").toString()] == "Quit"
    names = [
        window.chat_panel.composer.editor.accessibleName(),
        window.chat_panel.composer.send_button.accessibleName(),
        window.chat_list.filter_edit.accessibleName(),
        window.chat_list.list_view.accessibleName(),
        window.chat_panel.view.accessibleName(),
        window.chat_list.new_chat_button.accessibleName(),
    ]
    assert all(names), names


def test_ctrl_n_opens_the_new_chat_dialog(qtbot: QtBot, window: MainWindow) -> None:
    action = next(action for action in window.actions() if action.shortcut().toString() == "Ctrl+N")
    action.trigger()
    assert window.findChild(NewChatDialog) is not None


def test_a_chat_taken_away_by_someone_else_closes_calmly(
    qtbot: QtBot, window: MainWindow, bridge: StoreBridge, store: FakeChatStore
) -> None:
    team = store.chat_id("Team")
    open_chat(qtbot, window, bridge, team)
    store.chat_list().remove(team)  # what the store does when realtime says the chat is gone
    qtbot.waitUntil(lambda: window.chat_panel.chat_id is None)
    assert window.stack.currentWidget() is window.empty_state
    assert not window.chat_list.list_view.currentIndex().isValid()


def test_filtering_the_open_chat_out_of_the_list_keeps_it_open(
    qtbot: QtBot, window: MainWindow, bridge: StoreBridge, store: FakeChatStore
) -> None:
    team = store.chat_id("Team")
    open_chat(qtbot, window, bridge, team)
    qtbot.keyClicks(window.chat_list.filter_edit, "release")
    qtbot.wait(10)
    assert window.chat_panel.chat_id == team
    assert window.chat_list.current == team
    window.chat_list.filter_edit.clear()
    qtbot.waitUntil(lambda: window.chat_list.list_view.currentIndex().data() == "Team")


def test_owners_remove_people_but_not_themselves(
    qtbot: QtBot, window: MainWindow, bridge: StoreBridge, store: FakeChatStore, cast: Cast
) -> None:
    open_chat(qtbot, window, bridge, store.chat_id("Team"))
    window.chat_panel.show_members()
    dialog = window.findChild(MembersDialog)
    assert dialog is not None
    qtbot.waitUntil(lambda: dialog.member_list.count() == 3)
    rows = {dialog.member_list.item(row).text(): row for row in range(3)}
    dialog.member_list.setCurrentRow(rows["Alice Martin (you) · owner"])
    assert not dialog.remove_button.isEnabled()
    dialog.member_list.setCurrentRow(rows["Carol Diaz"])
    assert dialog.remove_button.isEnabled()
    dialog.remove_selected()
    qtbot.waitUntil(lambda: dialog.member_list.count() == 2)
    assert ("remove_member", (store.chat_id("Team"), cast.carol.id)) in store.calls


def test_non_owners_see_members_but_no_controls(
    qtbot: QtBot, window: MainWindow, bridge: StoreBridge, store: FakeChatStore
) -> None:
    open_chat(qtbot, window, bridge, store.chat_id("Design review"))
    window.chat_panel.show_members()
    dialog = window.findChild(MembersDialog)
    assert dialog is not None
    qtbot.waitUntil(lambda: dialog.member_list.count() == 2)
    assert dialog.owner_note.isVisible()
    assert not dialog.add_button.isVisible() and not dialog.remove_button.isVisible()
