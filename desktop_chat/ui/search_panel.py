"""The message search panel (Ctrl+Shift+F): find messages by their words and jump to them.

Results come as the user types: a pause of ``DEBOUNCE_MS`` starts a search, and a new query cancels the
one still running (its task is cancelled, and any answer that still comes for an older query is dropped).
The server marks each match in the snippet with private-use characters (``SNIPPET_START``/``SNIPPET_END``);
the snippet is painted as plain text with those pieces in bold on the accent tint (``QTextLayout`` format
ranges), never parsed as HTML, so nothing a message says can turn into markup or links. Up/Down move
through the results from the search field, Enter opens the chat at the chosen message, Esc closes the
panel. Offline the store searches the messages cached on this computer, and the panel says so.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import datetime
from enum import IntEnum

from PySide6.QtCore import (
    QAbstractListModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QPointF,
    QRectF,
    QSize,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QFont, QKeyEvent, QPainter, QTextCharFormat, QTextLayout, QTextOption
from PySide6.QtWidgets import (
    QAbstractItemView,
    QButtonGroup,
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

from desktop_chat.dal.api import MessageSearch
from desktop_chat.models import ChatId, SearchHit, split_snippet
from desktop_chat.ui.bridge import MessageQuery, Operation, StoreBridge
from desktop_chat.ui.text import list_time, one_line, plural
from desktop_chat.ui.theme import LIGHT, Colors

DEBOUNCE_MS = 250
SNIPPET_LINES = 3  # lines of snippet a result shows at most
AnyIndex = QModelIndex | QPersistentModelIndex


class ResultRole(IntEnum):
    HIT = Qt.ItemDataRole.UserRole + 1  # the SearchHit
    HEADING = Qt.ItemDataRole.UserRole + 2  # str: where and when (chat, sender, time)


class SearchResultsModel(QAbstractListModel):
    """The hits of the current search, newest first.

    Args:
        heading: Where and when a hit is, in words (chat title, sender, time).
        parent: Qt parent.
    """

    def __init__(self, heading: Callable[[SearchHit], str], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._heading = heading
        self._hits: list[SearchHit] = []

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008 (Qt's default argument)
        return 0 if parent.isValid() else len(self._hits)

    def hit(self, row: int) -> SearchHit:
        return self._hits[row]

    @property
    def hits(self) -> Sequence[SearchHit]:
        return tuple(self._hits)

    def set_hits(self, hits: Sequence[SearchHit]) -> None:
        self.beginResetModel()
        self._hits = list(hits)
        self.endResetModel()

    def add_hits(self, hits: Sequence[SearchHit]) -> None:
        known = {hit.id for hit in self._hits}
        new = [hit for hit in hits if hit.id not in known]
        if not new:
            return
        self.beginInsertRows(QModelIndex(), len(self._hits), len(self._hits) + len(new) - 1)
        self._hits += new
        self.endInsertRows()

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid() or not 0 <= index.row() < len(self._hits):
            return None
        hit = self._hits[index.row()]
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.AccessibleTextRole):
            text = one_line("".join(piece for piece, _ in split_snippet(hit.snippet)))
            return text if role == Qt.ItemDataRole.DisplayRole else f"{self._heading(hit)}: {text}"
        if role == ResultRole.HIT:
            return hit
        if role == ResultRole.HEADING:
            return self._heading(hit)
        return None


def snippet_layout(snippet: str, font: QFont, colors: Colors) -> tuple[str, list[QTextLayout.FormatRange]]:
    """The snippet's plain text (markers removed, on one line) and the format ranges of its matches."""
    text_parts: list[str] = []
    ranges: list[QTextLayout.FormatRange] = []
    position = 0
    for piece, lit in split_snippet(snippet):
        piece = piece.replace("\n", " ").replace("\r", " ").replace("\u2028", " ").replace("\u2029", " ")
        if lit and piece:
            fmt = QTextCharFormat()
            bold = QFont(font)
            bold.setBold(True)
            fmt.setFont(bold)
            tint = colors.accent.lighter(185) if not colors.dark else colors.accent.darker(160)
            fmt.setBackground(tint)
            span = QTextLayout.FormatRange()
            span.start, span.length, span.format = position, len(piece), fmt
            ranges.append(span)
        text_parts.append(piece)
        position += len(piece)
    return "".join(text_parts), ranges


