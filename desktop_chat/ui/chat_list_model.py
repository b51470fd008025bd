"""The chat list: ``ChatListModel`` over ``store.chat_list()`` and a filtering proxy.

The ``LiveList`` already keeps chats sorted by last activity; the model only translates its row
operations (a chat that gets a message *moves* to the top, keeping its selection) and adds who is typing
and who is online.
The list is loaded a page at a time: the model answers Qt's ``canFetchMore``/``fetchMore`` (asked when the
view shows its last row) with the next page from the store. While a filter is on, the proxy answers them
with the next page of the server's search instead: a filter looks at all chats, not just the loaded ones.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import IntEnum
from typing import cast

from PySide6.QtCore import QObject, QSortFilterProxyModel, Qt

from desktop_chat.dal.api import ChatList
from desktop_chat.models import ChatId, ChatSummary, DeliveryState, UserId
from desktop_chat.ui.live_model import AnyIndex, LiveListModel
from desktop_chat.ui.text import one_line, plural

DELETED_PREVIEW = "Message deleted"
UNREAD_CAP = 999  # shown as "999+" above this


def unread_badge(count: int) -> str:
    """The unread count as the badge shows it ("" for none)."""
    if count <= 0:
        return ""
    return f"{UNREAD_CAP}+" if count > UNREAD_CAP else str(count)


class ChatRole(IntEnum):
    SUMMARY = Qt.ItemDataRole.UserRole + 1  # the ChatSummary
    CHAT_ID = Qt.ItemDataRole.UserRole + 2  # ChatId
    PREVIEW = Qt.ItemDataRole.UserRole + 3  # str: the last message on one line, or ""
    ACTIVITY = Qt.ItemDataRole.UserRole + 4  # datetime: last message or creation
    UNREAD = Qt.ItemDataRole.UserRole + 5  # int
    TYPING = Qt.ItemDataRole.UserRole + 6  # int: how many others are typing
    ONLINE = Qt.ItemDataRole.UserRole + 7  # int: how many others are online (0 also when unknown)


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
        self._online: dict[ChatId, frozenset[UserId]] = {}
        self._own: UserId | None = None
        self._has_more: Callable[[], bool] | None = None
        self._load_more: Callable[[], object] | None = None
        self._loading_more = False

    def set_pager(self, has_more: Callable[[], bool], load_more: Callable[[], object]) -> None:
        """Where the next page comes from: ``load_more`` asks for it (``more_loaded`` says it came)."""
        self._has_more = has_more
        self._load_more = load_more

    def more_loaded(self, *_: object) -> None:
        """The page asked for came (or failed): Qt may ask for the next one."""
        self._loading_more = False

    @property
    def loading_more(self) -> bool:
        return self._loading_more

    def canFetchMore(self, parent: AnyIndex) -> bool:
        if parent.isValid() or self._has_more is None or self._loading_more:
            return False
        return self._has_more()

    def fetchMore(self, parent: AnyIndex) -> None:
        if not self.canFetchMore(parent) or self._load_more is None:
            return
        self._loading_more = True
        self._load_more()

    def show_list(self, chats: ChatList) -> None:
        self._typing = {}
        self._online = {}
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

    def set_online(self, chat_id: ChatId, users: frozenset[UserId]) -> None:
        """Who is in the chat now, by its presence (the signed-in user is left out)."""
        others = frozenset(user for user in users if user != self._own)
        if others == self._online.get(chat_id, frozenset()):
            return
        if others:
            self._online[chat_id] = others
        else:
            self._online.pop(chat_id, None)
        row = self.row_of(chat_id)
        if row is not None:
            self.dataChanged.emit(self.index(row, 0), self.index(row, 0), [ChatRole.ONLINE])

    def online(self, chat_id: ChatId) -> frozenset[UserId]:
        """The others online in the chat, as far as the app knows (the chats whose topics it holds)."""
        return self._online.get(chat_id, frozenset())

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
        if role == ChatRole.ONLINE:
            return len(self.online(summary.chat.id))
        if role == Qt.ItemDataRole.AccessibleTextRole:
            spoken = summary.chat.title
            if self.online(summary.chat.id):
                spoken += ", someone is online"
            if summary.unread_count > UNREAD_CAP:
                spoken += f", more than {UNREAD_CAP} unread messages"
            elif summary.unread_count:
                spoken += f", {plural(summary.unread_count, 'unread message')}"
            text = preview(summary)
            return f"{spoken}. {text}" if text else spoken
        return None


class ChatFilterProxyModel(QSortFilterProxyModel):
    """Shows the chats whose title or last message contains the filter text (any case).

    The source order (most recent first) is kept: the proxy filters, it does not sort. Without a filter
    Qt's ``fetchMore`` goes to the source (the next page of the list); with one, to the search pager when
    there is one (the next page of the server's matches), and never to the source: paging through the
    whole list to fill a filtered view would read every chat.
    """

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._needle = ""
        self._search_has_more: Callable[[], bool] | None = None
        self._search_more: Callable[[], None] | None = None

    def set_search_pager(self, has_more: Callable[[], bool], load_more: Callable[[], None]) -> None:
        self._search_has_more = has_more
        self._search_more = load_more

    @property
    def filtering(self) -> bool:
        return bool(self._needle)

    def canFetchMore(self, parent: AnyIndex) -> bool:
        if parent.isValid():
            return False
        if self._needle:
            return self._search_has_more is not None and self._search_has_more()
        return super().canFetchMore(parent)

    def fetchMore(self, parent: AnyIndex) -> None:
        if not self.canFetchMore(parent):
            return
        if self._needle:
            if self._search_more is not None:
                self._search_more()
            return
        super().fetchMore(parent)

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
