"""The status bar: connection, cache tier, messages waiting to send, and background problems in words."""

from __future__ import annotations

from PySide6.QtCore import QRectF, QSize, Qt, QTimer
from PySide6.QtGui import QColor, QPainter, QPaintEvent
from PySide6.QtWidgets import QLabel, QStatusBar, QWidget

from desktop_chat.dal.api import CacheStatus, ConnectionState, StoreStatus
from desktop_chat.ui.text import plural

CONNECTION_TEXT = {
    ConnectionState.LIVE: "Live",
    ConnectionState.CONNECTING: "Connecting…",
    ConnectionState.RECONNECTING: "Reconnecting…",
    ConnectionState.OFFLINE: "Offline",
}
CACHE_TEXT = {
    CacheStatus.ONLINE: "Cache: Redis",
    CacheStatus.OFFLINE: "Cache: memory only",  # Redis down or slow: the in-process tier serves
    CacheStatus.MEMORY_ONLY: "Cache: memory only",  # no Redis at all
    CacheStatus.DISABLED: "Cache: off",
}
_DOT_COLORS = {
    ConnectionState.LIVE: QColor("#2e9d5b"),
    ConnectionState.CONNECTING: QColor("#d39a1c"),
    ConnectionState.RECONNECTING: QColor("#d39a1c"),
    ConnectionState.OFFLINE: QColor("#9aa0a6"),
}


class _Dot(QWidget):
    """A small coloured circle, sized from the font."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._color = _DOT_COLORS[ConnectionState.OFFLINE]

    def set_color(self, color: QColor) -> None:
        self._color = color
        self.update()

    def sizeHint(self) -> QSize:
        side = max(6, self.fontMetrics().height() // 2)
        return QSize(side, side)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(self._color)
        side = min(self.width(), self.height())
        painter.drawEllipse(QRectF((self.width() - side) / 2, (self.height() - side) / 2, side, side))
        painter.end()


class _ElidedLabel(QLabel):
    """A label that shortens its text with "…" to the room it gets, instead of asking for more: a long
    sentence in the status bar must never widen the window (the full text is in the tooltip)."""

    def minimumSizeHint(self) -> QSize:
        return QSize(self.fontMetrics().horizontalAdvance("…") * 4, super().minimumSizeHint().height())

    def sizeHint(self) -> QSize:
        return QSize(
            min(super().sizeHint().width(), self.fontMetrics().averageCharWidth() * 40), super().sizeHint().height()
        )

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        rect = self.contentsRect().adjusted(self.margin(), 0, -self.margin(), 0)
        text = self.fontMetrics().elidedText(self.text(), Qt.TextElideMode.ElideRight, rect.width())
        painter.setPen(self.palette().color(self.foregroundRole()))
        painter.drawText(rect, int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter), text)
        painter.end()


class StatusBar(QStatusBar):
    """Shows a ``StoreStatus`` and the signed-in user; ``show_problem`` shows a sentence for a while.

    Args:
        parent: Qt parent.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("statusBar")
        self.setSizeGripEnabled(False)
        self.dot = _Dot(self)
        self.connection_label = QLabel(self)
        self.connection_label.setObjectName("connectionStatus")
        self.cache_label = QLabel(self)
        self.cache_label.setObjectName("cacheStatus")
        self.outbox_label = QLabel(self)
        self.outbox_label.setObjectName("outboxStatus")
        self.stale_label = _ElidedLabel(self)
        self.stale_label.setObjectName("staleStatus")
        self.problem_label = _ElidedLabel(self)
        self.problem_label.setObjectName("problemStatus")
        self.problem_label.hide()
        self._problem_timer = QTimer(self)
        self._problem_timer.setSingleShot(True)
        self._problem_timer.setInterval(10_000)
        self._problem_timer.timeout.connect(self.problem_label.hide)
        self.user_label = QLabel(self)
        self.user_label.setObjectName("userStatus")
        self.addWidget(self.dot)
        self.addWidget(self.connection_label)
        self.addWidget(self.cache_label)
        self.addWidget(self.outbox_label)
        self.addWidget(self.stale_label, 1)
        self.addWidget(self.problem_label, 1)
        self.addPermanentWidget(self.user_label)
        self.show_status(StoreStatus())

    def show_status(self, status: StoreStatus) -> None:
        connection = CONNECTION_TEXT[status.connection]
        self.connection_label.setText(connection)
        self.dot.set_color(_DOT_COLORS[status.connection])
        self.cache_label.setText(CACHE_TEXT[status.cache])
        waiting = status.outbox_depth
        self.outbox_label.setText(f"{plural(waiting, 'message')} waiting to send" if waiting else "")
        self.outbox_label.setVisible(waiting > 0)
        stale = "" if status.backend_reachable else "Server unreachable: showing saved chats, not up to date"
        self.stale_label.setText(stale)
        self.stale_label.setVisible(bool(stale))
        tooltip = status.detail or f"Connection: {connection}. {CACHE_TEXT[status.cache]}."
        for label in (self.connection_label, self.dot, self.cache_label, self.stale_label):
            label.setToolTip(tooltip)
        self.connection_label.setAccessibleName(f"Connection: {connection}")
        self.cache_label.setAccessibleName(CACHE_TEXT[status.cache])

    def show_user(self, name: str) -> None:
        self.user_label.setText(name)
        self.user_label.setAccessibleName(f"Signed in as {name}" if name else "")

    def show_problem(self, text: str) -> None:
        """A background operation failed: say so for a while (not showMessage, which hides the rest)."""
        self.problem_label.setText(text)
        self.problem_label.setToolTip(text)
        self.problem_label.show()
        self._problem_timer.start()
