"""TimelineModel: row operations from the store, roles for painting, and fetching older history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from PySide6.QtCore import QModelIndex, Qt
from pytestqt.modeltest import ModelTester
from pytestqt.qtbot import QtBot

from desktop_chat.dal.api import new_timeline
from desktop_chat.models import ChatId, DeliveryState, Message, MessageId, UserId
from desktop_chat.ui.bridge import StoreBridge
from desktop_chat.ui.timeline_model import DELETED_TEXT, TimelineModel, TimelineRole
from tests.gui.fakes import Cast, FakeChatStore, stable_id

ROOT = QModelIndex()


def opened(qtbot: QtBot, bridge: StoreBridge, store: FakeChatStore, cast: Cast, **options: int) -> TimelineModel:
    model = TimelineModel(bridge, **options)
    model.set_own_user(cast.alice.id)
    team = store.chat_id("Team")
    with qtbot.waitSignal(bridge.chat_opened) as signal:
        bridge.open_chat(team)
    model.show_timeline(team, signal.args[1])
    return model


def role(model: TimelineModel, row: int, which: int) -> object:
    return model.index(row, 0).data(which)


def test_the_delivery_lifecycle_reaches_the_model_and_passes_the_model_tester(
    qtbot: QtBot, qtmodeltester: ModelTester, bridge: StoreBridge, store: FakeChatStore, cast: Cast
) -> None:
    model = opened(qtbot, bridge, store, cast)
    qtmodeltester.check(model)
    team = store.chat_id("Team")
    assert model.rowCount() == 50
    with qtbot.waitSignal(bridge.message_queued):
        bridge.send(team, "first")
    with qtbot.waitSignal(bridge.message_queued):
        bridge.send(team, "second")
    pending = store.pending()
    assert [role(model, row, TimelineRole.DELIVERY) for row in (50, 51)] == ["pending", "pending"]
    store.receive(team, cast.bob, "in between")  # confirmed rows sort before pending ones
    assert model.item(50).content == "in between"
    store.deliver(pending[0].id)
    store.reject(pending[1].id, "Too late")
    assert [model.item(row).content for row in (51, 52)] == ["first", "second"]
    assert role(model, 51, TimelineRole.DELIVERY) == "sent"
    assert role(model, 52, TimelineRole.DELIVERY) == "failed"
    assert "Not sent: Too late" in str(role(model, 52, Qt.ItemDataRole.ToolTipRole))
    with qtbot.waitSignal(bridge.finished):
        bridge.discard(pending[1].id)
    assert model.rowCount() == 52
    with qtbot.waitSignal(bridge.older_loaded):
        bridge.load_older(team)
    assert model.rowCount() == 102


def test_roles_describe_sender_runs_days_and_deletion(
    qtbot: QtBot, bridge: StoreBridge, store: FakeChatStore, cast: Cast
) -> None:
    model = TimelineModel(bridge)
    model.set_own_user(cast.alice.id)
    model.set_names({cast.bob.id: "Bob Chen"})
    session = ChatId(stable_id("chat", "roles"))
    start = datetime(2026, 11, 25, 22, 0, tzinfo=UTC)

    def message(seq: int, sender: UserId, minutes: int, **extra: object) -> Message:
        return Message(
            id=MessageId(stable_id("m", seq)),
            chat_id=session,
            sender_id=sender,
            content=f"text {seq}",
            created_at=start + timedelta(minutes=minutes),
            seq=seq,
            rev=seq,
            **extra,  # type: ignore[arg-type]
        )

    timeline = new_timeline()
    timeline.reset(
        [
            message(1, cast.bob.id, 0),
            message(2, cast.bob.id, 1),  # same run
            message(3, cast.bob.id, 20),  # a long pause starts a new run
            message(4, cast.alice.id, 21, deleted_at=start),
            message(5, cast.alice.id, 26 * 60),  # the next day (in any time zone)
        ]
    )
    model.show_timeline(session, timeline)
    assert [role(model, row, TimelineRole.STARTS_RUN) for row in range(5)] == [True, False, True, True, True]
    assert role(model, 0, TimelineRole.DAY) is not None
    assert role(model, 4, TimelineRole.DAY) is not None
    assert role(model, 1, TimelineRole.DAY) is None
    assert role(model, 0, TimelineRole.SENDER) == "Bob Chen"
    assert role(model, 3, TimelineRole.OWN) is True
    assert role(model, 3, TimelineRole.SENDER) == "You"
    assert role(model, 3, Qt.ItemDataRole.DisplayRole) == DELETED_TEXT
    assert str(role(model, 0, Qt.ItemDataRole.AccessibleTextRole)).startswith("Bob Chen, ")


def test_older_rows_are_fetched_only_when_the_view_wants_them(
    qtbot: QtBot, bridge: StoreBridge, store: FakeChatStore, cast: Cast
) -> None:
    model = opened(qtbot, bridge, store, cast)
    assert store.has_older(store.chat_id("Team"))
    assert not model.canFetchMore(ROOT)  # Qt asks whenever the last row is visible: the answer is no
    model.fetchMore(ROOT)
    assert "load_older" not in store.call_names()
    model.set_older_wanted(True)
    assert model.canFetchMore(ROOT)
    store.hold("load_older")
    model.fetchMore(ROOT)
    qtbot.waitUntil(lambda: "load_older" in store.call_names())
    assert not model.canFetchMore(ROOT)  # one page at a time
    model.fetchMore(ROOT)
    store.release("load_older")
    qtbot.waitUntil(lambda: model.rowCount() == 100)
    assert store.call_names().count("load_older") == 1
    assert model.canFetchMore(ROOT)


def test_rows_already_loaded_come_back_into_the_window_without_asking_the_store(
    qtbot: QtBot, bridge: StoreBridge, store: FakeChatStore, cast: Cast
) -> None:
    model = opened(qtbot, bridge, store, cast, window=30, page=10)
    assert model.rowCount() == 30 and model.rows_above == 20
    model.set_older_wanted(True)
    model.set_focus(model.item(0).id)  # the reader is at the top: trim the bottom
    model.fetchMore(ROOT)
    assert model.rows_above == 10
    assert model.rowCount() == 30
    assert "load_older" not in store.call_names()


def test_a_failed_page_load_lets_the_view_ask_again(
    qtbot: QtBot, bridge: StoreBridge, store: FakeChatStore, cast: Cast
) -> None:
    from desktop_chat.errors import BackendUnavailable

    model = opened(qtbot, bridge, store, cast)
    model.set_older_wanted(True)
    store.fail_next("load_older", BackendUnavailable("timeout"))
    with qtbot.waitSignal(bridge.failed):
        model.fetchMore(ROOT)
    qtbot.waitUntil(lambda: not model.loading_older)
    assert model.canFetchMore(ROOT)


def test_pending_rows_show_the_pending_state(
    qtbot: QtBot, bridge: StoreBridge, store: FakeChatStore, cast: Cast
) -> None:
    model = opened(qtbot, bridge, store, cast)
    with qtbot.waitSignal(bridge.message_queued):
        bridge.send(store.chat_id("Team"), "on its way")
    last = model.rowCount() - 1
    assert model.item(last).delivery is DeliveryState.PENDING
    assert str(role(model, last, Qt.ItemDataRole.AccessibleTextRole)).endswith("Sending.")