class SearchResultDelegate(QStyledItemDelegate):
    """Paints a result: a muted heading line, then up to ``SNIPPET_LINES`` lines of snippet with its
    matches marked. Plain text throughout (see the module docstring)."""

    def __init__(self, colors: Colors = LIGHT, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._colors = colors

    def set_colors(self, colors: Colors) -> None:
        self._colors = colors

    def _margin(self, option: QStyleOptionViewItem) -> int:
        return max(4, option.fontMetrics.height() // 3)

    def sizeHint(self, option: QStyleOptionViewItem, index: AnyIndex) -> QSize:
        metrics = option.fontMetrics
        margin = self._margin(option)
        # Narrow: the list lays rows out as wide as its viewport; a wide hint would only add a scroll bar.
        return QSize(metrics.height() * 4, metrics.height() * (1 + SNIPPET_LINES) + margin * 3)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: AnyIndex) -> None:
        hit = index.data(ResultRole.HIT)
        if not isinstance(hit, SearchHit):
            return
        colors = self._colors
        rect = option.rect
        state = option.state
        font = QFont(option.font)
        metrics = option.fontMetrics
        margin = self._margin(option)
        painter.save()
        if state & QStyle.StateFlag.State_Selected:
            painter.fillRect(rect, colors.selection)
        elif state & QStyle.StateFlag.State_MouseOver:
            painter.fillRect(rect, colors.hover)
        width = rect.width() - 2 * margin
        painter.setPen(colors.muted)
        heading = metrics.elidedText(str(index.data(ResultRole.HEADING)), Qt.TextElideMode.ElideRight, width)
        painter.drawText(rect.left() + margin, rect.top() + margin + metrics.ascent(), heading)
        text, ranges = snippet_layout(hit.snippet, font, colors)
        layout = QTextLayout(text, font)
        option_text = QTextOption()
        option_text.setWrapMode(QTextOption.WrapMode.WrapAtWordBoundaryOrAnywhere)
        layout.setTextOption(option_text)
        layout.setFormats(ranges)
        layout.beginLayout()
        y = 0.0
        for _ in range(SNIPPET_LINES):
            line = layout.createLine()
            if not line.isValid():
                break
            line.setLineWidth(width)
            line.setPosition(QPointF(0, y))
            y += line.height()
        layout.endLayout()
        painter.setPen(colors.text)
        top = rect.top() + margin * 2 + metrics.height()
        painter.setClipRect(QRectF(rect.left(), top, rect.width(), rect.bottom() - top))
        layout.draw(painter, QPointF(rect.left() + margin, top))
        painter.restore()


class _QueryEdit(QLineEdit):
    """The search field: Up/Down move through the results, Esc asks to close."""

    stepped = Signal(int)
    escaped = Signal()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = event.key()
        if key in (Qt.Key.Key_Down, Qt.Key.Key_Up):
            self.stepped.emit(1 if key == Qt.Key.Key_Down else -1)
            return
        if key == Qt.Key.Key_Escape:
            self.escaped.emit()
            return
        super().keyPressEvent(event)


class MessageSearchPanel(QWidget):
    """Search messages in the open chat or in all chats, and open the chat at a result.

    Args:
        bridge: The data layer.
        heading: Where and when a hit is, in words (the main window knows chat titles and names).
        colors: Custom colours.
        parent: Qt parent.

    Signals:
        message_chosen(object, int): ``(ChatId, seq)`` the user chose a result.
        closed(): The user closed the panel (Esc, or the close button).
    """

    message_chosen = Signal(object, int)
    closed = Signal()

    def __init__(
        self,
        bridge: StoreBridge,
        heading: Callable[[SearchHit], str],
        *,
        colors: Colors = LIGHT,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("searchPanel")
        self._bridge = bridge
        self._chat: ChatId | None = None
        self._query: MessageQuery | None = None  # the query whose answer is awaited or shown
        self._task: asyncio.Task[None] | None = None
        self._found: MessageSearch | None = None
        self._more_asked = False

        self.field = _QueryEdit(self)
        self.field.setObjectName("searchField")
        self.field.setPlaceholderText("Search messages…")
        self.field.setAccessibleName("Search messages")
        self.field.setClearButtonEnabled(True)
        self.this_chat = QToolButton(self)
        self.this_chat.setText("This chat")
        self.this_chat.setCheckable(True)
        self.all_chats = QToolButton(self)
        self.all_chats.setText("All chats")
        self.all_chats.setCheckable(True)
        self.scope = QButtonGroup(self)
        self.scope.setExclusive(True)
        self.scope.addButton(self.this_chat)
        self.scope.addButton(self.all_chats)
        self.all_chats.setChecked(True)
        self.this_chat.setEnabled(False)  # until a chat is open (``set_chat``)
        self.close_button = QToolButton(self)
        self.close_button.setText("✕")
        self.close_button.setToolTip("Close search (Esc)")
        self.close_button.setAccessibleName("Close search")
        self.status = QLabel(self)
        self.status.setObjectName("searchStatus")
        self.status.setWordWrap(True)
        self.model = SearchResultsModel(heading, self)
        self.delegate = SearchResultDelegate(colors, self)
        self.results = QListView(self)
        self.results.setObjectName("searchResults")
        self.results.setAccessibleName("Search results")
        self.results.setModel(self.model)
        self.results.setItemDelegate(self.delegate)
        self.results.setUniformItemSizes(True)
        self.results.setMouseTracking(True)
        self.results.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.results.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.results.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # the keyboard stays in the field
        self.results.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.results.setResizeMode(QListView.ResizeMode.Adjust)
        self.setMinimumWidth(self.fontMetrics().height() * 20)

        top = QHBoxLayout()
        top.addWidget(self.field, 1)
        top.addWidget(self.close_button)
        scope = QHBoxLayout()
        scope.addWidget(self.this_chat)
        scope.addWidget(self.all_chats)
        scope.addStretch(1)
        layout = QVBoxLayout(self)
        unit = max(3, self.fontMetrics().height() // 3)
        layout.setContentsMargins(unit * 2, unit * 2, unit * 2, unit * 2)
        layout.addLayout(top)
        layout.addLayout(scope)
        layout.addWidget(self.status)
        layout.addWidget(self.results, 1)

        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(DEBOUNCE_MS)
        self._debounce.timeout.connect(self.search_now)

        self.field.textChanged.connect(self._on_text)
        self.field.stepped.connect(self.step)
        self.field.returnPressed.connect(self.choose_current)
        self.field.escaped.connect(self.close_panel)
        self.close_button.clicked.connect(self.close_panel)
        self.scope.buttonToggled.connect(self._on_scope)
        self.results.clicked.connect(lambda index: self.choose(index.row()))
        self.results.verticalScrollBar().valueChanged.connect(self._maybe_more)
        bridge.messages_found.connect(self._on_found)
        bridge.failed.connect(self._on_failed)
        self._show_status()

    # --- public --------------------------------------------------------------------------------------
    @property
    def query(self) -> MessageQuery | None:
        return self._query

    @property
    def task(self) -> asyncio.Task[None] | None:
        """The search running now (None when none is)."""
        return self._task if self._task is not None and not self._task.done() else None

    def set_colors(self, colors: Colors) -> None:
        self.delegate.set_colors(colors)
        self.results.viewport().update()

    def set_chat(self, chat_id: ChatId | None) -> None:
        """The open chat ("This chat" searches it; without one, only "All chats" can be chosen)."""
        if chat_id == self._chat:
            return
        self._chat = chat_id
        self.this_chat.setEnabled(chat_id is not None)
        if chat_id is None and self.this_chat.isChecked():
            self.all_chats.setChecked(True)
        elif self.this_chat.isChecked():
            self._restart()

    def open_panel(self, *, in_chat: bool | None = None) -> None:
        """Show the panel with the field focused and its text selected; ``in_chat`` picks the scope."""
        if in_chat is not None:
            (self.this_chat if in_chat and self._chat is not None else self.all_chats).setChecked(True)
        self.show()
        self.field.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.field.selectAll()

    def close_panel(self) -> None:
        self._cancel()
        self._debounce.stop()
        self.hide()
        self.closed.emit()

    def in_this_chat(self) -> bool:
        return self.this_chat.isChecked() and self._chat is not None

    def search_now(self) -> None:
        """Search for the field's text now (the debounce ends here); the search before is cancelled."""
        self._debounce.stop()
        self._cancel()
        text = self.field.text()
        self._found = None
        self._more_asked = False
        if not text.strip():
            self._query = None
            self.model.set_hits(())
            self._show_status()
            return
        self._query = MessageQuery(text.strip(), self._chat if self.in_this_chat() else None)
        self._task = self._bridge.search_messages(self._query)
        self._show_status()

    def step(self, delta: int) -> None:
        """Move the current result by ``delta`` rows (from the search field's Up/Down)."""
        count = self.model.rowCount()
        if not count:
            return
        current = self.results.currentIndex()
        row = min(max(current.row() + delta, 0), count - 1) if current.isValid() else (0 if delta > 0 else count - 1)
        index = self.model.index(row, 0)
        self.results.setCurrentIndex(index)
        self.results.scrollTo(index)
        self._maybe_more()

    def choose_current(self) -> None:
        current = self.results.currentIndex()
        if current.isValid():
            self.choose(current.row())
        elif self.model.rowCount():
            self.choose(0)

    def choose(self, row: int) -> None:
        hit = self.model.hit(row)
        self.message_chosen.emit(hit.chat_id, hit.seq)

    # --- internals -----------------------------------------------------------------------------------
    def _on_text(self, _text: str) -> None:
        self._debounce.start()

    def _on_scope(self, _button: object, checked: bool) -> None:
        if checked:
            self._restart()

    def _restart(self) -> None:
        if self.field.text().strip():
            self.search_now()

    def _cancel(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self._task = None

    def _on_found(self, query: MessageQuery, found: MessageSearch) -> None:
        if self._query is None or query.text != self._query.text or query.chat_id != self._query.chat_id:
            return  # the answer to an older query
        if query.cursor is None:
            self.model.set_hits(found.hits)
            if found.hits:
                self.results.setCurrentIndex(self.model.index(0, 0))
        else:
            self.model.add_hits(found.hits)
        self._found = found
        self._more_asked = False
        self._task = None
        self._show_status()

    def _on_failed(self, operation: str, sentence: str, context: object) -> None:
        if operation == Operation.SEARCH_MESSAGES.value and context == self._query:
            self._task = None
            self.status.setText(sentence)

    def _maybe_more(self, *_: object) -> None:
        """Near the end of the results, the next page (when there is one)."""
        found, query = self._found, self._query
        if found is None or query is None or found.next_cursor is None or self._more_asked:
            return
        bar = self.results.verticalScrollBar()
        current = self.results.currentIndex().row()
        if bar.maximum() - bar.value() > self.results.viewport().height() and current < self.model.rowCount() - 3:
            return
        self._more_asked = True
        self._query = MessageQuery(query.text, query.chat_id, found.next_cursor)
        self._task = self._bridge.search_messages(self._query)

    def _show_status(self) -> None:
        query, found = self._query, self._found
        if query is None:
            where = "this chat" if self.in_this_chat() else "all your chats"
            self.status.setText(f"Type to search the messages of {where}.")
            return
        if found is None:
            self.status.setText("Searching…")
            return
        count = self.model.rowCount()
        prefix = "Offline: only the messages saved on this computer were searched. " if found.local else ""
        if not count:
            self.status.setText(f"{prefix}No messages match “{query.text}”.")
        else:
            more = ", more as you scroll" if found.next_cursor is not None else ""
            self.status.setText(f"{prefix}{plural(count, 'message')} found{more}.")


def result_heading(title: str | None, sender: str | None, at: datetime, now: datetime) -> str:
    """ "Chat · Sender · 3 Dec" (parts that are not known are left out)."""
    parts = [part for part in (title, sender) if part]
    parts.append(list_time(at, now))
    return " · ".join(parts)


__all__ = [
    "DEBOUNCE_MS",
    "MessageSearchPanel",
    "ResultRole",
    "SearchResultDelegate",
    "SearchResultsModel",
    "result_heading",
    "snippet_layout",
]
