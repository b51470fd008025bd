"""A sorted, keyed list that announces its changes as row operations (the views' reducer).

The data layer keeps one ``LiveList`` per view (the recent chats, each open chat's timeline). Changes go
in as facts ("this item now looks like this", "this key is gone"); out come row operations that a Qt
model turns into ``beginInsertRows``/``dataChanged``/``beginRemoveRows`` without thinking. Pure: no I/O,
no clock, no Qt.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True, slots=True)
class RowsInserted(Generic[T]):
    """``rows`` now sit at ``start .. start+len(rows)-1``; rows from ``start`` on moved down."""

    start: int
    rows: tuple[T, ...]


@dataclass(frozen=True, slots=True)
class RowsChanged(Generic[T]):
    """The rows at ``start .. start+len(rows)-1`` were replaced in place."""

    start: int
    rows: tuple[T, ...]


@dataclass(frozen=True, slots=True)
class RowsRemoved:
    """``count`` rows starting at ``start`` were removed."""

    start: int
    count: int


@dataclass(frozen=True, slots=True)
class RowsReset(Generic[T]):
    """Everything was replaced by ``rows``."""

    rows: tuple[T, ...]


RowChange = RowsInserted[T] | RowsChanged[T] | RowsRemoved | RowsReset[T]
Listener = Callable[[Sequence[RowChange[T]]], None]
Unsubscribe = Callable[[], None]


def coalesce(changes: Sequence[RowChange[T]]) -> list[RowChange[T]]:
    """Merge adjacent operations of the same kind (a burst of appends becomes one insert)."""
    merged: list[RowChange[T]] = []
    for change in changes:
        last = merged[-1] if merged else None
        if isinstance(change, RowsReset):
            merged = [change]
        elif (
            isinstance(change, RowsInserted)
            and isinstance(last, RowsInserted)
            and last.start <= change.start <= last.start + len(last.rows)
        ):
            offset = change.start - last.start
            merged[-1] = RowsInserted(last.start, last.rows[:offset] + change.rows + last.rows[offset:])
        elif (
            isinstance(change, RowsChanged)
            and isinstance(last, RowsChanged)
            and change.start == last.start + len(last.rows)
        ):
            merged[-1] = RowsChanged(last.start, last.rows + change.rows)
        elif isinstance(change, RowsChanged) and isinstance(last, RowsInserted):
            # A change to a row that was just inserted: fold it into the insert.
            end = last.start + len(last.rows)
            if last.start <= change.start and change.start + len(change.rows) <= end:
                offset = change.start - last.start
                rows = list(last.rows)
                rows[offset : offset + len(change.rows)] = change.rows
                merged[-1] = RowsInserted(last.start, tuple(rows))
            else:
                merged.append(change)
        elif isinstance(change, RowsRemoved) and isinstance(last, RowsRemoved) and change.start == last.start:
            merged[-1] = RowsRemoved(last.start, last.count + change.count)
        else:
            merged.append(change)
    return merged


def apply_changes(rows: list[T], changes: Iterable[RowChange[T]]) -> None:
    """Apply row operations to a plain list (what a view model does with them)."""
    for change in changes:
        if isinstance(change, RowsReset):
            rows[:] = change.rows
        elif isinstance(change, RowsInserted):
            rows[change.start : change.start] = change.rows
        elif isinstance(change, RowsChanged):
            rows[change.start : change.start + len(change.rows)] = change.rows
        else:
            del rows[change.start : change.start + change.count]


class LiveList(Generic[T, K]):
    """Items kept sorted by ``sort_key`` and unique by ``key``; every change is announced.

    Args:
        key: Identity of an item (a message id, a chat id).
        sort_key: Position of an item; ties keep insertion order. Must be consistent with ``key``: two
            different items may share a sort key, the same item always maps to one.
    """

    def __init__(self, key: Callable[[T], K], sort_key: Callable[[T], Any]) -> None:
        self._key = key
        self._sort_key = sort_key
        self._rows: list[T] = []
        self._sort_keys: list[Any] = []
        self._index: dict[K, T] = {}
        self._listeners: list[Listener[T]] = []
        self._pending: list[RowChange[T]] = []
        self._batch_depth = 0

    # --- reading -----------------------------------------------------------------------------------
    @property
    def rows(self) -> Sequence[T]:
        return tuple(self._rows)

    def __len__(self) -> int:
        return len(self._rows)

    def __iter__(self) -> Iterator[T]:
        return iter(tuple(self._rows))

    def get(self, key: K) -> T | None:
        return self._index.get(key)

    def position(self, key: K) -> int | None:
        """Row index of ``key``, or None."""
        item = self._index.get(key)
        if item is None:
            return None
        return self._locate(item)

    # --- listening ---------------------------------------------------------------------------------
    def subscribe(self, listener: Listener[T]) -> Unsubscribe:
        """Call ``listener`` with each batch of row operations; returns a function that unsubscribes."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Collect the changes made inside the block and announce them once, coalesced."""
        self._batch_depth += 1
        try:
            yield
        finally:
            self._batch_depth -= 1
            if self._batch_depth == 0:
                self._flush()

    # --- changing ----------------------------------------------------------------------------------
    def reset(self, items: Iterable[T]) -> None:
        unique: dict[K, T] = {}
        for item in items:
            unique[self._key(item)] = item
        ordered = sorted(unique.values(), key=self._sort_key)
        self._rows = ordered
        self._sort_keys = [self._sort_key(item) for item in ordered]
        self._index = unique
        self._emit(RowsReset(tuple(ordered)))

    def upsert(self, item: T) -> None:
        """Insert ``item``, or replace the item with the same key (moving it if its position changed)."""
        with self.batch():  # a move (remove + insert) is announced as one batch
            self._upsert(item)

    def _upsert(self, item: T) -> None:
        key = self._key(item)
        old = self._index.get(key)
        new_sort = self._sort_key(item)
        if old is not None:
            index = self._locate(old)
            if self._sort_keys[index] == new_sort:
                self._rows[index] = item
                self._index[key] = item
                self._emit(RowsChanged(index, (item,)))
                return
            del self._rows[index]
            del self._sort_keys[index]
            self._emit(RowsRemoved(index, 1))
        position = bisect.bisect_right(self._sort_keys, new_sort)
        self._rows.insert(position, item)
        self._sort_keys.insert(position, new_sort)
        self._index[key] = item
        self._emit(RowsInserted(position, (item,)))

    def upsert_many(self, items: Iterable[T]) -> None:
        with self.batch():
            for item in items:
                self.upsert(item)

    def remove(self, key: K) -> T | None:
        old = self._index.pop(key, None)
        if old is None:
            return None
        index = self._locate(old)
        del self._rows[index]
        del self._sort_keys[index]
        self._emit(RowsRemoved(index, 1))
        return old

    def retain(self, keep: Callable[[T], bool]) -> None:
        """Remove every item for which ``keep`` is false (e.g. trimming to the newest N)."""
        with self.batch():
            for item in [item for item in self._rows if not keep(item)]:
                self.remove(self._key(item))

    # --- internals ---------------------------------------------------------------------------------
    def _locate(self, item: T) -> int:
        sort = self._sort_key(item)
        start = bisect.bisect_left(self._sort_keys, sort)
        key = self._key(item)
        for index in range(start, len(self._rows)):
            if self._key(self._rows[index]) == key:
                return index
        raise LookupError(f"{key!r} is indexed but not in the rows")  # an invariant, not user input

    def _emit(self, change: RowChange[T]) -> None:
        self._pending.append(change)
        if self._batch_depth == 0:
            self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        changes = coalesce(self._pending)
        self._pending = []
        for listener in list(self._listeners):
            listener(changes)
