"""``TimelineModel``: the open chat's messages for the chat view, fed by the timeline's row operations.

Older history comes through Qt's own protocol: ``canFetchMore``/``fetchMore`` first widen the window over
rows already loaded, then ask the store for the next older page (``load_older``). Qt also calls
``fetchMore`` whenever the *last* row is visible, which in a chat (newest at the bottom) is nearly always;
so the view says when older rows are actually wanted (``set_older_wanted``: the user is near the top).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from enum import IntEnum
from uuid import UUID

from PySide6.QtCore import QObject, Qt, QTimer, Signal

from desktop_chat.dal.api import Timeline
from desktop_chat.dal.live_list import RowChange
from desktop_chat.models import ChatId, DeliveryState, Message, MessageId, ReadState, ShownReaction, UserId
from desktop_chat.ui.bridge import StoreBridge
from desktop_chat.ui.live_model import AnyIndex, LiveListModel
from desktop_chat.ui.text import clock, distinct_hues, full_time, hue_for, local, written_at

# Messages from one person less than this far apart form a "run": one name, one avatar.
RUN_GAP = timedelta(minutes=5)
DELETED_TEXT = "This message was deleted"
QUOTE_CHARS = 120  # a reply's quote shows at most this much of the original (one line, elided)


@dataclass(frozen=True, slots=True)
class Quote:
    """What a reply's bubble quotes of the message it answers."""

    message_id: MessageId
    sender: str  # "" while the original is being looked for
    excerpt: str
    seq: int | None = None  # where to jump to (None: not known)
    deleted: bool = False
    missing: bool = False  # not loaded (yet), or not visible to the user


@dataclass(frozen=True, slots=True)
class Receipt:
    """Who has read one of the user's own messages."""

    group: bool  # False: a one-to-one chat (the second tick), True: "Seen by N"
    readers: tuple[str, ...]  # names, for the tooltip
    count: int
    label: bool = True  # groups: show "Seen by N" here (where the count changes along the timeline)

    @property
    def read(self) -> bool:
        return self.count > 0


