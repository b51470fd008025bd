"""The message search panel over the fake store: as-you-type with the previous query cancelled, marked
matches painted as plain text, keyboard navigation, scopes, offline, and opening the chat at a result."""

from __future__ import annotations

import asyncio

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QFont, QImage, QPainter
from PySide6.QtWidgets import QStyleOptionViewItem
from pytestqt.modeltest import ModelTester
from pytestqt.qtbot import QtBot

from desktop_chat.config import Settings
from desktop_chat.dal.api import MessageSearch, StoreStatus
from desktop_chat.models import SNIPPET_END, SNIPPET_START, ChatId, SearchHit
from desktop_chat.ui.bridge import MessageQuery, StoreBridge
from desktop_chat.ui.main_window import MainWindow
from desktop_chat.ui.notifications import Notifier
from desktop_chat.ui.search_panel import MessageSearchPanel, ResultRole, snippet_layout
from desktop_chat.ui.theme import LIGHT, Theme
from tests.gui.conftest import NOW
from tests.gui.fakes import Cast, FakeChatStore, populated_store

HISTORY = 3000
# In the fake's synthetic history "pipelines" is said by message seq with seq * 5 % 14 == 1.
PIPELINE_SEQS = [seq for seq in range(1, HISTORY + 1) if seq * 5 % 14 == 1]


@pytest.fixture
def cast_and_store(qloop: asyncio.AbstractEventLoop) -> tuple[FakeChatStore, Cast]:
    return populated_store(history=HISTORY)


@pytest.fixture
def panel(qtbot: QtBot, bridge: StoreBridge) -> MessageSearchPanel:
    widget = MessageSearchPanel(bridge, lambda hit: f"chat {hit.chat_id.hex[:4]}")
    qtbot.addWidget(widget)
    widget.resize(420, 600)
    widget.open_panel()
    return widget


@pytest.fixture
def window(
    qtbot: QtBot, bridge: StoreBridge, cast: Cast, settings: Settings, theme: Theme, notifier: Notifier
) -> MainWindow:
    main = MainWindow(
        bridge, cast.alice, settings=settings, theme=theme, notifier=notifier, clock=lambda: NOW, is_active=lambda: True
    )
    qtbot.addWidget(main)
    main.resize(1200, 700)
    main.show()
    with qtbot.waitSignal(bridge.finished):
        bridge.refresh_chats()
    return main


def searches(store: FakeChatStore) -> list[str]:
    return [args[0] for name, args in store.calls if name == "search_messages"]


def test_results_come_after_a_pause_in_typing_with_one_search(
    qtbot: QtBot, panel: MessageSearchPanel, bridge: StoreBridge, store: FakeChatStore
) -> None:
    with qtbot.waitSignal(bridge.messages_found, timeout=3000):
        qtbot.keyClicks(panel.field, "pipel")
    assert searches(store) == ["pipel"]  # not one per key
    hits = panel.model.hits
    assert [hit.seq for hit in hits] == sorted(PIPELINE_SEQS, reverse=True)[:30]
    assert all([text for text, lit in hit.snippet_parts() if lit] == ["pipelines"] for hit in hits)
    assert panel.results.currentIndex().row() == 0
    assert panel.status.text() == "30 messages found, more as you scroll."


def test_a_new_query_cancels_the_one_still_running(
    qtbot: QtBot, panel: MessageSearchPanel, bridge: StoreBridge, store: FakeChatStore
) -> None:
    store.hold("search_messages")
    panel.field.setText("morn")
    panel.search_now()
    first = panel.task
    assert first is not None and panel.status.text() == "Searching…"
    panel.field.setText("pipelines")
    panel.search_now()
    qtbot.waitUntil(first.done)
    assert first.cancelled()
    with qtbot.waitSignal(bridge.messages_found):
        store.release("search_messages")
    assert {text for hit in panel.model.hits for text, lit in hit.snippet_parts() if lit} == {"pipelines"}


def test_an_answer_to_an_older_query_is_dropped(
    qtbot: QtBot, panel: MessageSearchPanel, bridge: StoreBridge, store: FakeChatStore
) -> None:
    panel.field.setText("morning")
    panel.search_now()
    with qtbot.waitSignal(bridge.messages_found):
        pass
    shown = panel.model.hits
    bridge.messages_found.emit(MessageQuery("something else"), MessageSearch())  # late, for another text
    assert panel.model.hits == shown


def test_keys_move_through_the_results_and_choose_one(
    qtbot: QtBot, panel: MessageSearchPanel, bridge: StoreBridge, store: FakeChatStore
) -> None:
    with qtbot.waitSignal(bridge.messages_found, timeout=3000):
        qtbot.keyClicks(panel.field, "pipelines")
    qtbot.keyClick(panel.field, Qt.Key.Key_Down)
    qtbot.keyClick(panel.field, Qt.Key.Key_Down)
    qtbot.keyClick(panel.field, Qt.Key.Key_Up)
    assert panel.results.currentIndex().row() == 1
    assert panel.field.hasFocus()
    chosen = panel.model.hit(1)
    with qtbot.waitSignal(panel.message_chosen) as signal:
        qtbot.keyClick(panel.field, Qt.Key.Key_Return)
    assert signal.args == [chosen.chat_id, chosen.seq]
    with qtbot.waitSignal(panel.closed):
        qtbot.keyClick(panel.field, Qt.Key.Key_Escape)
    assert not panel.isVisible()


