"""TimelineView: the reader's place survives prepends, new messages follow only at the bottom."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pytestqt.qtbot import QtBot

from desktop_chat.models import SessionId
from desktop_chat.ui.bridge import StoreBridge
from desktop_chat.ui.timeline_model import TimelineModel
from desktop_chat.ui.timeline_view import TimelineView
from tests.gui.fakes import Cast, FakeChatStore


@pytest.fixture
def team(store: FakeChatStore) -> SessionId:
    return store.chat_id("Team")


@pytest.fixture
def view(
    qtbot: QtBot, bridge: StoreBridge, store: FakeChatStore, cast: Cast, team: SessionId
) -> Iterator[TimelineView]:
    model = TimelineModel(bridge)
    model.set_own_user(cast.alice.id)
    view = TimelineView(model)
    qtbot.addWidget(view)
    view.resize(520, 420)
    view.show()
    qtbot.waitExposed(view)
    with qtbot.waitSignal(bridge.chat_opened) as opened:
        bridge.open_chat(team)
    model.show_timeline(team, opened.args[1])
    view.scroll_to_newest()
    return view


def bubble_y(view: TimelineView, row: int) -> int:
    """Where the message's bubble is drawn in the viewport (what the reader's eye is on)."""
    model = view.model()
    top = view.visualRect(model.index(row, 0)).top()
    return top + view.message_delegate.bubble_rect(row).top()


def top_row_and_y(view: TimelineView) -> tuple[object, int]:
    row = view.visible_rows()[1]  # the second visible row: fully on screen
    model = view.model()
    assert isinstance(model, TimelineModel)
    return model.item(row).id, bubble_y(view, row)


def row_y(view: TimelineView, message_id: object) -> int:
    model = view.model()
    assert isinstance(model, TimelineModel)
    row = model.row_of(message_id)
    assert row is not None
    return bubble_y(view, row)


def test_opening_shows_the_newest_message_at_the_bottom(view: TimelineView) -> None:
    bar = view.verticalScrollBar()
    assert bar.maximum() > 0
    assert bar.value() == bar.maximum()
    assert view.visible_rows()[-1] == view.model().rowCount() - 1


def test_an_older_page_prepended_keeps_the_visible_message_in_place(
    qtbot: QtBot, view: TimelineView, store: FakeChatStore, team: SessionId
) -> None:
    model = view.model()
    assert isinstance(model, TimelineModel)
    before = model.rowCount()
    store.hold("load_older")
    view.verticalScrollBar().setValue(view.fontMetrics().height())  # near the top: older rows are wanted
    qtbot.waitUntil(lambda: "load_older" in store.call_names())
    anchor, y = top_row_and_y(view)
    store.release("load_older")
    qtbot.waitUntil(lambda: model.rowCount() > before)
    view.executeDelayedItemsLayout()
    assert row_y(view, anchor) == y


def test_a_new_message_at_the_bottom_scrolls_into_view(
    qtbot: QtBot, view: TimelineView, store: FakeChatStore, cast: Cast, team: SessionId
) -> None:
    message = store.receive(team, cast.bob, "fresh news")
    view.executeDelayedItemsLayout()
    bar = view.verticalScrollBar()
    assert bar.value() == bar.maximum()
    model = view.model()
    assert isinstance(model, TimelineModel)
    assert model.item(view.visible_rows()[-1]).id == message.id
    assert not view.jump_button.isVisible()


def test_a_new_message_while_scrolled_up_shows_the_jump_button_and_does_not_scroll(
    qtbot: QtBot, view: TimelineView, store: FakeChatStore, cast: Cast, team: SessionId
) -> None:
    bar = view.verticalScrollBar()
    bar.setValue(bar.maximum() // 2)
    qtbot.wait(1)  # let the edge check run (it must not fetch here)
    anchor, y = top_row_and_y(view)
    value = bar.value()
    store.receive(team, cast.bob, "while you were reading")
    view.executeDelayedItemsLayout()
    assert bar.value() == value
    assert row_y(view, anchor) == y
    assert view.jump_button.isVisible()
    assert view.jump_button.text().endswith("1 new message")
    view.jump_button.click()
    assert bar.value() == bar.maximum()
    assert view.unseen == 0
    assert not view.jump_button.isVisible()
