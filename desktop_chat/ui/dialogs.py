"""Chat management dialogs (new chat, rename, members), the confirmation question and the quick switcher.

The dialogs that change something stay open while the bridge works, show its failure in words next to
the fields, and close themselves when the bridge reports success.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from PySide6.QtCore import QModelIndex, Qt, Signal
from PySide6.QtGui import QKeyEvent, QResizeEvent, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from desktop_chat.errors import InvalidInput
from desktop_chat.models import (
    MAX_TITLE_CHARS,
    ChatId,
    ChatMember,
    MemberPage,
    MemberRole,
    UserId,
    validate_title,
)
from desktop_chat.ui.bridge import Operation, StoreBridge
from desktop_chat.ui.chat_list import ChatDelegate, ChatSearch
from desktop_chat.ui.chat_list_model import ChatFilterProxyModel, ChatListModel
from desktop_chat.ui.presence import online_icon
from desktop_chat.ui.text import plural
from desktop_chat.ui.theme import LIGHT, Colors

Confirm = Callable[[QWidget, str, str, str], bool]
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def ask_confirmation(parent: QWidget, title: str, text: str, action: str) -> bool:
    """Ask a yes/no question with a named action button; Esc and Cancel say no."""
    box = QMessageBox(QMessageBox.Icon.Question, title, text, QMessageBox.StandardButton.Cancel, parent)
    confirm = box.addButton(action, QMessageBox.ButtonRole.DestructiveRole)
    box.setDefaultButton(QMessageBox.StandardButton.Cancel)
    box.exec()
    return box.clickedButton() is confirm


def parse_emails(text: str) -> list[str]:
    """Addresses separated by commas, semicolons or spaces.

    Raises:
        InvalidInput: One of them does not look like an email address.
    """
    emails = [part for part in re.split(r"[,;\s]+", text) if part]
    for email in emails:
        if not _EMAIL.match(email):
            raise InvalidInput(f"“{email}” is not an email address.")
    return emails


class _OperationDialog(QDialog):
    """A dialog that runs one bridge operation at a time, with busy state and inline errors."""

    def __init__(self, bridge: StoreBridge, operations: set[Operation], title: str, parent: QWidget | None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self._bridge = bridge
        self._operations = {operation.value for operation in operations}
        self._busy = False
        self._focus_before: QWidget | None = None
        self.error_label = QLabel(self)
        self.error_label.setObjectName("dialogError")
        self.error_label.setWordWrap(True)
        self.error_label.hide()
        bridge.failed.connect(self._on_failed)
        bridge.finished.connect(self._on_finished)

    @property
    def busy(self) -> bool:
        return self._busy

    def show_error(self, text: str) -> None:
        self.error_label.setText(text)
        self.error_label.show()
        self._fit_height()

    def _fit_height(self) -> None:
        """Grow to what the wrapped texts need at the current width. A top-level window sizes itself from
        its layout's one-line heights, so a wrapping hint or error would otherwise be cut off."""
        layout = self.layout()
        if layout is None or not layout.hasHeightForWidth():
            return
        layout.activate()
        needed = layout.totalHeightForWidth(self.width())
        if needed != self.minimumHeight():
            self.setMinimumHeight(needed)
        if needed > self.height():
            self.resize(self.width(), needed)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self._fit_height()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if event.size().width() != event.oldSize().width():
            self._fit_height()

    def _begin(self) -> None:
        self._busy = True
        self._focus_before = self.focusWidget()
        self.error_label.hide()
        self._set_inputs_enabled(False)

    def _set_inputs_enabled(self, enabled: bool) -> None:
        # Text fields turn read-only rather than disabled: a disabled field loses the keyboard focus (Qt
        # moves it to the next widget, the default button), and what the user types after an error is lost.
        for child in self.findChildren(QWidget):
            if isinstance(child, QLineEdit):
                child.setReadOnly(not enabled)
            elif isinstance(child, QPushButton | QListWidget):
                child.setEnabled(enabled)
        if enabled and self._focus_before is not None and self._focus_before.isEnabled():
            self._focus_before.setFocus(Qt.FocusReason.OtherFocusReason)

    def _on_failed(self, operation: str, message: str, _context: object) -> None:
        if self._busy and operation in self._operations:
            self.show_error(message)

    def _on_finished(self, operation: str, _context: object) -> None:
        if self._busy and operation in self._operations:
            self._busy = False
            self._set_inputs_enabled(True)


