"""The online dot: painted on avatars (chat list, timeline) and shown beside names (members).

Presence comes from the chat topics the app holds (the open chat and a few recent ones); elsewhere it is
unknown, and no dot is shown rather than a wrong one.
"""

from __future__ import annotations

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPen, QPixmap


def paint_online_dot(painter: QPainter, avatar: QRectF, color: QColor, ring: QColor) -> QRectF:
    """Paint the dot on the lower right of a round ``avatar``, ringed in the background colour so that it
    stands off the avatar; returns where it went."""
    size = max(6.0, avatar.width() * 0.3)
    dot = QRectF(avatar.right() - size, avatar.bottom() - size, size, size)
    painter.save()
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(QPen(ring, max(1.5, size / 5)))
    painter.setBrush(color)
    painter.drawEllipse(dot)
    painter.restore()
    return dot


def online_icon(size: int, color: QColor | None) -> QIcon:
    """A dot of ``size`` pixels for a list item; ``color`` None gives a blank of the same size, so that
    names line up whether or not their person is online."""
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    if color is not None:
        painter = QPainter(pixmap)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(color)
        inset = size * 0.2
        painter.drawEllipse(QRectF(inset, inset, size - 2 * inset, size - 2 * inset))
        painter.end()
    return QIcon(pixmap)