def excerpt(text: str, limit: int = QUOTE_CHARS) -> str:
    """The first line-ish of ``text`` for a quote (pure)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


class TimelineRole(IntEnum):
    MESSAGE = Qt.ItemDataRole.UserRole + 1  # the Message
    OWN = Qt.ItemDataRole.UserRole + 2  # bool: sent by the signed-in user
    SENDER = Qt.ItemDataRole.UserRole + 3  # str: display name
    STARTS_RUN = Qt.ItemDataRole.UserRole + 4  # bool: first of a run (shows name and avatar)
    DAY = Qt.ItemDataRole.UserRole + 5  # date | None: a day separator precedes this row
    DELIVERY = Qt.ItemDataRole.UserRole + 6  # str: DeliveryState value
    QUOTE = Qt.ItemDataRole.UserRole + 7  # Quote | None: what a reply quotes
    REACTIONS = Qt.ItemDataRole.UserRole + 8  # tuple[ShownReaction, ...]
    RECEIPT = Qt.ItemDataRole.UserRole + 9  # Receipt | None: who read an own message


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
    quote_wanted = Signal(object, object)  # (ChatId, MessageId): a reply's original is not loaded

    def __init__(self, bridge: StoreBridge, *, window: int = 500, page: int = 50, parent: QObject | None = None):
        super().__init__(key=message_key, window=window, parent=parent)
        self._bridge = bridge
        self._page = page
        self._session: ChatId | None = None
        self._own: UserId | None = None
        self._names: dict[UserId, str] = {}
        self._hues: dict[UserId, int] = {}
        self._older_wanted = False
        self._loading_older = False
        self._loading_newer = False
        self._unread_after: int | None = None
        self._divider: MessageId | None = None
        self._reactions: dict[MessageId, tuple[ShownReaction, ...]] = {}
        self._reads: ReadState | None = None
        self._receipts: dict[MessageId, Receipt] = {}
        self._originals: dict[MessageId, Message | None] = {}  # looked up for quotes (None: not visible)
        self._asked: set[MessageId] = set()
        self._wanted: list[MessageId] = []
        self._ask_timer = QTimer(self)
        self._ask_timer.setSingleShot(True)
        self._ask_timer.setInterval(0)
        self._ask_timer.timeout.connect(self._ask_for_originals)
        bridge.older_loaded.connect(self._on_older_loaded)
        bridge.newer_loaded.connect(self._on_newer_loaded)

    # --- what is shown -------------------------------------------------------------------------------
    @property
    def chat_id(self) -> ChatId | None:
        return self._session

    def show_timeline(self, chat_id: ChatId, timeline: Timeline, focus: MessageId | None = None) -> None:
        """Show ``timeline``: its newest rows, or those around message ``focus`` (a jump to it)."""
        self._session = chat_id
        self._older_wanted = False
        self._loading_older = False
        self._loading_newer = False
        self.attach(timeline, focus)

    def clear(self) -> None:
        self.detach()
        self._session = None
        self._names = {}
        self._hues = {}
        self._unread_after = None
        self._divider = None
        self._reactions = {}
        self._reads = None
        self._receipts = {}
        self._originals = {}
        self._asked = set()

    # --- replies, reactions, receipts --------------------------------------------------------------
    def original_of(self, message: Message) -> Message | None:
        """The loaded message ``message`` replies to (from the timeline, or looked up), if known."""
        if message.reply_to is None:
            return None
        live = self.live
        found = live.get(message.reply_to) if live is not None else None
        return found if found is not None else self._originals.get(message.reply_to)

    def quote_of(self, message: Message) -> Quote | None:
        """What ``message``'s bubble quotes, or None for a message that answers nothing."""
        target = message.reply_to
        if target is None or message.deleted:
            return None
        original = self.original_of(message)
        if original is None:
            if target not in self._originals and target not in self._asked:
                self._wanted.append(target)
                self._ask_timer.start()
            gone = target in self._originals  # looked up, and not visible
            return Quote(target, "", "Original message not available" if gone else "Loading…", missing=True)
        if original.deleted:
            return Quote(target, self.sender_name(original), DELETED_TEXT, original.seq, deleted=True)
        return Quote(target, self.sender_name(original), excerpt(original.content), original.seq)

    def set_original(self, message_id: MessageId, message: Message | None) -> None:
        """A reply's original was looked up (None: the user cannot see it); its replies show it now."""
        self._originals[message_id] = message
        self._refresh_where(lambda m: m.reply_to == message_id)

    def reactions_of(self, message_id: MessageId) -> tuple[ShownReaction, ...]:
        return self._reactions.get(message_id, ())

    def set_reactions(self, shown: Mapping[MessageId, tuple[ShownReaction, ...]], *, replace: bool = False) -> None:
        """What to show under these messages now (``replace``: under every message, the rest have none)."""
        if replace:
            changed = set(self._reactions) | set(shown)
            self._reactions = {key: value for key, value in shown.items() if value}
        else:
            changed = set(shown)
            for key, value in shown.items():
                if value:
                    self._reactions[key] = tuple(value)
                else:
                    self._reactions.pop(key, None)
        self._refresh_where(lambda m: m.id in changed)

    def receipt_of(self, message: Message) -> Receipt | None:
        return self._receipts.get(message.id)

    def set_read_state(self, state: ReadState | None) -> None:
        """Where the chat's members have read to: the own messages' ticks and "Seen by N" follow."""
        self._reads = state
        self._recount_receipts()

    def _recount_receipts(self) -> None:
        before = self._receipts
        self._receipts = self._receipts_for(self._all)
        changed = {key for key in set(before) | set(self._receipts) if before.get(key) != self._receipts.get(key)}
        if changed:
            self._refresh_where(lambda m: m.id in changed)

    def _receipts_for(self, rows: Sequence[Message]) -> dict[MessageId, Receipt]:
        state = self._reads
        own = self._own
        if state is None or own is None:
            return {}
        # Others' positions, sorted once: the readers of message s are those at or past s (a bisection),
        # so a big group costs a log per message, not a pass over its members.
        others = sorted((seq, str(user), user) for user, seq in state.positions.items() if user != own)
        seqs = [seq for seq, _, _ in others]
        receipts: dict[MessageId, Receipt] = {}
        later_count: int | None = None
        # Newest first: in a group, "Seen by N" shows where N changes (under the last message each reader reached).
        for message in reversed(rows):
            if message.sender_id != own or message.seq is None or message.deleted:
                continue
            start = bisect_left(seqs, message.seq)
            count = len(seqs) - start
            label = not state.one_to_one and count > 0 and count != later_count
            # Names only where they can be seen (the "Seen by" tooltip).
            names = tuple(sorted(self._names.get(user, "Someone") for _, _, user in others[start:])) if label else ()
            receipts[message.id] = Receipt(group=not state.one_to_one, readers=names, count=count, label=label)
            later_count = count
        return receipts

    def _refresh_where(self, wanted: Callable[[Message], bool]) -> None:
        rows = [row for row, message in enumerate(self.items()) if wanted(message)]
        if rows:
            self.dataChanged.emit(self.index(rows[0], 0), self.index(rows[-1], 0))

    def _ask_for_originals(self) -> None:
        wanted, self._wanted = list(dict.fromkeys(self._wanted)), []
        if self._session is None:
            return
        for message_id in wanted:
            if message_id not in self._asked:
                self._asked.add(message_id)
                self.quote_wanted.emit(self._session, message_id)

    # --- the "new messages" divider ------------------------------------------------------------------
    def set_unread_after(self, read_seq: int | None) -> None:
        """Messages from others beyond ``read_seq`` are new to the user: a divider goes above the first one
        (None: no divider). It stays where it is while the chat is open, as the user reads on."""
        self._unread_after = read_seq
        self._refresh_divider()

    @property
    def unread_after(self) -> int | None:
        return self._unread_after

    def is_first_unread(self, row: int) -> bool:
        """Whether the "new messages" divider goes above view row ``row``."""
        return self._divider is not None and self.item(row).id == self._divider

    def oldest_loaded_seq(self) -> int | None:
        """The lowest ``seq`` among the loaded rows (in the window or not)."""
        return next((message.seq for message in self._all if message.seq is not None), None)

    def has_divider(self) -> bool:
        return self._divider is not None

    def first_unread_row(self) -> int | None:
        """The view row the divider sits on, or None (not in the window, or nothing unread)."""
        return None if self._divider is None else self.row_of(self._divider)

    def unread_below(self, row: int) -> int:
        """New messages (from others, beyond the read position) below view row ``row``, loaded or not."""
        if self._unread_after is None:
            return 0
        return sum(1 for message in self._all[self.rows_above + row + 1 :] if self._is_unread(message))

    def _is_unread(self, message: Message) -> bool:
        read = self._unread_after
        return (
            read is not None
            and message.seq is not None
            and message.seq > read
            and not self.is_own(message)
            and not message.deleted
        )

    def _refresh_divider(self) -> None:
        divider = next((message.id for message in self._all if self._is_unread(message)), None)
        if divider == self._divider:
            return
        changed = [key for key in (self._divider, divider) if key is not None]
        self._divider = divider
        for key in changed:  # their rows grow or shrink by the divider
            row = self.row_of(key)
            if row is not None:
                self.dataChanged.emit(self.index(row, 0), self.index(row, 0))

    def _on_changes(self, changes: Sequence[RowChange[Message]]) -> None:
        super()._on_changes(changes)
        if self._unread_after is not None:
            self._refresh_divider()
        if self._reads is not None:
            self._recount_receipts()  # a new own message moves where "Seen by" goes

    def set_own_user(self, user_id: UserId | None) -> None:
        self._own = user_id

    def set_names(self, names: Mapping[UserId, str]) -> None:
        """Display names of the chat's members (the timeline has ids only)."""
        self._names = dict(names)
        if self._reads is not None:
            self._recount_receipts()

    def set_members(self, members: Iterable[UserId]) -> None:
        """The chat's people: each gets a colour of their own (``distinct_hues``)."""
        self._hues = {UserId(UUID(key)): hue for key, hue in distinct_hues(str(user) for user in members).items()}
        if self.rowCount():
            self.dataChanged.emit(self.index(0, 0), self.index(self.rowCount() - 1, 0))

    def hue_of(self, user: UserId | None) -> int:
        """The colour (hue) of a person in this chat: no two people of a chat share one (up to 12 people)."""
        if user is None:
            return 0
        hue = self._hues.get(user)
        return hue if hue is not None else hue_for(str(user))

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
        if role == TimelineRole.QUOTE:
            return self.quote_of(message)
        if role == TimelineRole.REACTIONS:
            return self.reactions_of(message.id)
        if role == TimelineRole.RECEIPT:
            return self.receipt_of(message)
        if role == Qt.ItemDataRole.ToolTipRole:
            written = written_at(message.id, message.created_at)
            tip = full_time(written)
            if written != message.created_at:
                tip += f"\nSent when the connection was back, at {clock(message.created_at)}"
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

    # --- newer rows (a detached window, after a jump) -------------------------------------------------
    def has_newer(self) -> bool:
        """Whether newer messages exist beyond the loaded rows (the timeline is a window around an old
        message, not the newest ones)."""
        return self._session is not None and self._bridge.has_newer(self._session)

    @property
    def loading_newer(self) -> bool:
        """A newer page is on its way: rows that arrive below are history, not new messages."""
        return self._loading_newer

    def fetch_newer(self) -> bool:
        """Bring newer rows: loaded ones below the window first, else the next newer page from the store.
        False when there is nothing to do (or a page is on its way)."""
        if self._session is None or self._loading_newer:
            return False
        if self.extend_down(self._page):
            return True
        if not self._bridge.has_newer(self._session):
            return False
        self._loading_newer = True
        self._bridge.load_newer(self._session)
        return True

    def row_of_seq(self, seq: int) -> MessageId | None:
        """The id of the loaded message ``seq`` (in the window or not), or None."""
        return next((message.id for message in self._all if message.seq == seq), None)

    def set_older_wanted(self, wanted: bool) -> None:
        """The view is near its top: ``canFetchMore`` may say yes (see the module docstring)."""
        self._older_wanted = wanted

    # --- internals -----------------------------------------------------------------------------------
    def _on_older_loaded(self, chat_id: ChatId, _count: int) -> None:
        if chat_id == self._session:
            self._loading_older = False

    def _on_newer_loaded(self, chat_id: ChatId, _count: int) -> None:
        if chat_id == self._session:
            self._loading_newer = False

    def _spoken(self, message: Message) -> str:
        text = DELETED_TEXT if message.deleted else message.content
        spoken = f"{self.sender_name(message)}, {clock(written_at(message.id, message.created_at))}: {text}"
        quote = self.quote_of(message)
        if quote is not None:
            spoken += f" (in reply to {quote.sender or 'a message'}: {quote.excerpt})"
        reactions = self.reactions_of(message.id)
        if reactions:
            spoken += ". Reactions: " + ", ".join(f"{r.emoji} {r.count}" for r in reactions)
        if message.edited and not message.deleted:
            spoken += " (edited)"
        if message.delivery is DeliveryState.PENDING:
            spoken += ". Sending."
        elif message.delivery is DeliveryState.FAILED:
            spoken += f". Not sent: {message.error or 'unknown reason'}."
        return spoken


__all__ = [
    "DELETED_TEXT",
    "Quote",
    "Receipt",
    "TimelineModel",
    "TimelineRole",
    "day_of",
    "excerpt",
    "message_key",
    "starts_day",
    "starts_run",
]
