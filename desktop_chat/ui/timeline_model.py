"""``TimelineModel``: the open chat's messages for the chat view, fed by the timeline's row operations.

Older history comes through Qt's own protocol: ``canFetchMore``/``fetchMore`` first widen the window over
rows already loaded, then ask the store for the next older page (``load_older``). Qt also calls
``fetchMore`` whenever the *last* row is visible, which in a chat (newest at the bottom) is nearly always;
so the view says when older rows are actually wanted (``set_older_wanted``: the user is near the top).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from enum import IntEnum

from PySide6.QtCore import QObject, Qt

from desktop_chat.dal.api import Timeline
from desktop_chat.models import ChatId, DeliveryState, Message, MessageId, UserId
from desktop_chat.ui.bridge import StoreBridge
from desktop_chat.ui.live_model import AnyIndex, LiveListModel
from desktop_chat.ui.text import clock, full_time, local

# Messages from one person less than this far apart form a "run": one name, one avatar.
RUN_GAP = timedelta(minutes=5)
DELETED_TEXT = "This message was deleted"


class TimelineRole(IntEnum):
    MESSAGE = Qt.ItemDataRole.UserRole + 1  # the Message
    OWN = Qt.ItemDataRole.UserRole + 2  # bool: sent by the signed-in user
    SENDER = Qt.ItemDataRole.UserRole + 3  # str: display name
    STARTS_RUN = Qt.ItemDataRole.UserRole + 4  # bool: first of a run (shows name and avatar)
    DAY = Qt.ItemDataRole.UserRole + 5  # date | None: a day separator precedes this row
    DELIVERY = Qt.ItemDataRole.UserRole + 6  # str: DeliveryState value


def message_key(message: Message) -> MessageId:
    return message.id


def day_of(message: Message) -> date:
    return local(message.created_at).date()


def starts_day(message: Message, previous: Message | None) -> bool:
    return previous is None or day_of(previous) != day_of(message)


def starts_run(message: Message, previous: Message | None) -> bool:
    return (
        previous is None
        or previous.sender_id != message.sender_id
        or starts_day(message, previous)
        or message.created_at - previous.created_at > RUN_GAP
    )


class TimelineModel(LiveListModel[Message]):
    """The messages of the open chat (a window of its timeline), oldest at the top.

    Args:
        bridge: Where older pages come from.
        window: At most this many rows in the view at once.
        page: How many rows ``fetchMore`` brings into the window from rows already loaded.
        parent: Qt parent.
    """

    depends_on_previous_row = True

    def __init__(self, bridge: StoreBridge, *, window: int = 500, page: int = 50, parent: QObject | None = None):
        super().__init__(key=message_key, window=window, parent=parent)
        self._bridge = bridge
        self._page = page
        self._session: ChatId | None = None
        self._own: UserId | None = None
        self._names: dict[UserId, str] = {}
        self._older_wanted = False
        self._loading_older = False
        bridge.older_loaded.connect(self._on_older_loaded)

    # --- what is shown -------------------------------------------------------------------------------
    @property
    def chat_id(self) -> ChatId | None:
        return self._session

    def show_timeline(self, chat_id: ChatId, timeline: Timeline) -> None:
        self._session = chat_id
        self._older_wanted = False
        self._loading_older = False
        self.attach(timeline)

    def clear(self) -> None:
        self.detach()
        self._session = None
        self._names = {}

    def set_own_user(self, user_id: UserId | None) -> None:
        self._own = user_id

    def set_names(self, names: Mapping[UserId, str]) -> None:
        """Display names of the chat's members (the timeline has ids only)."""
        self._names = dict(names)
        if self.rowCount():
            self.dataChanged.emit(self.index(0, 0), self.index(self.rowCount() - 1, 0))

    def is_own(self, message: Message) -> bool:
        return self._own is not None and message.sender_id == self._own

    def sender_name(self, message: Message) -> str:
        if self.is_own(message):
            return "You"
        if message.sender_id is None:
            return "Deleted account"
        return self._names.get(message.sender_id, "Someone")

    @property
    def loading_older(self) -> bool:
        return self._loading_older

    # --- Qt ------------------------------------------------------------------------------------------
    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid():
            return None
        message = self.item(index.row())
        if role == Qt.ItemDataRole.DisplayRole:
            return DELETED_TEXT if message.deleted else message.content
        if role == TimelineRole.MESSAGE:
            return message
        if role == TimelineRole.OWN:
            return self.is_own(message)
        if role == TimelineRole.SENDER:
            return self.sender_name(message)
        if role == TimelineRole.STARTS_RUN:
            return starts_run(message, self.item_before(index.row()))
        if role == TimelineRole.DAY:
            return day_of(message) if starts_day(message, self.item_before(index.row())) else None
        if role == TimelineRole.DELIVERY:
            return message.delivery.value
        if role == Qt.ItemDataRole.ToolTipRole:
            tip = full_time(message.created_at)
            if message.delivery is DeliveryState.FAILED and message.error:
                tip += f"\nNot sent: {message.error}"
            return tip
        if role == Qt.ItemDataRole.AccessibleTextRole:
            return self._spoken(message)
        return None

    def canFetchMore(self, parent: AnyIndex) -> bool:
        if parent.isValid() or self._session is None or not self._older_wanted:
            return False
        if self.rows_above:
            return True
        return not self._loading_older and self._bridge.has_older(self._session)

    def fetchMore(self, parent: AnyIndex) -> None:
        if not self.canFetchMore(parent) or self._session is None:
            return
        if self.extend_up(self._page):
            return
        self._loading_older = True
        self._bridge.load_older(self._session)

    def set_older_wanted(self, wanted: bool) -> None:
        """The view is near its top: ``canFetchMore`` may say yes (see the module docstring)."""
        self._older_wanted = wanted

    # --- internals -----------------------------------------------------------------------------------
    def _on_older_loaded(self, chat_id: ChatId, _count: int) -> None:
        if chat_id == self._session:
            self._loading_older = False

    def _spoken(self, message: Message) -> str:
        text = DELETED_TEXT if message.deleted else message.content
        spoken = f"{self.sender_name(message)}, {clock(message.created_at)}: {text}"
        if message.edited and not message.deleted:
            spoken += " (edited)"
        if message.delivery is DeliveryState.PENDING:
            spoken += ". Sending."
        elif message.delivery is DeliveryState.FAILED:
            spoken += f". Not sent: {message.error or 'unknown reason'}."
        return spoken


__all__ = [
    "DELETED_TEXT",
    "TimelineModel",
    "TimelineRole",
    "day_of",
    "message_key",
    "starts_day",
    "starts_run",
]
