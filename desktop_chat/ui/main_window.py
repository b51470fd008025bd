"""The main window: chats on the left, the open chat on the right, status at the bottom."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QSplitter,
    QStackedWidget,
    QWidget,
)

from desktop_chat import __version__
from desktop_chat.config import Settings
from desktop_chat.models import ChatDetails, ChatId, Message, Profile, SearchHit, UserId
from desktop_chat.ui.bridge import Operation, StoreBridge
from desktop_chat.ui.chat_list import ChatListPanel
from desktop_chat.ui.chat_list_model import ChatListModel
from desktop_chat.ui.chat_panel import ChatPanel
from desktop_chat.ui.dialogs import Confirm, NewChatDialog, QuickSwitcher, ask_confirmation
from desktop_chat.ui.notifications import Notifier, notification_body, should_notify
from desktop_chat.ui.search_panel import MessageSearchPanel, result_heading
from desktop_chat.ui.status_bar import StatusBar
from desktop_chat.ui.text import plural
from desktop_chat.ui.theme import Colors, Theme

if TYPE_CHECKING:
    # Built on first use, and imported then: the first frame does not need them (docs/architecture.md §10).
    from desktop_chat.ui.diagnostics import DiagnosticsWindow
    from desktop_chat.ui.settings_dialog import SettingsDialog

APP_TITLE = "desktop-chat"

SHORTCUTS = (
    ("Ctrl+N", "New chat"),
    ("Ctrl+K", "Go to chat (quick switcher)"),
    ("Ctrl+F", "Search chats"),
    ("Ctrl+Shift+F", "Search messages (this chat or all chats)"),
    ("Alt+Up / Alt+Down", "Previous / next chat"),
    ("Enter", "Send the message"),
    ("Shift+Enter", "New line in the message"),
    ("Ctrl+Up / Ctrl+Down", "Reply to a message: pick the one before / after"),
    ("Esc", "Cancel editing or replying, close a dialog"),
    ("Ctrl+End", "Jump to the newest message"),
    ("Ctrl+,", "Settings"),
    ("Ctrl+Shift+D", "Diagnostics"),
    ("F1", "This list"),
    ("Ctrl+Q", "Quit"),
)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class MainWindow(QMainWindow):
    """Everything a signed-in user works with.

    Args:
        bridge: The data layer.
        profile: Who is signed in.
        settings: The running settings (for the settings dialog).
        theme: The app's colours.
        notifier: Where notifications go.
        clock: "Now", for times in the chat list.
        confirm: Asks before destructive actions (a seam for tests).
        is_active: Whether the window is in front; a seam for tests (offscreen windows are never active).
        parent: Qt parent.

    Signals:
        sign_out_requested(): The user chose "Sign out".
        quit_requested(): The user chose "Quit" or closed the window.
        settings_saved(object): The settings dialog saved these values (a dict).
    """

    sign_out_requested = Signal()
    quit_requested = Signal()
    settings_saved = Signal(object)

    def __init__(
        self,
        bridge: StoreBridge,
        profile: Profile,
        *,
        settings: Settings,
        theme: Theme,
        notifier: Notifier,
        clock: Callable[[], datetime] = _utc_now,
        confirm: Confirm = ask_confirmation,
        is_active: Callable[[], bool] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("mainWindow")
        self._bridge = bridge
        self._profile = profile
        self._settings = settings
        self._theme = theme
        self._notifier = notifier
        self._is_active = is_active or self.isActiveWindow
        self._confirm = confirm
        self._names: dict[UserId, str] = {profile.id: profile.display_name}
        self._select_when_listed: ChatId | None = None
        self._diagnostics: DiagnosticsWindow | None = None
        self._closing_for_sign_out = False
        colors = theme.colors

        self.chats = ChatListModel(self)
        self.chats.set_own_user(profile.id)
        self.chats.show_list(bridge.chat_list())
        self.chat_list = ChatListPanel(self.chats, colors, clock, self, bridge=bridge)
        self.chat_panel = ChatPanel(
            bridge, self.chats, colors=colors, confirm=confirm, is_active=self._panel_active, parent=self
        )
        self.chat_panel.set_own_user(profile.id)
        self._clock = clock
        self.search_panel = MessageSearchPanel(bridge, self._search_heading, colors=colors, parent=self)
        self.search_panel.hide()
        self.empty_state = QLabel("Pick a chat on the left, or start a new one with Ctrl+N.", self)
        self.empty_state.setObjectName("emptyState")
        self.empty_state.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_state.setWordWrap(True)
        self.stack = QStackedWidget(self)
        self.stack.addWidget(self.empty_state)
        self.stack.addWidget(self.chat_panel)
        splitter = QSplitter(Qt.Orientation.Horizontal, self)
        splitter.setObjectName("mainSplitter")
        splitter.addWidget(self.chat_list)
        splitter.addWidget(self.stack)
        splitter.addWidget(self.search_panel)
        splitter.setStretchFactor(0, 0)
        splitter.setStretchFactor(1, 1)
        splitter.setChildrenCollapsible(False)
        line = self.fontMetrics().height()
        self.chat_list.setMinimumWidth(line * 14)
        splitter.setSizes([line * 22, line * 50])
        self.setCentralWidget(splitter)

        self.status = StatusBar(self)
        self.setStatusBar(self.status)
        self.status.show_status(bridge.status)
        self.status.show_user(profile.display_name)
        self._build_menus()
        self.resize(line * 76, line * 50)

        self.chat_list.chat_selected.connect(self.open_chat)
        self.chat_list.new_chat_requested.connect(self.new_chat)
        self.chat_list.current_chat_removed.connect(self._on_current_chat_removed)
        self.chat_panel.chat_closed.connect(self._on_chat_closed)
        self.search_panel.message_chosen.connect(self.open_message)
        self.search_panel.closed.connect(self.chat_panel.focus_composer)
        bridge.status_changed.connect(self.status.show_status)
        bridge.failed.connect(self._on_failed)
        bridge.chat_created.connect(self._on_chat_created)
        bridge.chat_details_loaded.connect(self._remember_names)
        bridge.incoming_received.connect(self._on_incoming)
        for signal in (
            self.chats.dataChanged,
            self.chats.rowsInserted,
            self.chats.rowsRemoved,
            self.chats.modelReset,
        ):
            signal.connect(self._update_title)
        self.chats.rowsInserted.connect(self._select_new_chat)
        theme.changed.connect(self._apply_colors)
        self._update_title()

    # --- navigation ----------------------------------------------------------------------------------
    def open_chat(self, chat_id: ChatId) -> None:
        self.chat_list.select(chat_id)
        self.chat_panel.show_chat(chat_id)
        self.stack.setCurrentWidget(self.chat_panel)
        self.search_panel.set_chat(chat_id)
        if not self.search_panel.isVisible():
            self.chat_panel.focus_composer()
        self._update_title()

    def open_message(self, chat_id: ChatId, seq: int) -> None:
        """Open ``chat_id`` at message ``seq``, however old, marked for a moment (a search result, a
        quoted reply): the slot for anything that leads to a message."""
        self.chat_panel.show_message(chat_id, seq)  # first: selecting the chat below then opens nothing more
        self.open_chat(chat_id)

    def search_messages(self) -> MessageSearchPanel:
        """Show the message search panel (Ctrl+Shift+F), for the open chat or all chats."""
        self.search_panel.set_chat(self.chat_panel.chat_id)
        self.search_panel.open_panel()
        return self.search_panel

    def _search_heading(self, hit: SearchHit) -> str:
        summary = self.chats.summary(hit.chat_id)
        if hit.sender_id is None:
            sender = "Deleted account"
        elif hit.sender_id == self._profile.id:
            sender = "You"
        else:
            sender = self._names.get(hit.sender_id, "Someone")
        title = summary.chat.title if summary is not None else None
        return result_heading(title, sender, hit.created_at, self._clock())

    def new_chat(self) -> NewChatDialog:
        dialog = NewChatDialog(self._bridge, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        return dialog

    def quick_switch(self) -> QuickSwitcher:
        switcher = QuickSwitcher(self.chats, self._theme.colors, self, bridge=self._bridge)
        switcher.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        switcher.chosen.connect(self.open_chat)
        switcher.open()
        return switcher

    def show_settings(self) -> SettingsDialog:
        from desktop_chat.ui.settings_dialog import SettingsDialog  # on first use (see the imports)

        dialog = SettingsDialog(self._settings, clear_cache=self._bridge.clear_cache, parent=self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        previous = self._theme.choice
        dialog.theme_chosen.connect(self._theme.set_choice)
        dialog.rejected.connect(lambda: self._theme.set_choice(previous))
        dialog.saved.connect(self._on_settings_saved)
        self._bridge.cache_cleared.connect(dialog.set_cache_cleared)
        self._bridge.cache_cleared.connect(self._bridge.load_cache_usage)
        self._bridge.cache_usage_loaded.connect(dialog.show_usage)
        dialog.finished.connect(lambda _result: self._bridge.cache_cleared.disconnect(self._bridge.load_cache_usage))
        dialog.open()
        self._bridge.load_cache_usage()
        return dialog

    def show_diagnostics(self) -> DiagnosticsWindow:
        if self._diagnostics is None:
            from desktop_chat.ui.diagnostics import DiagnosticsWindow  # on first use (see the imports)

            self._diagnostics = DiagnosticsWindow(
                self._bridge.metrics_snapshot, measure=self._bridge.load_cache_usage, colors=self._theme.colors
            )
            self._diagnostics.setWindowIcon(self.windowIcon())
        self._diagnostics.show()
        self._diagnostics.raise_()
        return self._diagnostics

    def show_shortcuts(self) -> None:
        rows = "".join(f"<tr><td><b>{keys}</b>&nbsp;&nbsp;</td><td>{what}</td></tr>" for keys, what in SHORTCUTS)
        box = QMessageBox(QMessageBox.Icon.NoIcon, "Keyboard shortcuts", f"<table>{rows}</table>", parent=self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()

    def show_about(self) -> None:
        text = (
            f"<b>desktop-chat {__version__}</b><br>A chat client over Supabase, "
            "with a Redis read cache, a durable outbox and live sync."
        )
        box = QMessageBox(QMessageBox.Icon.NoIcon, "About desktop-chat", text, parent=self)
        box.setIconPixmap(self.windowIcon().pixmap(self.fontMetrics().height() * 4))
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()

    def ask_to_sign_out(self) -> bool:
        """Sign out after the user confirmed (saying what happens to the saved chats and unsent messages)."""
        name = self._profile.display_name
        text = f"Sign out {name}? The chats saved on this computer for {name} are removed."
        waiting = self._bridge.status.outbox_depth
        if waiting:
            text += f" {plural(waiting, 'message')} waiting to be sent will go out when {name} signs in again."
        if not self._confirm(self, "Sign out", text, "Sign out"):
            return False
        self.sign_out_requested.emit()
        return True

    def bring_forward(self, chat_id: ChatId | None = None) -> None:
        """Show the window in front (a notification was clicked), with ``chat_id`` open if given."""
        if self.isMinimized():
            self.showNormal()
        self.show()
        self.raise_()
        self.activateWindow()
        if chat_id is not None and self.chats.row_of(chat_id) is not None:
            self.open_chat(chat_id)

    def close_for_sign_out(self) -> None:
        """Close without asking the app to quit (the sign-in window comes back)."""
        self._closing_for_sign_out = True
        self.close()

    def _let_go(self) -> None:
        """Stop following the store: the lists this window shows belong to a session that is ending, and
        the window is deleted soon after. Dialogs and the diagnostics window go with it."""
        self.chat_panel.clear()
        self.chats.detach()
        self._bridge.failed.disconnect(self._on_failed)
        if self._diagnostics is not None:
            self._diagnostics.close()
            self._diagnostics.deleteLater()
            self._diagnostics = None
        for dialog in self.findChildren(QDialog):
            dialog.reject()

    # --- menus ---------------------------------------------------------------------------------------
    def _action(self, text: str, shortcut: QKeySequence | str | None, slot: Callable[[], object]) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.triggered.connect(lambda _checked=False: slot())
        self.addAction(action)  # shortcuts work even with the menu bar hidden
        return action

    def _build_menus(self) -> None:
        bar = self.menuBar()
        chat = bar.addMenu("&Chat")
        chat.addAction(self._action("&New chat…", "Ctrl+N", self.new_chat))
        chat.addAction(self._action("&Go to chat…", "Ctrl+K", self.quick_switch))
        chat.addAction(self._action("&Search chats", "Ctrl+F", self.chat_list.focus_filter))
        chat.addAction(self._action("Search &messages…", "Ctrl+Shift+F", self.search_messages))
        chat.addAction(self._action("&Previous chat", "Alt+Up", lambda: self.chat_list.select_relative(-1)))
        chat.addAction(self._action("Ne&xt chat", "Alt+Down", lambda: self.chat_list.select_relative(1)))
        chat.addSeparator()
        chat.addAction(self._action("Se&ttings…", "Ctrl+,", self.show_settings))
        chat.addAction(self._action("Sign &out…", None, self.ask_to_sign_out))
        chat.addAction(self._action("&Quit", "Ctrl+Q", self.quit_requested.emit))
        view = bar.addMenu("&View")
        view.addAction(self._action("&Diagnostics", "Ctrl+Shift+D", self.show_diagnostics))
        help_menu = bar.addMenu("&Help")
        help_menu.addAction(self._action("&Keyboard shortcuts", "F1", self.show_shortcuts))
        help_menu.addAction(self._action("&About desktop-chat", None, self.show_about))

    # --- reacting ------------------------------------------------------------------------------------
    def _panel_active(self) -> bool:
        return self.chat_panel.isVisible() and self._is_active()

    def _update_title(self, *_: object) -> None:
        unread = self.chats.unread_total()
        chat_id = self.chat_panel.chat_id
        summary = self.chats.summary(chat_id) if chat_id else None
        # The account is always named: two windows (``--demo``, two accounts) must never look alike.
        parts = [summary.chat.title] if summary else []
        parts += [self._profile.display_name, APP_TITLE]
        title = " — ".join(parts)
        self.setWindowTitle(f"({unread}) {title}" if unread else title)
        self._notifier.set_unread(unread)

    def _on_chat_closed(self, _session_id: ChatId) -> None:
        self.chat_list.select(None)
        self.stack.setCurrentWidget(self.empty_state)
        self._update_title()

    def _on_current_chat_removed(self, chat_id: ChatId) -> None:
        if self.chat_panel.chat_id == chat_id:
            self.chat_panel.clear()
        self._on_chat_closed(chat_id)

    def _on_chat_created(self, chat_id: ChatId) -> None:
        if self.chats.row_of(chat_id) is not None:
            self.open_chat(chat_id)
        else:
            self._select_when_listed = chat_id

    def _select_new_chat(self, *_: object) -> None:
        if self._select_when_listed is not None and self.chats.row_of(self._select_when_listed) is not None:
            chat_id, self._select_when_listed = self._select_when_listed, None
            self.open_chat(chat_id)

    def _remember_names(self, details: ChatDetails) -> None:
        for member in details.members:
            if member.display_name:
                self._names[member.user_id] = member.display_name

    def _on_incoming(self, message: Message) -> None:
        active = self._is_active()
        if not should_notify(
            message, own_user=self._profile.id, open_chat=self.chat_panel.chat_id, window_active=active
        ):
            return
        summary = self.chats.summary(message.chat_id)
        title = summary.chat.title if summary else "New message"
        sender = self._names.get(message.sender_id) if message.sender_id else None
        self._notifier.notify(title, notification_body(sender, message.content), key=message.chat_id)
        if not active:
            QApplication.alert(self)

    def _on_failed(self, operation: str, message: str, _context: object) -> None:
        if operation in (Operation.REFRESH_CHATS.value, Operation.CLEAR_CACHE.value, Operation.SIGN_OUT.value):
            self.status.show_problem(message)

    def _on_settings_saved(self, values: dict[str, object]) -> None:
        self._notifier.enabled = bool(values.get("notifications", self._notifier.enabled))
        self.settings_saved.emit(values)

    def _apply_colors(self, colors: Colors) -> None:
        self.chat_list.set_colors(colors)
        self.chat_panel.set_colors(colors)
        self.search_panel.set_colors(colors)
        if self._diagnostics is not None:
            self._diagnostics.set_colors(colors)

    def changeEvent(self, event: QEvent) -> None:
        # Qt tells only the window that it became active, not the widgets in it: pass it on, so that what
        # came in while the user was elsewhere is marked read once they are back. Coming back is also a
        # moment to check with the server that nothing was missed while away (a laptop that slept, a socket
        # that died quietly).
        if event.type() == QEvent.Type.ActivationChange and self._is_active():
            self.chat_panel.schedule_mark_read()
            self._bridge.catch_up()
        super().changeEvent(event)

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self._closing_for_sign_out:
            self.quit_requested.emit()
            if self._diagnostics is not None:
                self._diagnostics.close()
        else:
            self._let_go()
        super().closeEvent(event)
