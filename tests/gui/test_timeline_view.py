"""TimelineView: the reader's place survives prepends, new messages follow only at the bottom."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from desktop_chat.models import ChatId, DeliveryState, Message
from desktop_chat.ui.bridge import StoreBridge
from desktop_chat.ui.timeline_delegate import Action
from desktop_chat.ui.timeline_model import TimelineModel
from desktop_chat.ui.timeline_view import TimelineView
from tests.gui.fakes import Cast, FakeChatStore


@pytest.fixture
def team(store: FakeChatStore) -> ChatId:
    return store.chat_id("Team")


@pytest.fixture
def view(qtbot: QtBot, bridge: StoreBridge, store: FakeChatStore, cast: Cast, team: ChatId) -> Iterator[TimelineView]:
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
    """The message the reader is reading: the first whose bubble starts on screen, and where it is."""
    model = view.model()
    assert isinstance(model, TimelineModel)
    row = next(row for row in view.visible_rows() if bubble_y(view, row) >= 0)
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
    qtbot: QtBot, view: TimelineView, store: FakeChatStore, team: ChatId
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
    qtbot: QtBot, view: TimelineView, store: FakeChatStore, cast: Cast, team: ChatId
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
    qtbot: QtBot, view: TimelineView, store: FakeChatStore, cast: Cast, team: ChatId
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


def click_action(qtbot: QtBot, view: TimelineView, message_id: object, action: Action) -> None:
    model = view.model()
    assert isinstance(model, TimelineModel)
    row = model.row_of(message_id)
    assert row is not None
    view.scrollTo(model.index(row, 0))
    rect = view.message_delegate.action_rect(row, action)
    assert rect is not None, f"row {row} has no {action} link"
    position = rect.center() + view.visualRect(model.index(row, 0)).topLeft()
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=position)


def delivery_of(view: TimelineView, message_id: object) -> DeliveryState | None:
    model = view.model()
    assert isinstance(model, TimelineModel)
    row = model.row_of(message_id)
    return None if row is None else model.item(row).delivery


def test_pending_sent_failed_retry_and_discard_through_the_links(
    qtbot: QtBot, view: TimelineView, bridge: StoreBridge, store: FakeChatStore, team: ChatId
) -> None:
    view.retry_requested.connect(bridge.retry)
    view.discard_requested.connect(bridge.discard)
    with qtbot.waitSignal(bridge.message_queued) as queued:
        bridge.send(team, "will fail once")
    message_id = queued.args[1]
    assert delivery_of(view, message_id) is DeliveryState.PENDING
    assert view.message_delegate.action_rect(view.model().rowCount() - 1, Action.RETRY) is None
    store.reject(message_id, "The chat was archived")
    assert delivery_of(view, message_id) is DeliveryState.FAILED
    click_action(qtbot, view, message_id, Action.RETRY)
    qtbot.waitUntil(lambda: delivery_of(view, message_id) is DeliveryState.PENDING)
    assert ("retry", (message_id,)) in store.calls
    store.deliver(message_id)
    assert delivery_of(view, message_id) is DeliveryState.SENT

    with qtbot.waitSignal(bridge.message_queued) as queued:
        bridge.send(team, "will be dropped")
    dropped = queued.args[1]
    store.reject(dropped, "Not allowed")
    click_action(qtbot, view, dropped, Action.DISCARD)
    qtbot.waitUntil(lambda: delivery_of(view, dropped) is None)
    assert not store.pending()


def test_a_failure_line_appearing_at_the_bottom_stays_in_view(
    qtbot: QtBot, view: TimelineView, bridge: StoreBridge, store: FakeChatStore, team: ChatId
) -> None:
    with qtbot.waitSignal(bridge.message_queued) as queued:
        bridge.send(team, "last words")
    bar = view.verticalScrollBar()
    before = bar.maximum()
    store.reject(queued.args[1], "Refused")
    view.executeDelayedItemsLayout()
    assert bar.maximum() > before  # the row grew a line
    assert bar.value() == bar.maximum()


def test_a_row_growing_above_the_reader_does_not_move_what_they_read(
    qtbot: QtBot, view: TimelineView, bridge: StoreBridge, store: FakeChatStore, team: ChatId, cast: Cast
) -> None:
    with qtbot.waitSignal(bridge.message_queued) as queued:
        bridge.send(team, "sent early")
    store.deliver(queued.args[1])
    for index in range(40):  # enough below that the reader is not at the bottom
        store.receive(team, cast.bob, f"later message {index}")
    bar = view.verticalScrollBar()
    model = view.model()
    assert isinstance(model, TimelineModel)
    row = model.row_of(queued.args[1])
    assert row is not None
    view.scrollTo(model.index(row + 1, 0), view.ScrollHint.PositionAtTop)  # the edited row just above the top
    bar.setValue(bar.value() + 5)
    assert not view.is_at_bottom()
    anchor, y = top_row_and_y(view)
    long_text = "an edit that is much longer than the original and wraps over several lines " * 4

    async def edit() -> None:
        await store.edit_message(queued.args[1], long_text)

    task = asyncio.ensure_future(edit())
    qtbot.waitUntil(task.done)
    view.executeDelayedItemsLayout()
    assert row_y(view, anchor) == y


def test_a_narrower_view_keeps_the_reader_on_the_same_message(qtbot: QtBot, view: TimelineView) -> None:
    bar = view.verticalScrollBar()
    bar.setValue(bar.maximum() // 2)
    anchor, y = top_row_and_y(view)
    view.resize(300, view.height())
    view.executeDelayedItemsLayout()
    assert row_y(view, anchor) == y


def test_own_messages_do_not_count_as_new_while_scrolled_up(
    qtbot: QtBot, view: TimelineView, bridge: StoreBridge, store: FakeChatStore, team: ChatId, cast: Cast
) -> None:
    bar = view.verticalScrollBar()
    bar.setValue(bar.maximum() // 2)
    store.receive(team, cast.bob, "one")
    store.receive(team, cast.carol, "two")
    assert view.jump_button.text().endswith("2 new messages")
    with qtbot.waitSignal(bridge.message_queued):
        bridge.send(team, "mine")
    assert view.unseen == 2


def test_the_context_menu_offers_what_applies(
    qtbot: QtBot, view: TimelineView, bridge: StoreBridge, store: FakeChatStore, team: ChatId, cast: Cast
) -> None:
    with qtbot.waitSignal(bridge.message_queued) as queued:
        bridge.send(team, "mine")
    own_pending = store.pending()[0]

    def entries(message: Message) -> list[str]:
        return [action.text() for action in view.menu_for(message).actions() if action.text()]

    assert entries(own_pending) == ["Discard", "Copy text"]
    failed = store.reject(queued.args[1], "no")
    assert entries(failed) == ["Retry", "Discard", "Copy text"]
    other = store.receive(team, cast.bob, "theirs")
    assert entries(other) == ["Reply", "More reactions…", "Copy text"]
    sent = store.add_message(team, cast.alice, "already sent")
    assert entries(sent) == ["Reply", "More reactions…", "Copy text", "Edit…", "Delete…"]
    edited: list[object] = []
    view.edit_requested.connect(edited.append)
    next(action for action in view.menu_for(sent).actions() if action.text() == "Edit…").trigger()
    assert edited == [sent]