class NewChatDialog(_OperationDialog):
    """Create a chat with a title and members added by email.

    Signals:
        created(object): The new chat's ``ChatId``.
    """

    created = Signal(object)

    def __init__(self, bridge: StoreBridge, parent: QWidget | None = None) -> None:
        super().__init__(bridge, {Operation.CREATE_CHAT}, "New chat", parent)
        self.title_edit = QLineEdit(self)
        self.title_edit.setMaxLength(MAX_TITLE_CHARS)
        self.title_edit.setPlaceholderText("What is this chat about?")
        self.title_edit.setAccessibleName("Chat title")
        self.members_edit = QLineEdit(self)
        self.members_edit.setPlaceholderText("bob@example.com, carol@example.com")
        self.members_edit.setAccessibleName("Members' email addresses")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel, self)
        self.create_button = buttons.addButton("Create", QDialogButtonBox.ButtonRole.AcceptRole)
        self.create_button.setDefault(True)
        buttons.accepted.connect(self.submit)
        buttons.rejected.connect(self.reject)
        self.hint = QLabel("Email addresses of people with an account, separated by commas.", self)
        self.hint.setObjectName("hint")
        self.hint.setWordWrap(True)
        # The hint goes under the field in a column of its own: a wrapping label as a QFormLayout field is
        # given one line's height and cut off.
        members = QVBoxLayout()
        members.setSpacing(max(2, self.fontMetrics().height() // 4))
        members.addWidget(self.members_edit)
        members.addWidget(self.hint)
        form = QFormLayout()
        form.addRow("Title", self.title_edit)
        form.addRow("Members", members)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.error_label)
        layout.addWidget(buttons)
        self.setMinimumWidth(self.fontMetrics().averageCharWidth() * 60)
        bridge.chat_created.connect(self._on_created)

    def submit(self) -> None:
        if self.busy:
            return
        try:
            title = validate_title(self.title_edit.text())
            emails = parse_emails(self.members_edit.text())
        except InvalidInput as error:
            self.show_error(error.message)
            return
        self._begin()
        self._bridge.create_chat(title, emails)

    def _on_created(self, chat_id: ChatId) -> None:
        if self.busy:
            self.created.emit(chat_id)
            self.accept()


class RenameChatDialog(_OperationDialog):
    """Give a chat a new title (owners only; the server has the last word)."""

    def __init__(self, bridge: StoreBridge, chat_id: ChatId, title: str, parent: QWidget | None = None) -> None:
        super().__init__(bridge, {Operation.RENAME_CHAT}, "Rename chat", parent)
        self._session = chat_id
        self.title_edit = QLineEdit(title, self)
        self.title_edit.setMaxLength(MAX_TITLE_CHARS)
        self.title_edit.setAccessibleName("New title")
        self.title_edit.selectAll()
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel, self)
        self.rename_button = buttons.addButton("Rename", QDialogButtonBox.ButtonRole.AcceptRole)
        self.rename_button.setDefault(True)
        buttons.accepted.connect(self.submit)
        buttons.rejected.connect(self.reject)
        form = QFormLayout()
        form.addRow("Title", self.title_edit)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.error_label)
        layout.addWidget(buttons)
        self.setMinimumWidth(self.fontMetrics().averageCharWidth() * 50)
        bridge.chat_changed.connect(self._on_changed)

    def submit(self) -> None:
        if self.busy:
            return
        try:
            title = validate_title(self.title_edit.text())
        except InvalidInput as error:
            self.show_error(error.message)
            return
        self._begin()
        self._bridge.rename_chat(self._session, title)

    def _on_changed(self, chat_id: ChatId) -> None:
        if self.busy and chat_id == self._session:
            self.accept()


_NAME_ROLE = Qt.ItemDataRole.UserRole + 1  # the member's line as written, without the presence


