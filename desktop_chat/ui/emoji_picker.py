"""Choosing a reaction: a row of frequent emoji (the message menu) and a full picker with search.

The full list comes from the ``emoji`` package (every fully-qualified emoji of the current Unicode
release, with its English name to search by); skin-tone variants are left out to keep the grid short,
and anything the database would refuse as a reaction (``validate_emoji``) never shows.
"""

from __future__ import annotations

import functools

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QFont, QKeyEvent
from PySide6.QtWidgets import (
    QDialog,
    QLineEdit,
    QListView,
    QListWidget,
    QListWidgetItem,
    QVBoxLayout,
    QWidget,
)

from desktop_chat.errors import InvalidInput
from desktop_chat.models import validate_emoji

FREQUENT: tuple[str, ...] = ("👍", "❤️", "😂", "🎉", "😮", "😢", "🙏", "👀")
"""The reactions offered first (the message menu's row, and the top of the full picker)."""


@functools.cache
def all_emoji() -> tuple[tuple[str, str], ...]:
    """Every emoji the picker offers, as (emoji, searchable name), in code point order (faces first)."""
    # The emoji library's tables take ~50 ms to import: only when the full picker first opens, not with
    # the first frame (docs/architecture.md §10).
    import emoji as emoji_data

    chosen: list[tuple[str, str]] = []
    for char, data in emoji_data.EMOJI_DATA.items():
        name = str(data.get("en", "")).strip(":").replace("_", " ")
        if data.get("status") != emoji_data.STATUS["fully_qualified"] or "skin tone" in name:
            continue
        try:
            validate_emoji(char)
        except InvalidInput:
            continue
        chosen.append((char, name.lower()))
    faces = 0x1F600
    # Faces and people first (what reactions mostly are), then everything else in code point order.
    chosen.sort(key=lambda item: (ord(item[0][0]) < faces, ord(item[0][0]), item[0]))
    return tuple(chosen)


@functools.cache
def emoji_names() -> dict[str, str]:
    return dict(all_emoji())


def matching(query: str) -> list[str]:
    """The emoji whose names contain every word of ``query`` (all of them for a blank query)."""
    words = query.lower().split()
    return [char for char, name in all_emoji() if all(word in name for word in words)]


class EmojiPicker(QDialog):
    """A searchable grid of every emoji; choosing one emits ``chosen`` and closes.

    Signals:
        chosen(str): The emoji picked.
    """

    chosen = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("emojiPicker")
        self.setWindowTitle("Choose a reaction")
        self.search = QLineEdit(self)
        self.search.setObjectName("emojiSearch")
        self.search.setPlaceholderText("Search emoji (smile, heart, thumbs…)")
        self.search.setAccessibleName("Search emoji")
        self.search.setClearButtonEnabled(True)
        self.grid = QListWidget(self)
        self.grid.setObjectName("emojiGrid")
        self.grid.setAccessibleName("Emoji")
        self.grid.setViewMode(QListView.ViewMode.IconMode)
        self.grid.setResizeMode(QListView.ResizeMode.Adjust)
        self.grid.setMovement(QListView.Movement.Static)
        self.grid.setUniformItemSizes(True)
        self._emoji_font = QFont(self.font())
        self._emoji_font.setPointSizeF(self._emoji_font.pointSizeF() * 1.6)
        self.grid.setFont(self._emoji_font)
        side = round(self.fontMetrics().height() * 2.4)
        self.grid.setGridSize(QSize(side, side))
        layout = QVBoxLayout(self)
        layout.addWidget(self.search)
        layout.addWidget(self.grid, 1)
        self.search.textChanged.connect(self.filter)
        self.search.returnPressed.connect(self._choose_first)
        self.grid.itemActivated.connect(self._choose)
        self.grid.itemClicked.connect(self._choose)
        self.resize(side * 10, side * 9)
        self.filter("")

    def filter(self, query: str) -> None:
        """Show the emoji matching ``query`` (the frequent ones first when it is blank)."""
        self.grid.clear()
        found = matching(query)
        if not query.strip():
            found = [*FREQUENT, *(char for char in found if char not in FREQUENT)]
        names = emoji_names()
        for char in found:
            item = QListWidgetItem(char)
            item.setFont(self._emoji_font)
            item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
            item.setToolTip(names.get(char, ""))
            item.setData(Qt.ItemDataRole.AccessibleTextRole, names.get(char, char))
            self.grid.addItem(item)
        if self.grid.count():
            self.grid.setCurrentRow(0)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Down, Qt.Key.Key_Up) and self.search.hasFocus():
            self.grid.setFocus()  # arrows go from the search field into the grid
        super().keyPressEvent(event)

    def _choose_first(self) -> None:
        item = self.grid.currentItem() or self.grid.item(0)
        if item is not None:
            self._choose(item)

    def _choose(self, item: QListWidgetItem) -> None:
        self.chosen.emit(item.text())
        self.accept()


__all__ = ["FREQUENT", "EmojiPicker", "all_emoji", "matching"]
