"""``LiveListModel``: a Qt list model that mirrors a ``LiveList`` by translating its row operations.

The data layer announces "rows inserted / changed / removed / reset"; this model replays them on a mirror
and tells Qt with ``beginInsertRows``/``dataChanged``/``beginRemoveRows``/``beginResetModel``. A remove
followed by an insert of the same item (how ``LiveList`` announces a move) becomes ``beginMoveRows``, so
selections and persistent indexes follow the item.

Optionally the model shows only a *window* of at most ``window`` consecutive rows of the list. A
``QListView`` with rows of different heights lays out every row again on each insertion, at a few
microseconds of Python per row; a timeline that has grown to 100,000 loaded messages would stutter on
every new message. The window keeps the view's row count bounded: it grows at an edge when the view asks
(``extend_up``/``extend_down``, or an insertion at an edge the window touches) and is trimmed on the side
farther from the *focus* row, which the view reports as the user scrolls.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Any, Generic, TypeVar

import shiboken6
from PySide6.QtCore import QAbstractListModel, QModelIndex, QObject, QPersistentModelIndex, Signal

from desktop_chat.dal.live_list import LiveList, RowChange, RowsChanged, RowsInserted, RowsRemoved, RowsReset

T = TypeVar("T")
AnyIndex = QModelIndex | QPersistentModelIndex


class LiveListModel(QAbstractListModel, Generic[T]):
    """A list model fed by a ``LiveList``'s row operations; subclasses implement ``data``.

    Args:
        key: The identity of an item (the same function the ``LiveList`` uses).
        window: At most this many rows are shown at once (None: all of them).
        parent: Qt parent.

    Signals:
        rows_arrived_below(int): Rows were inserted below the window (the view does not show them yet).
    """

    rows_arrived_below = Signal(int)

    # Whether a row's presentation depends on the row before it (a timeline's day separators do), so that
    # inserting or removing a row must also refresh the row after it.
    depends_on_previous_row = False

    def __init__(self, *, key: Callable[[T], Hashable], window: int | None = None, parent: QObject | None = None):
        super().__init__(parent)
        if window is not None and window < 1:
            raise ValueError("window must be positive")
        self._key = key
        self._window = window
        self._all: list[T] = []
        self._lo = 0
        self._hi = 0
        self._live: LiveList[T, Any] | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._focus: Hashable | None = None
        self._last_insert_at_top = False

    # --- attaching -----------------------------------------------------------------------------------
    def attach(self, live: LiveList[T, Any], focus: Hashable | None = None) -> None:
        """Mirror ``live`` from now on: the window shows the newest rows, or the rows around the item with
        key ``focus`` when it is there."""
        self.detach()
        self._live = live
        self._unsubscribe = live.subscribe(self._on_changes)
        self._focus = focus
        self._reset(live.rows)

    def detach(self) -> None:
        """Stop mirroring and show nothing."""
        if self._unsubscribe is not None:
            self._unsubscribe()
        self._unsubscribe = None
        self._live = None
        if self._all:
            self.beginResetModel()
            self._all = []
            self._lo = self._hi = 0
            self.endResetModel()

    @property
    def live(self) -> LiveList[T, Any] | None:
        return self._live

    # --- reading -------------------------------------------------------------------------------------
    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008 (Qt's default argument)
        return 0 if parent.isValid() else self._hi - self._lo

    def item(self, row: int) -> T:
        """The item at view row ``row``."""
        if not 0 <= row < self._hi - self._lo:
            raise IndexError(row)
        return self._all[self._lo + row]

    def item_before(self, row: int) -> T | None:
        """The item just above view row ``row`` in the whole list (it may lie outside the window)."""
        position = self._lo + row - 1
        return self._all[position] if position >= 0 else None

    def items(self) -> Sequence[T]:
        """The rows in the window, top to bottom."""
        return self._all[self._lo : self._hi]

    def row_of(self, key: Hashable) -> int | None:
        """View row of the item with ``key``, or None if it is not in the window."""
        for position in range(self._lo, self._hi):
            if self._key(self._all[position]) == key:
                return position - self._lo
        return None

    @property
    def rows_above(self) -> int:
        """Loaded rows above the window."""
        return self._lo

    @property
    def rows_below(self) -> int:
        """Loaded rows below the window."""
        return len(self._all) - self._hi

    @property
    def total_rows(self) -> int:
        return len(self._all)

    # --- the window ----------------------------------------------------------------------------------
    def set_focus(self, key: Hashable | None) -> None:
        """The item the user is looking at; trimming keeps the window around it."""
        self._focus = key

    def extend_up(self, count: int) -> int:
        """Bring up to ``count`` loaded rows above the window into it; returns how many came."""
        count = min(count, self._lo)
        if count <= 0:
            return 0
        self.beginInsertRows(QModelIndex(), 0, count - 1)
        self._lo -= count
        self.endInsertRows()
        self._last_insert_at_top = True
        self._trim()
        return count

    def extend_down(self, count: int) -> int:
        """Bring up to ``count`` loaded rows below the window into it; returns how many came."""
        count = min(count, len(self._all) - self._hi)
        if count <= 0:
            return 0
        size = self._hi - self._lo
        self.beginInsertRows(QModelIndex(), size, size + count - 1)
        self._hi += count
        self.endInsertRows()
        self._last_insert_at_top = False
        self._trim()
        return count

    def show_around(self, key: Hashable) -> bool:
        """Move the window so that the item with ``key`` is in its middle; False when it is not loaded."""
        position = next((n for n, item in enumerate(self._all) if self._key(item) == key), None)
        if position is None:
            return False
        self._focus = key
        if self._lo <= position < self._hi:
            return True
        self.beginResetModel()
        total = len(self._all)
        size = total if self._window is None else min(self._window, total)
        self._lo = max(0, min(position - size // 2, total - size))
        self._hi = self._lo + size
        self.endResetModel()
        return True

    def show_newest(self) -> None:
        """Move the window to the end of the list (the newest rows)."""
        if self._hi == len(self._all):
            return
        self.beginResetModel()
        self._hi = len(self._all)
        self._lo = max(0, self._hi - (self._window or self._hi))
        self._focus = None
        self.endResetModel()

    # --- translating row operations ------------------------------------------------------------------
    def _on_changes(self, changes: Sequence[RowChange[T]]) -> None:
        if not shiboken6.isValid(self):
            # Deleted by Qt (its window closed) while still listening: stop, rather than touch a dead object.
            if self._unsubscribe is not None:
                self._unsubscribe()
                self._unsubscribe = None
            return
        arrived_below = 0
        index = 0
        while index < len(changes):
            change = changes[index]
            following = changes[index + 1] if index + 1 < len(changes) else None
            if (
                isinstance(change, RowsRemoved)
                and change.count == 1
                and isinstance(following, RowsInserted)
                and len(following.rows) == 1
                and self._key(following.rows[0]) == self._key(self._all[change.start])
            ):
                arrived_below += self._move(change.start, following.start, following.rows[0])
                index += 2
                continue
            if isinstance(change, RowsReset):
                self._reset(change.rows)
            elif isinstance(change, RowsInserted):
                arrived_below += self._insert(change.start, change.rows)
            elif isinstance(change, RowsChanged):
                self._change(change.start, change.rows)
            else:
                self._remove(change.start, change.count)
            index += 1
        if self._lo == self._hi and self._all:
            self._refill()
        self._trim()
        if arrived_below:
            self.rows_arrived_below.emit(arrived_below)

    def _reset(self, rows: Sequence[T]) -> None:
        self.beginResetModel()
        self._all = list(rows)
        total = len(self._all)
        size = total if self._window is None else min(self._window, total)
        focus_position = None
        if self._focus is not None:
            focus_position = next(
                (position for position, item in enumerate(self._all) if self._key(item) == self._focus), None
            )
        if focus_position is None:
            self._lo, self._hi = total - size, total
        else:
            self._lo = max(0, min(focus_position - size // 2, total - size))
            self._hi = self._lo + size
        self.endResetModel()

    def _insert(self, start: int, rows: Sequence[T]) -> int:
        """Returns how many rows went below the window."""
        count = len(rows)
        total_before = len(self._all)
        lo, hi = self._lo, self._hi
        if start < lo or (start == lo and lo > 0):
            self._all[start:start] = rows
            self._lo += count
            self._hi += count
            return 0
        if lo < start < hi or start == lo or (start == hi and hi == total_before):
            first = start - lo
            self.beginInsertRows(QModelIndex(), first, first + count - 1)
            self._all[start:start] = rows
            self._hi += count
            self.endInsertRows()
            self._last_insert_at_top = first == 0 and lo == 0 and hi > lo
            self._refresh_row(first + count)
            return 0
        self._all[start:start] = rows
        return count

    def _change(self, start: int, rows: Sequence[T]) -> None:
        end = start + len(rows)
        self._all[start:end] = rows
        first, last = max(start, self._lo), min(end, self._hi) - 1
        if self.depends_on_previous_row and self._lo <= end < self._hi:
            last = end
        if first <= last:
            self.dataChanged.emit(self.index(first - self._lo), self.index(last - self._lo))

    def _remove(self, start: int, count: int) -> None:
        end = start + count
        lo, hi = self._lo, self._hi
        above = max(0, min(end, lo) - start)
        inside_first, inside_end = max(start, lo), min(end, hi)
        inside = max(0, inside_end - inside_first)
        if inside:
            self.beginRemoveRows(QModelIndex(), inside_first - lo, inside_end - lo - 1)
            del self._all[start:end]
            self._lo -= above
            self._hi -= above + inside
            self.endRemoveRows()
            self._refresh_row(inside_first - lo)
        else:
            del self._all[start:end]
            self._lo -= above
            self._hi -= above

    def _move(self, source: int, destination: int, item: T) -> int:
        """``item`` left ``source`` and came back at ``destination`` (counted without the source row)."""
        lo, hi = self._lo, self._hi
        if lo <= source < hi and lo <= destination <= hi - 1:
            view_source, view_destination = source - lo, destination - lo
            if view_source == view_destination:
                self._all[source] = item
                self.dataChanged.emit(self.index(view_source), self.index(view_source))
                self._refresh_row(view_source + 1)
                return 0
            # Qt counts the destination before the move: "insert before this row of the old list".
            before = view_destination + 1 if view_destination > view_source else view_destination
            self.beginMoveRows(QModelIndex(), view_source, view_source, QModelIndex(), before)
            del self._all[source]
            self._all.insert(destination, item)
            self.endMoveRows()
            self.dataChanged.emit(self.index(view_destination), self.index(view_destination))
            self._refresh_row(view_source)
            self._refresh_row(view_destination + 1)
            return 0
        self._remove(source, 1)
        return self._insert(destination, (item,))

    def _refresh_row(self, row: int) -> None:
        if self.depends_on_previous_row and 0 <= row < self._hi - self._lo:
            index = self.index(row)
            self.dataChanged.emit(index, index)

    def _refill(self) -> None:
        """Everything in the window went away but the list is not empty: show the rows next to it."""
        total = len(self._all)
        size = total if self._window is None else min(self._window, total)
        hi = min(total, max(self._hi, size))
        self.beginInsertRows(QModelIndex(), 0, size - 1)
        self._lo, self._hi = hi - size, hi
        self.endInsertRows()

    def _trim(self) -> None:
        if self._window is None:
            return
        size = self._hi - self._lo
        if size <= self._window:
            return
        focus_row = self.row_of(self._focus) if self._focus is not None else None
        if focus_row is None:
            focus_row = 0 if self._last_insert_at_top else size - 1
        focus = self._lo + focus_row
        # Keep the focus as central as the loaded rows allow, without growing the window at either end.
        new_lo = min(max(focus - self._window // 2, self._lo), self._hi - self._window)
        new_hi = new_lo + self._window
        if new_lo > self._lo:
            self.beginRemoveRows(QModelIndex(), 0, new_lo - self._lo - 1)
            self._lo = new_lo
            self.endRemoveRows()
        if new_hi < self._hi:
            size = self._hi - self._lo
            self.beginRemoveRows(QModelIndex(), size - (self._hi - new_hi), size - 1)
            self._hi = new_hi
            self.endRemoveRows()
