"""The recent-chats list: ``ChatListModel`` over ``store.chat_list()`` and a filtering proxy.

The ``LiveList`` already keeps chats sorted by last activity; the model only translates its row
operations (a chat that gets a message *moves* to the top, keeping its selection) and adds who is typing.
"""

from __future__ import annotations

from enum import IntEnum
from typing import cast

from PySide6.QtCore import QObject, QSortFilterProxyModel, Qt

from desktop_chat.dal.api import ChatList
from desktop_chat.models import ChatId, ChatSummary, DeliveryState, UserId
from desktop_chat.ui.live_model import AnyIndex, LiveListModel
from desktop_chat.ui.text import one_line, plural

DELETED_PREVIEW = "Message deleted"


class ChatRole(IntEnum):
    SUMMARY = Qt.ItemDataRole.UserRole + 1  # the ChatSummary
    CHAT_ID = Qt.ItemDataRole.UserRole + 2  # ChatId
    PREVIEW = Qt.ItemDataRole.UserRole + 3  # str: the last message on one line, or ""
    ACTIVITY = Qt.ItemDataRole.UserRole + 4  # datetime: last message or creation
    UNREAD = Qt.ItemDataRole.UserRole + 5  # int
    TYPING = Qt.ItemDataRole.UserRole + 6  # int: how many others are typing


def summary_key(summary: ChatSummary) -> ChatId:
    return summary.chat.id


def preview(summary: ChatSummary) -> str:
    """The list's line under the title: what waits to go out first, else the last message."""
    waiting = summary.waiting
    if waiting is not None:
        state = "Not sent" if waiting.delivery is DeliveryState.FAILED else "Sending"
        return f"{state}: {one_line(waiting.content)}"
    message = summary.last_message
    if message is None:
        return ""
    return DELETED_PREVIEW if message.deleted else one_line(message.content)


class ChatListModel(LiveListModel[ChatSummary]):
    """The signed-in user's chats, most recent activity first.

    Args:
        parent: Qt parent.
    """

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(key=summary_key, parent=parent)
        self._typing: dict[ChatId, frozenset[UserId]] = {}
        self._own: UserId | None = None

    def show_list(self, chats: ChatList) -> None:
        self._typing = {}
        self.attach(chats)

    def set_own_user(self, user_id: UserId | None) -> None:
        self._own = user_id

    def set_typing(self, chat_id: ChatId, users: frozenset[UserId]) -> None:
        others = frozenset(user for user in users if user != self._own)
        if others == self._typing.get(chat_id, frozenset()):
            return
        if others:
            self._typing[chat_id] = others
        else:
            self._typing.pop(chat_id, None)
        row = self.row_of(chat_id)
        if row is not None:
            self.dataChanged.emit(self.index(row, 0), self.index(row, 0))

    def typing(self, chat_id: ChatId) -> frozenset[UserId]:
        return self._typing.get(chat_id, frozenset())

    def summary(self, chat_id: ChatId) -> ChatSummary | None:
        row = self.row_of(chat_id)
        return None if row is None else self.item(row)

    def unread_total(self) -> int:
        return sum(summary.unread_count for summary in self.items())

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid():
            return None
        summary = self.item(index.row())
        if role == Qt.ItemDataRole.DisplayRole:
            return summary.chat.title
        if role == ChatRole.SUMMARY:
            return summary
        if role == ChatRole.CHAT_ID:
            return summary.chat.id
        if role == ChatRole.PREVIEW:
            return preview(summary)
        if role == ChatRole.ACTIVITY:
            return summary.last_activity
        if role == ChatRole.UNREAD:
            return summary.unread_count
        if role == ChatRole.TYPING:
            return len(self.typing(summary.chat.id))
        if role == Qt.ItemDataRole.AccessibleTextRole:
            spoken = summary.chat.title
            if summary.unread_count:
                spoken += f", {plural(summary.unread_count, 'unread message')}"
            text = preview(summary)
            return f"{spoken}. {text}" if text else spoken
        return None


class ChatFilterProxyModel(QSortFilterProxyModel):
    """Shows the chats whose title or last message contains the filter text (any case).

    The source order (most recent first) is kept: the proxy filters, it does not sort.
    """

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._needle = ""

    def set_filter_text(self, text: str) -> None:
        needle = text.strip().casefold()
        if needle == self._needle:
            return
        self.beginFilterChange()
        self._needle = needle
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def filterAcceptsRow(self, source_row: int, source_parent: AnyIndex) -> bool:
        if not self._needle:
            return True
        source = self.sourceModel()
        if not isinstance(source, ChatListModel):
            return True
        summary = source.item(source_row)
        return self._needle in summary.chat.title.casefold() or self._needle in preview(summary).casefold()

    def session_at(self, row: int) -> ChatId | None:
        value = self.index(row, 0).data(ChatRole.CHAT_ID)
        return cast(ChatId | None, value)
