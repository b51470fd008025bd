"""The left pane: a filter box, the "new chat" button and the painted list of chats.

The list grows a page at a time as it is scrolled to its end (the model's ``fetchMore``), and the filter
box searches all of the user's chats on the server as well as the loaded ones (``ChatSearch``): no chat is
out of reach however many there are.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from PySide6.QtCore import (
    QItemSelectionModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QRectF,
    QSize,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QKeyEvent, QPainter
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from desktop_chat.dal.api import SEARCH_PAGE
from desktop_chat.models import ChatId, ChatListKey, ChatSummary
from desktop_chat.ui.bridge import StoreBridge
from desktop_chat.ui.chat_list_model import ChatFilterProxyModel, ChatListModel, ChatRole, unread_badge
from desktop_chat.ui.presence import paint_online_dot
from desktop_chat.ui.text import hue_for, initials, list_time
from desktop_chat.ui.theme import LIGHT, Colors

Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


class ChatDelegate(QStyledItemDelegate):
    """Paints one chat: avatar (with a dot when someone else is online in it), title, time, last message (or
    who is typing) and the unread badge.

    Args:
        colors: Custom colours.
        clock: "Now", for the time column.
        parent: Qt parent.
    """

    def __init__(self, colors: Colors = LIGHT, clock: Clock = _utc_now, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._colors = colors
        self._clock = clock

    def set_colors(self, colors: Colors) -> None:
        self._colors = colors

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> QSize:
        line = QFontMetricsF(option.font).height()
        return QSize(round(line * 16), round(line * 2 + line * 1.3))

    def paint(
        self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> None:
        summary = index.data(ChatRole.SUMMARY)
        if not isinstance(summary, ChatSummary):
            return
        c = self._colors
        rect = QRectF(option.rect)
        font = QFont(option.font)
        fm = QFontMetricsF(font)
        line = fm.height()
        unit = max(2.0, round(line / 3))
        state = option.state
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)

        card = rect.adjusted(unit, unit / 2, -unit, -unit / 2)
        if state & QStyle.StateFlag.State_Selected:
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(c.selection)
            painter.drawRoundedRect(card, unit * 2, unit * 2)
        elif state & QStyle.StateFlag.State_MouseOver:
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(c.hover)
            painter.drawRoundedRect(card, unit * 2, unit * 2)

        avatar_size = line * 2.3
        avatar = QRectF(card.left() + unit * 2, card.center().y() - avatar_size / 2, avatar_size, avatar_size)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor.fromHsl(hue_for(str(summary.chat.id)), 110, 110 if c.dark else 145))
        painter.drawEllipse(avatar)
        bold = QFont(font)
        bold.setWeight(QFont.Weight.DemiBold)
        painter.setFont(bold)
        painter.setPen(QColor("#ffffff"))
        painter.drawText(avatar, Qt.AlignmentFlag.AlignCenter, initials(summary.chat.title))
        if index.data(ChatRole.ONLINE):
            ring = c.selection if state & QStyle.StateFlag.State_Selected else c.surface
            paint_online_dot(painter, avatar, c.online, ring)

        left = avatar.right() + unit * 3
        right = card.right() - unit * 3
        top_line = QRectF(left, card.center().y() - line - unit / 4, right - left, line)
        bottom_line = QRectF(left, card.center().y() + unit / 4, right - left, line)

        small = QFont(font)
        small.setPointSizeF(max(6.0, font.pointSizeF() * 0.85))
        small_fm = QFontMetricsF(small)
        time_text = list_time(summary.last_activity, self._clock())
        time_width = small_fm.horizontalAdvance(time_text)
        painter.setFont(small)
        painter.setPen(c.accent if summary.unread_count else c.muted)
        painter.drawText(top_line, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, time_text)

        title_width = top_line.width() - time_width - unit * 2
        painter.setFont(bold)
        painter.setPen(c.text)
        title = QFontMetricsF(bold).elidedText(summary.chat.title, Qt.TextElideMode.ElideRight, title_width)
        painter.drawText(top_line, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, title)

        badge_width = 0.0
        if summary.unread_count:
            count = unread_badge(summary.unread_count)
            badge_width = max(small_fm.height() * 1.35, small_fm.horizontalAdvance(count) + unit * 2.4)
            badge = QRectF(right - badge_width, 0, badge_width, small_fm.height() * 1.35)
            badge.moveCenter(bottom_line.center())
            badge.moveRight(right)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(c.accent)
            painter.drawRoundedRect(badge, badge.height() / 2, badge.height() / 2)
            badge_font = QFont(small)
            badge_font.setWeight(QFont.Weight.Bold)
            painter.setFont(badge_font)
            painter.setPen(c.accent_text)
            painter.drawText(badge, Qt.AlignmentFlag.AlignCenter, count)

        preview_rect = QRectF(bottom_line)
        preview_rect.setRight(bottom_line.right() - badge_width - (unit * 2 if badge_width else 0))
        typing = int(index.data(ChatRole.TYPING) or 0)
        if typing:
            italic = QFont(font)
            italic.setItalic(True)
            painter.setFont(italic)
            painter.setPen(c.accent)
            text = "typing…" if typing == 1 else f"{typing} people typing…"
        else:
            painter.setFont(font)
            painter.setPen(c.muted)
            text = str(index.data(ChatRole.PREVIEW) or "No messages yet")
        text = fm.elidedText(text, Qt.TextElideMode.ElideRight, preview_rect.width())
        painter.drawText(preview_rect, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, text)
        painter.restore()


class ChatSearch(QObject):
    """Asks the server for the chats matching a filter as the user types (after a pause), and for the next
    page of matches when the filtered view reaches its end. The data layer puts the matches into the chat
    list, where a filter proxy over it shows them with the loaded rows that match.

    Args:
        bridge: The data layer.
        parent: Qt parent.

    Signals:
        found(int): A page of matches for the current text came (how many).
    """

    found = Signal(int)
    DELAY_MS = 250  # typing pause before the server is asked

    def __init__(self, bridge: StoreBridge, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._bridge = bridge
        self._text = ""
        self._after: ChatListKey | None = None  # the last match so far: the next page starts below it
        self._asked: tuple[str, ChatListKey | None] | None = None  # what the server was asked and not answered
        self._more = False
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(self.DELAY_MS)
        self._timer.timeout.connect(self._ask_first)
        bridge.chats_found.connect(self._on_found)

    @property
    def text(self) -> str:
        return self._text

    def set_text(self, text: str) -> None:
        text = text.strip()
        if text == self._text:
            return
        self._text, self._after, self._asked, self._more = text, None, None, False
        if text:
            self._timer.start()
        else:
            self._timer.stop()

    def has_more(self) -> bool:
        return bool(self._text) and self._more and self._asked is None and not self._timer.isActive()

    def fetch_more(self) -> None:
        if self.has_more():
            self._ask(self._after)

    def _ask_first(self) -> None:
        if self._text:
            self._ask(None)

    def _ask(self, after: ChatListKey | None) -> None:
        self._asked = (self._text, after)
        self._bridge.search_chats(self._text, after)

    def _on_found(self, text: str, after: object, found: object) -> None:
        if self._asked != (text.strip(), after) or not isinstance(found, list):
            return  # an answer for an older text or page
        self._asked = None
        if found:
            last = found[-1]
            if isinstance(last, ChatSummary):
                self._after = last.list_key
        self._more = len(found) >= SEARCH_PAGE and self._after is not None
        self.found.emit(len(found))


class _FilterEdit(QLineEdit):
    """The filter box: Down moves into the list, Esc clears.

    Signals:
        moved_down(): Down was pressed (the panel moves the focus into the list).
    """

    moved_down = Signal()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Down:
            self.moved_down.emit()
            return
        if event.key() == Qt.Key.Key_Escape and self.text():
            self.clear()
            return
        super().keyPressEvent(event)


class ChatListPanel(QWidget):
    """The filter box, the "new chat" button and the chat list.

    Args:
        model: The chats.
        colors: Custom colours.
        clock: "Now", for the time column.
        parent: Qt parent.
        bridge: The data layer, for the next pages of the list and the server's search (without it the
            panel shows and filters what the model holds).

    Signals:
        chat_selected(object): The user picked a chat (``ChatId``).
        new_chat_requested(): The "new chat" button was pressed.
        current_chat_removed(object): The selected chat (``ChatId``) left the list (left, deleted,
            or the user was removed from it).
    """

    chat_selected = Signal(object)
    new_chat_requested = Signal()
    current_chat_removed = Signal(object)

    def __init__(
        self,
        model: ChatListModel,
        colors: Colors = LIGHT,
        clock: Clock = _utc_now,
        parent: QWidget | None = None,
        *,
        bridge: StoreBridge | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("chatListPanel")
        self._model = model
        self._proxy = ChatFilterProxyModel(self)
        self._proxy.setSourceModel(model)
        self.server_search: ChatSearch | None = None
        if bridge is not None:
            model.set_pager(bridge.has_more_chats, bridge.load_more_chats)
            bridge.more_chats_loaded.connect(model.more_loaded)
            self.server_search = ChatSearch(bridge, self)
            self._proxy.set_search_pager(self.server_search.has_more, self.server_search.fetch_more)
        self._current: ChatId | None = None
        self._current_leaving = False

        self.filter_edit = _FilterEdit(self)
        self.filter_edit.setPlaceholderText("Search chats")
        self.filter_edit.setAccessibleName("Search chats")
        self.filter_edit.setClearButtonEnabled(True)
        self.filter_edit.textChanged.connect(self._on_filter_text)
        self.filter_edit.moved_down.connect(self._focus_list)

        self.new_chat_button = QToolButton(self)
        self.new_chat_button.setObjectName("newChatButton")
        self.new_chat_button.setText("+")
        self.new_chat_button.setToolTip("New chat (Ctrl+N)")
        self.new_chat_button.setAccessibleName("New chat")
        self.new_chat_button.clicked.connect(self.new_chat_requested)

        self.list_view = QListView(self)
        self.list_view.setObjectName("chatList")
        self.list_view.setAccessibleName("Chats")
        # When the selected row goes away, Qt selects a neighbour; that is not the user picking a chat.
        # Whether the chat is gone for good or comes back in the same batch (a move announced as remove +
        # insert, a filter) is decided once the batch is over. Connected before the view gets the model,
        # so that this runs before the selection model moves the current row.
        self._proxy.rowsAboutToBeRemoved.connect(self._before_rows_removed)
        self._proxy.rowsRemoved.connect(self._after_rows_removed)
        self.list_view.setModel(self._proxy)
        self._delegate = ChatDelegate(colors, clock, self.list_view)
        self.list_view.setItemDelegate(self._delegate)
        self.list_view.setUniformItemSizes(True)
        self.list_view.setMouseTracking(True)
        self.list_view.setFrameShape(QListView.Shape.NoFrame)
        self.list_view.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list_view.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.list_view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        selection = self.list_view.selectionModel()
        selection.currentChanged.connect(self._on_current_changed)
        # A chat that moves to the top keeps its selection (the model moves rows); a filter that hides and
        # shows it again does not, so put it back.
        self._proxy.layoutChanged.connect(self._reselect)
        self._proxy.rowsInserted.connect(self._reselect)
        self._proxy.modelReset.connect(self._reselect)

        # Said in words when there is nothing to show: no chats yet, or none that matches the search.
        self.empty_label = QLabel(self)
        self.empty_label.setObjectName("emptyState")
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
        self.empty_label.setWordWrap(True)
        self.empty_label.hide()
        for signal in (self._proxy.rowsInserted, self._proxy.rowsRemoved, self._proxy.modelReset):
            signal.connect(self._update_empty)
        self.filter_edit.textChanged.connect(self._update_empty)

        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(self.filter_edit, 1)
        top.addWidget(self.new_chat_button)
        layout = QVBoxLayout(self)
        margin = max(4, self.fontMetrics().height() // 2)
        layout.setContentsMargins(margin, margin, margin // 2, 0)
        layout.setSpacing(margin)
        layout.addLayout(top)
        layout.addWidget(self.empty_label)
        layout.addWidget(self.list_view, 1)
        self._update_empty()

    @property
    def proxy(self) -> ChatFilterProxyModel:
        return self._proxy

    @property
    def current(self) -> ChatId | None:
        return self._current

    def set_colors(self, colors: Colors) -> None:
        self._delegate.set_colors(colors)
        self.list_view.viewport().update()

    def select(self, chat_id: ChatId | None) -> None:
        """Make ``chat_id`` the current chat (None: no chat), as if the user had clicked it."""
        if chat_id is None:
            self._current = None
            self._clear_selection()
            return
        row = self._model.row_of(chat_id)
        if row is None:
            return
        proxy_index = self._proxy.mapFromSource(self._model.index(row, 0))
        if not proxy_index.isValid():
            self.filter_edit.clear()
            proxy_index = self._proxy.mapFromSource(self._model.index(row, 0))
        self.list_view.selectionModel().setCurrentIndex(proxy_index, QItemSelectionModel.SelectionFlag.ClearAndSelect)
        self.list_view.scrollTo(proxy_index)

    def select_relative(self, step: int) -> None:
        """Select the chat ``step`` rows below (negative: above) the current one."""
        count = self._proxy.rowCount()
        if not count:
            return
        current = self.list_view.currentIndex()
        row = (current.row() + step) % count if current.isValid() else 0
        chat_id = self._proxy.session_at(row)
        if chat_id is not None:
            self.select(chat_id)

    def _on_filter_text(self, text: str) -> None:
        self._proxy.set_filter_text(text)
        if self.server_search is not None:
            self.server_search.set_text(text)

    def focus_filter(self) -> None:
        self.filter_edit.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.filter_edit.selectAll()

    def _update_empty(self, *_: object) -> None:
        if self._proxy.rowCount():
            self.empty_label.hide()
            return
        needle = self.filter_edit.text().strip()
        if needle:
            self.empty_label.setText(f"No chat matches “{needle}”.")
        else:
            self.empty_label.setText("No chats yet.\nStart one with + (Ctrl+N), or wait for someone to add you.")
        self.empty_label.show()

    def _focus_list(self) -> None:
        self.list_view.setFocus()
        if not self.list_view.currentIndex().isValid() and self._proxy.rowCount():
            self.list_view.setCurrentIndex(self._proxy.index(0, 0))

    def _before_rows_removed(self, _parent: QModelIndex, first: int, last: int) -> None:
        current = self.list_view.currentIndex()
        if current.isValid() and first <= current.row() <= last:
            self._current_leaving = True

    def _after_rows_removed(self, *_: object) -> None:
        if self._current_leaving:
            QTimer.singleShot(0, self._settle_current)

    def _settle_current(self) -> None:
        self._current_leaving = False
        if self._current is None:
            return
        if self._model.row_of(self._current) is None:
            gone, self._current = self._current, None
            self._clear_selection()
            self.current_chat_removed.emit(gone)
        else:
            self._reselect()

    def _clear_selection(self) -> None:
        selection = self.list_view.selectionModel()
        selection.clearSelection()
        selection.clearCurrentIndex()

    def _on_current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if not current.isValid() or self._current_leaving:
            return
        chat_id = self._proxy.session_at(current.row())
        if chat_id is not None and chat_id != self._current:
            self._current = chat_id
            self.chat_selected.emit(chat_id)

    def _reselect(self, *_: object) -> None:
        if self._current is None:
            return
        selected = self.list_view.currentIndex()
        if selected.isValid() and self._proxy.session_at(selected.row()) == self._current:
            return
        row = self._model.row_of(self._current)
        if row is None:
            return
        proxy_index = self._proxy.mapFromSource(self._model.index(row, 0))
        if proxy_index.isValid():
            self.list_view.selectionModel().setCurrentIndex(
                proxy_index, QItemSelectionModel.SelectionFlag.ClearAndSelect
            )
        else:
            self._clear_selection()  # filtered out: highlight nothing rather than a neighbour