def test_scrolling_to_the_end_of_the_results_asks_for_the_next_page(
    qtbot: QtBot, panel: MessageSearchPanel, bridge: StoreBridge, store: FakeChatStore
) -> None:
    with qtbot.waitSignal(bridge.messages_found, timeout=3000):
        qtbot.keyClicks(panel.field, "pipelines")
    with qtbot.waitSignal(bridge.messages_found):
        for _ in range(29):
            qtbot.keyClick(panel.field, Qt.Key.Key_Down)
    assert panel.model.rowCount() == 60
    assert len({hit.id for hit in panel.model.hits}) == 60


def test_the_scope_is_this_chat_or_all_chats(
    qtbot: QtBot, panel: MessageSearchPanel, bridge: StoreBridge, store: FakeChatStore
) -> None:
    team = store.chat_id("Team")
    panel.set_chat(None)
    assert not panel.this_chat.isEnabled() and panel.all_chats.isChecked()
    panel.set_chat(team)
    panel.field.setText("pipelines")
    with qtbot.waitSignal(bridge.messages_found):
        panel.this_chat.click()
    assert panel.query is not None and panel.query.chat_id == team
    with qtbot.waitSignal(bridge.messages_found):
        panel.all_chats.click()
    assert panel.query is not None and panel.query.chat_id is None


def test_offline_the_panel_says_only_saved_messages_were_searched(
    qtbot: QtBot, panel: MessageSearchPanel, bridge: StoreBridge, store: FakeChatStore
) -> None:
    store.set_status(StoreStatus(backend_reachable=False, detail="Cannot reach the server."))
    with qtbot.waitSignal(bridge.messages_found, timeout=3000):
        qtbot.keyClicks(panel.field, "pipelines")
    assert panel.status.text().startswith("Offline: only the messages saved on this computer were searched.")
    panel.field.setText("zzzz")
    with qtbot.waitSignal(bridge.messages_found):
        panel.search_now()
    assert panel.status.text().endswith("No messages match “zzzz”.")


def test_message_text_is_never_markup(qtbot: QtBot, store: FakeChatStore, cast: Cast) -> None:
    hostile = f"<b>bold</b> <a href='http://evil'>click</a> {SNIPPET_START}x{SNIPPET_END} &amp; pipelines"
    hit = SearchHit(
        id=store.receive(store.chat_id("Bob"), cast.bob, "x").id,
        chat_id=store.chat_id("Bob"),
        seq=1,
        sender_id=cast.bob.id,
        created_at=NOW,
        snippet=hostile,
    )
    text, ranges = snippet_layout(hit.snippet, QFont(), LIGHT)
    assert text == "<b>bold</b> <a href='http://evil'>click</a> x &amp; pipelines"  # shown as typed
    assert [text[r.start : r.start + r.length] for r in ranges] == ["x"]  # the marked piece, nothing else


def test_the_results_model_and_its_painting(
    qtbot: QtBot, qtmodeltester: ModelTester, panel: MessageSearchPanel, bridge: StoreBridge
) -> None:
    with qtbot.waitSignal(bridge.messages_found, timeout=3000):
        qtbot.keyClicks(panel.field, "pipelines")
    qtmodeltester.check(panel.model)
    index = panel.model.index(0, 0)
    assert isinstance(index.data(ResultRole.HIT), SearchHit)
    assert "pipelines" in index.data(Qt.ItemDataRole.DisplayRole)
    image = QImage(400, 120, QImage.Format.Format_ARGB32)
    image.fill(0)
    painter = QPainter(image)
    option = QStyleOptionViewItem()
    option.initFrom(panel.results)
    option.rect = panel.results.visualRect(index)
    panel.delegate.paint(painter, option, index)
    painter.end()
    assert any(image.pixelColor(x, y).alpha() > 0 for x in range(0, 400, 3) for y in range(0, 100, 3))


def test_ctrl_shift_f_finds_and_opens_the_chat_at_the_message(
    qtbot: QtBot, window: MainWindow, bridge: StoreBridge, store: FakeChatStore
) -> None:
    qtbot.keyClick(window, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    panel = window.search_panel
    assert panel.isVisible() and panel.field.hasFocus()
    with qtbot.waitSignal(bridge.messages_found, timeout=3000):
        qtbot.keyClicks(panel.field, "pipelines")
    for _ in range(20):
        qtbot.keyClick(panel.field, Qt.Key.Key_Down)
    chosen = panel.model.hit(panel.results.currentIndex().row())
    with qtbot.waitSignal(bridge.chat_opened_at):
        qtbot.keyClick(panel.field, Qt.Key.Key_Return)
    chat_panel = window.chat_panel
    assert chat_panel.chat_id == ChatId(chosen.chat_id)
    row = chat_panel.model.row_of(chosen.id)
    assert row is not None and row in chat_panel.view.visible_rows()
    assert chat_panel.view.highlighted == chosen.id
    heading = panel.model.index(0, 0).data(ResultRole.HEADING)
    assert heading.startswith("Team · ")