class MembersDialog(_OperationDialog):
    """Who is in a chat, a page at a time (the next page loads as the list is scrolled to its end), with a
    dot beside those online now; owners add people by email and remove them.

    Args:
        bridge: The data layer.
        chat_id: The chat.
        own_user: The signed-in user.
        online: Who is online in the chat as the dialog opens (it follows the bridge's news after).
        colors: Custom colours (the dot's).
        parent: Qt parent.
    """

    def __init__(
        self,
        bridge: StoreBridge,
        chat_id: ChatId,
        *,
        own_user: UserId | None,
        online: frozenset[UserId] = frozenset(),
        colors: Colors = LIGHT,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(bridge, {Operation.ADD_MEMBER, Operation.REMOVE_MEMBER}, "Members", parent)
        self._session = chat_id
        self._own = own_user
        listed = bridge.chat_list().get(chat_id)
        self._owner = listed is not None and listed.role is MemberRole.OWNER
        self._last: ChatMember | None = None  # the last member shown: the next page starts after it
        self._has_more = False
        self._loading = False
        self._online = online
        size = self.fontMetrics().height()
        self._dot = online_icon(size, colors.online)
        self._no_dot = online_icon(size, None)
        self.count_label = QLabel(self)
        self.count_label.setObjectName("hint")
        self.member_list = QListWidget(self)
        self.member_list.setAccessibleName("Members")
        self.member_list.currentItemChanged.connect(self._update_buttons)
        self.member_list.verticalScrollBar().valueChanged.connect(self._maybe_load_more)
        self.member_list.verticalScrollBar().rangeChanged.connect(self._maybe_load_more)
        self.email_edit = QLineEdit(self)
        self.email_edit.setPlaceholderText("Email address")
        self.email_edit.setAccessibleName("Email address of the person to add")
        self.email_edit.returnPressed.connect(self.add)
        self.add_button = QPushButton("Add", self)
        self.add_button.clicked.connect(self.add)
        self.remove_button = QPushButton("Remove from chat", self)
        self.remove_button.clicked.connect(self.remove_selected)
        self.owner_note = QLabel("Only the chat's owners can add or remove people.", self)
        self.owner_note.setObjectName("hint")
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        close.rejected.connect(self.reject)
        add_row = QHBoxLayout()
        add_row.addWidget(self.email_edit, 1)
        add_row.addWidget(self.add_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.count_label)
        layout.addWidget(self.member_list, 1)
        layout.addWidget(self.remove_button, 0, Qt.AlignmentFlag.AlignRight)
        layout.addLayout(add_row)
        layout.addWidget(self.owner_note)
        layout.addWidget(self.error_label)
        layout.addWidget(close)
        self.setMinimumSize(self.fontMetrics().averageCharWidth() * 55, self.fontMetrics().height() * 22)
        bridge.members_loaded.connect(self._on_members)
        bridge.chat_changed.connect(self._on_changed)
        bridge.presence_changed.connect(self._on_presence)
        bridge.finished.connect(self._on_load_finished)
        self._show_owner_controls()
        self.reload()

    @property
    def has_more(self) -> bool:
        return self._has_more

    def reload(self) -> None:
        """Show the members from the first page again."""
        self._last = None
        self._has_more = False
        self._loading = True
        self._bridge.load_members(self._session, None)

    def load_more(self) -> None:
        """The next page of members, if there is one and none is on its way."""
        if self._has_more and not self._loading:
            self._loading = True
            self._bridge.load_members(self._session, self._last)

    def add(self) -> None:
        if self.busy or not self._owner:
            return
        try:
            emails = parse_emails(self.email_edit.text())
        except InvalidInput as error:
            self.show_error(error.message)
            return
        if len(emails) != 1:
            self.show_error("Enter one email address.")
            return
        self._begin()
        self._bridge.add_member(self._session, emails[0])

    def remove_selected(self) -> None:
        item = self.member_list.currentItem()
        if self.busy or item is None or not self._owner:
            return
        user_id = item.data(Qt.ItemDataRole.UserRole)
        if user_id == self._own:
            return
        self._begin()
        self._bridge.remove_member(self._session, user_id)

    def _on_members(self, chat_id: ChatId, after: ChatMember | None, page: MemberPage) -> None:
        if chat_id != self._session or after != self._last:
            return  # another chat's, or a page this list has moved past
        self._loading = False
        if after is None:
            self.member_list.clear()
            if page.member_count is not None:
                self.count_label.setText(plural(page.member_count, "member"))
        for member in page.members:
            name = member.display_name or "Someone"
            if member.user_id == self._own:
                name += " (you)"
                self._owner = member.role is MemberRole.OWNER
            if member.role is MemberRole.OWNER:
                name += " · owner"
            item = QListWidgetItem(name, self.member_list)
            item.setData(Qt.ItemDataRole.UserRole, member.user_id)
            item.setData(_NAME_ROLE, name)
        if page.members:
            self._last = page.members[-1]
        self._has_more = page.has_more
        self._show_presence()
        self._show_owner_controls()
        self._maybe_load_more()

    def _on_load_finished(self, operation: str, context: object) -> None:
        if operation == Operation.CHAT_MEMBERS.value and context == self._session:
            self._loading = False  # after a failure too: scrolling may ask again

    def _maybe_load_more(self, *_: object) -> None:
        """Load the next page when the list is scrolled to (or does not fill up to) its end."""
        bar = self.member_list.verticalScrollBar()
        if bar.value() >= bar.maximum() - self.member_list.sizeHintForRow(0):
            self.load_more()

    def is_online(self, user_id: UserId) -> bool:
        """Whether the list shows ``user_id`` as online (never oneself: the dot is for others)."""
        return user_id != self._own and user_id in self._online

    def _on_presence(self, chat_id: ChatId, users: frozenset[UserId]) -> None:
        if chat_id == self._session and users != self._online:
            self._online = users
            self._show_presence()

    def _show_presence(self) -> None:
        for row in range(self.member_list.count()):
            item = self.member_list.item(row)
            online = self.is_online(item.data(Qt.ItemDataRole.UserRole))
            item.setIcon(self._dot if online else self._no_dot)
            name = str(item.data(_NAME_ROLE))
            item.setData(Qt.ItemDataRole.AccessibleTextRole, f"{name}, online" if online else name)
            item.setToolTip("Online now" if online else "")

    def _on_changed(self, chat_id: ChatId) -> None:
        if chat_id == self._session:
            self.email_edit.clear()
            self.reload()

    def _show_owner_controls(self) -> None:
        for widget in (self.email_edit, self.add_button, self.remove_button):
            widget.setVisible(self._owner)
        self.owner_note.setVisible(not self._owner)
        self._update_buttons()

    def _update_buttons(self, *_: object) -> None:
        item = self.member_list.currentItem()
        self.remove_button.setEnabled(
            self._owner and item is not None and item.data(Qt.ItemDataRole.UserRole) != self._own
        )

    def _set_inputs_enabled(self, enabled: bool) -> None:
        super()._set_inputs_enabled(enabled)
        if enabled:
            self._update_buttons()


class _SwitcherEdit(QLineEdit):
    """Typing filters; Up and Down move through the results without leaving the text field.

    Signals:
        stepped(int): Up (-1) or Down (+1) was pressed.
    """

    stepped = Signal(int)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Up, Qt.Key.Key_Down):
            self.stepped.emit(-1 if event.key() == Qt.Key.Key_Up else 1)
            return
        super().keyPressEvent(event)


