"""LiveListModel: Qt sees exactly the window of the LiveList, whatever the row operations and window moves."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st
from PySide6.QtCore import QModelIndex, QObject, QPersistentModelIndex, Qt
from PySide6.QtWidgets import QApplication
from pytestqt.modeltest import ModelTester

from desktop_chat.dal.live_list import LiveList
from desktop_chat.ui.live_model import LiveListModel


@dataclass(frozen=True)
class Item:
    key: int
    rank: int
    text: str = ""


class ItemModel(LiveListModel[Item]):
    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if role == Qt.ItemDataRole.DisplayRole and index.isValid():
            item = self.item(index.row())
            return f"{item.key}:{item.rank}:{item.text}"
        return None


class QtMirror(QObject):
    """What a view knows: the rows as announced by Qt's signals only."""

    def __init__(self, model: ItemModel) -> None:
        super().__init__()
        self.model = model
        self.rows: list[Item] = list(model.items())
        model.rowsInserted.connect(self._inserted)
        model.rowsRemoved.connect(self._removed)
        model.rowsMoved.connect(self._moved)
        model.dataChanged.connect(self._changed)
        model.modelReset.connect(self._reset)

    def _inserted(self, _parent: QModelIndex, first: int, last: int) -> None:
        self.rows[first:first] = [self.model.item(row) for row in range(first, last + 1)]

    def _removed(self, _parent: QModelIndex, first: int, last: int) -> None:
        del self.rows[first : last + 1]

    def _moved(self, _parent: QModelIndex, start: int, end: int, _destination: QModelIndex, row: int) -> None:
        moving = self.rows[start : end + 1]
        del self.rows[start : end + 1]
        at = row if row < start else row - len(moving)
        self.rows[at:at] = moving

    def _changed(self, top_left: QModelIndex, bottom_right: QModelIndex) -> None:
        for row in range(top_left.row(), bottom_right.row() + 1):
            self.rows[row] = self.model.item(row)

    def _reset(self) -> None:
        self.rows = list(self.model.items())


def make(window: int | None) -> tuple[LiveList[Item, int], ItemModel, QtMirror]:
    live: LiveList[Item, int] = LiveList(key=lambda item: item.key, sort_key=lambda item: item.rank)
    model = ItemModel(key=lambda item: item.key, window=window)
    model.attach(live)
    return live, model, QtMirror(model)


def assert_window_consistent(live: LiveList[Item, int], model: ItemModel, mirror: QtMirror, window: int | None) -> None:
    rows = list(live.rows)
    shown = list(model.items())
    assert mirror.rows == shown
    assert model.rowCount() == len(shown)
    assert rows[model.rows_above : model.rows_above + len(shown)] == shown
    assert model.rows_above + len(shown) + model.rows_below == len(rows)
    if window is not None:
        assert len(shown) <= window
        if rows:
            assert shown, "a non-empty list shows something"
    else:
        assert shown == rows


operations = st.lists(
    st.one_of(
        st.tuples(st.just("upsert"), st.integers(0, 30), st.integers(0, 100)),
        st.tuples(st.just("many"), st.lists(st.tuples(st.integers(0, 30), st.integers(0, 100)), max_size=12)),
        st.tuples(st.just("remove"), st.integers(0, 30)),
        st.tuples(st.just("reset"), st.lists(st.tuples(st.integers(0, 30), st.integers(0, 100)), max_size=15)),
        st.tuples(st.just("up"), st.integers(1, 6)),
        st.tuples(st.just("down"), st.integers(1, 6)),
        st.tuples(st.just("newest")),
        st.tuples(st.just("focus"), st.integers(0, 30)),
        st.tuples(st.just("retain_even")),
    ),
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(window=st.one_of(st.none(), st.integers(1, 8)), ops=operations)
def test_qt_sees_exactly_the_window(qapp: QApplication, window: int | None, ops: list[tuple]) -> None:  # type: ignore[type-arg]
    live, model, mirror = make(window)
    for op in ops:
        kind = op[0]
        if kind == "upsert":
            live.upsert(Item(op[1], op[2], "x"))
        elif kind == "many":
            live.upsert_many(Item(key, rank) for key, rank in op[1])
        elif kind == "remove":
            live.remove(op[1])
        elif kind == "reset":
            live.reset(Item(key, rank) for key, rank in op[1])
        elif kind == "up":
            model.extend_up(op[1])
        elif kind == "down":
            model.extend_down(op[1])
        elif kind == "newest":
            model.show_newest()
        elif kind == "focus":
            model.set_focus(op[1])
        else:
            live.retain(lambda item: item.key % 2 == 0)
        assert_window_consistent(live, model, mirror, window)


def test_a_move_keeps_persistent_indexes_on_the_item(qapp: QApplication) -> None:
    live, model, _ = make(None)
    live.upsert_many([Item(1, 10), Item(2, 20), Item(3, 30)])
    persistent = QPersistentModelIndex(model.index(0, 0))
    live.upsert(Item(1, 40))
    assert persistent.row() == 2
    assert model.item(persistent.row()) == Item(1, 40)


def test_older_rows_prepended_at_the_top_of_a_window_come_into_view(qapp: QApplication) -> None:
    live, model, _ = make(5)
    live.upsert_many(Item(key, key) for key in range(10, 20))
    assert [item.key for item in model.items()] == [15, 16, 17, 18, 19]
    assert model.extend_up(5) == 5
    live.upsert_many(Item(key, key) for key in range(5, 10))  # load_older: the window touches the top
    assert next(item.key for item in model.items()) == 5
    assert model.rowCount() == 5


def test_appends_below_a_window_that_does_not_reach_the_end_are_counted(qapp: QApplication) -> None:
    live, model, _ = make(3)
    live.upsert_many(Item(key, key) for key in range(10))
    model.set_focus(2)
    model.extend_up(10)
    model.show_newest()
    model.extend_up(5)
    assert model.rows_below > 0
    arrived: list[int] = []
    model.rows_arrived_below.connect(arrived.append)
    live.upsert(Item(99, 99))
    assert arrived == [1]
    assert 99 not in [item.key for item in model.items()]


def test_the_model_passes_qt_model_tester_while_it_changes(qtmodeltester: ModelTester) -> None:
    live, model, _ = make(4)
    qtmodeltester.check(model)
    live.upsert_many(Item(key, key) for key in range(10))
    model.extend_up(3)
    live.upsert(Item(3, 50))
    live.remove(9)
    live.reset(Item(key, key * 2) for key in range(6))
    model.show_newest()