class QuickSwitcher(QDialog):
    """Ctrl+K: type part of a chat's name, Enter opens it, Esc closes. It looks at every chat of the user's:
    the loaded ones at once, and all of them on the server after a short pause.

    Args:
        model: The chat list.
        colors: Custom colours.
        parent: Qt parent.
        bridge: The data layer, for the server's search (without it, the loaded chats only).

    Signals:
        chosen(object): The ``ChatId`` picked.
    """

    chosen = Signal(object)

    def __init__(
        self, model: ChatListModel, colors: Colors, parent: QWidget | None = None, *, bridge: StoreBridge | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Go to chat")
        self.setObjectName("quickSwitcher")
        self.proxy = ChatFilterProxyModel(self)
        self.proxy.setSourceModel(model)
        self.server_search: ChatSearch | None = None
        if bridge is not None:
            self.server_search = ChatSearch(bridge, self)
            self.proxy.set_search_pager(self.server_search.has_more, self.server_search.fetch_more)
            self.server_search.found.connect(self._select_if_none)
        self.search = _SwitcherEdit(self)
        self.search.setPlaceholderText("Go to chat…")
        self.search.setAccessibleName("Chat name")
        self.search.textChanged.connect(self._on_text)
        self.search.stepped.connect(self._step)
        self.search.returnPressed.connect(self.choose_current)
        self.results = QListView(self)
        self.results.setAccessibleName("Matching chats")
        self.results.setModel(self.proxy)
        self.results.setItemDelegate(ChatDelegate(colors, parent=self.results))
        self.results.setUniformItemSizes(True)
        self.results.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.results.activated.connect(self._choose_index)
        self.results.clicked.connect(self._choose_index)
        layout = QVBoxLayout(self)
        layout.addWidget(self.search)
        layout.addWidget(self.results, 1)
        line = self.fontMetrics().height()
        self.resize(line * 30, line * 26)
        self._on_text("")

    def choose_current(self) -> None:
        self._choose_index(self.results.currentIndex())

    def _on_text(self, text: str) -> None:
        self.proxy.set_filter_text(text)
        if self.server_search is not None:
            self.server_search.set_text(text)
        if self.proxy.rowCount():
            self.results.setCurrentIndex(self.proxy.index(0, 0))

    def _select_if_none(self, *_: object) -> None:
        """The server's matches came: pick the first one unless the user already picked one."""
        if self.proxy.rowCount() and not self.results.currentIndex().isValid():
            self.results.setCurrentIndex(self.proxy.index(0, 0))

    def _step(self, step: int) -> None:
        count = self.proxy.rowCount()
        if not count:
            return
        row = self.results.currentIndex().row()
        self.results.setCurrentIndex(self.proxy.index(max(0, min(count - 1, row + step)), 0))

    def _choose_index(self, index: QModelIndex) -> None:
        if not index.isValid():
            return
        chat_id = self.proxy.session_at(index.row())
        if chat_id is not None:
            self.chosen.emit(chat_id)
            self.accept()
