"""A chat list longer than a page: it grows as it is scrolled to its end, the filter box and the quick switcher
find chats that are not loaded yet, the members dialog pages too, and big unread counts are capped."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest
from PySide6.QtCore import Qt
from pytestqt.modeltest import ModelTester
from pytestqt.qtbot import QtBot

from desktop_chat.ui.bridge import StoreBridge
from desktop_chat.ui.chat_list import ChatListPanel
from desktop_chat.ui.chat_list_model import ChatListModel, ChatRole, unread_badge
from desktop_chat.ui.dialogs import MembersDialog, QuickSwitcher
from desktop_chat.ui.theme import LIGHT
from tests.gui.fakes import Cast, FakeChatStore

PAGE = 10
CHATS = 35  # with the fixture's four: 39 chats, four pages


@pytest.fixture
def long_store(store: FakeChatStore, cast: Cast) -> FakeChatStore:
    store.chat_page = PAGE
    for n in range(CHATS):
        store.add_chat(
            f"Archive {n:02}", [cast.alice, cast.bob], last_activity=store_now(store) - timedelta(days=30 + n)
        )
    store.chat_list().reset([])
    return store


def store_now(store: FakeChatStore) -> datetime:
    return store._now()  # the fake's own clock, so that the archive is older than the fixture's chats


@pytest.fixture
def model(long_store: FakeChatStore, cast: Cast) -> ChatListModel:
    model = ChatListModel()
    model.set_own_user(cast.alice.id)
    model.show_list(long_store.chat_list())
    return model


def refresh(qtbot: QtBot, store: FakeChatStore) -> None:
    task = asyncio.ensure_future(store.refresh_chats())
    qtbot.waitUntil(task.done)


def titles(model: object) -> list[str]:
    return [model.index(row, 0).data() for row in range(model.rowCount())]  # type: ignore[attr-defined]


def test_scrolling_to_the_end_loads_the_next_page_until_every_chat_is_listed(
    qtbot: QtBot, qtmodeltester: ModelTester, long_store: FakeChatStore, bridge: StoreBridge, model: ChatListModel
) -> None:
    refresh(qtbot, long_store)
    assert model.rowCount() == PAGE  # the first page only
    qtmodeltester.check(model)
    panel = ChatListPanel(model, LIGHT, bridge=bridge)
    qtbot.addWidget(panel)
    panel.resize(400, 300)
    panel.show()
    view = panel.list_view
    for _ in range(20):
        if not long_store.has_more_chats():
            break
        view.scrollToBottom()
        with qtbot.waitSignal(bridge.more_chats_loaded, timeout=5000):
            pass
    qtbot.waitUntil(lambda: model.rowCount() == CHATS + 4, timeout=5000)  # the archive and the fixture's four
    listed = titles(model)
    assert len(set(listed)) == len(listed)
    assert listed[-1] == f"Archive {CHATS - 1:02}"  # the oldest chat, at the very end
    assert not model.canFetchMore(model.index(0, 0).parent())
    calls = long_store.call_names().count("load_more_chats")
    view.scrollToBottom()
    qtbot.wait(50)
    assert long_store.call_names().count("load_more_chats") == calls  # at the end: nothing more is asked


def test_the_filter_finds_a_chat_that_is_not_loaded_and_does_not_page_the_list(
    qtbot: QtBot, long_store: FakeChatStore, bridge: StoreBridge, model: ChatListModel
) -> None:
    panel = ChatListPanel(model, LIGHT, bridge=bridge)
    qtbot.addWidget(panel)
    panel.resize(400, 300)
    panel.show()
    refresh(qtbot, long_store)
    qtbot.wait(50)  # the view fills itself first (a page or two)
    assert "Archive 33" not in titles(model)
    pages = long_store.call_names().count("load_more_chats")
    with qtbot.waitSignal(bridge.chats_found, timeout=5000):
        qtbot.keyClicks(panel.filter_edit, "archive 33")
    qtbot.waitUntil(lambda: titles(panel.proxy) == ["Archive 33"], timeout=5000)
    qtbot.wait(50)
    # The server searched; the filtered view, which shows its end all along, did not page the list.
    assert long_store.call_names().count("load_more_chats") == pages
    panel.select(long_store.chat_id("Archive 33"))
    assert panel.current == long_store.chat_id("Archive 33")


def test_the_filter_pages_through_many_matches_on_the_server(
    qtbot: QtBot, long_store: FakeChatStore, bridge: StoreBridge, model: ChatListModel, cast: Cast
) -> None:
    for n in range(60):
        long_store.add_chat(f"Ticket {n:02}", [cast.alice], last_activity=store_now(store=long_store))
    long_store.chat_list().reset([])
    panel = ChatListPanel(model, LIGHT, bridge=bridge)
    qtbot.addWidget(panel)
    panel.resize(400, 300)
    panel.show()
    refresh(qtbot, long_store)
    with qtbot.waitSignal(bridge.chats_found, timeout=5000):
        qtbot.keyClicks(panel.filter_edit, "ticket")
    qtbot.waitUntil(lambda: panel.proxy.rowCount() >= 50, timeout=5000)
    assert panel.server_search is not None and panel.server_search.has_more()
    with qtbot.waitSignal(bridge.chats_found, timeout=5000):
        panel.list_view.scrollToBottom()
    qtbot.waitUntil(lambda: panel.proxy.rowCount() == 60, timeout=5000)
    assert not panel.server_search.has_more()


def test_the_quick_switcher_finds_any_chat(
    qtbot: QtBot, long_store: FakeChatStore, bridge: StoreBridge, model: ChatListModel
) -> None:
    refresh(qtbot, long_store)
    switcher = QuickSwitcher(model, LIGHT, bridge=bridge)
    qtbot.addWidget(switcher)
    switcher.show()
    chosen: list[object] = []
    switcher.chosen.connect(chosen.append)
    with qtbot.waitSignal(bridge.chats_found, timeout=5000):
        qtbot.keyClicks(switcher.search, "Archive 34")
    qtbot.waitUntil(lambda: titles(switcher.proxy) == ["Archive 34"], timeout=5000)
    qtbot.keyClick(switcher.search, Qt.Key.Key_Return)
    assert chosen == [long_store.chat_id("Archive 34")]


def test_the_members_dialog_counts_everyone_and_pages_as_it_is_scrolled(
    qtbot: QtBot, store: FakeChatStore, cast: Cast, bridge: StoreBridge
) -> None:
    people = [store.add_user(f"p{n}@example.com", f"Person {n:03}") for n in range(230)]
    chat = store.add_chat("Town hall", [cast.alice, *people], owner=cast.alice)
    refresh(qtbot, store)
    with qtbot.waitSignal(bridge.members_loaded, timeout=5000):
        dialog = MembersDialog(bridge, chat, own_user=cast.alice.id)
    qtbot.addWidget(dialog)
    dialog.show()
    assert dialog.count_label.text() == "231 members"
    assert dialog.add_button.isVisible()  # alice owns it (the chat list says so before her row is loaded)
    for _ in range(10):
        if not dialog.has_more:
            break
        with qtbot.waitSignal(bridge.members_loaded, timeout=5000):
            dialog.member_list.scrollToBottom()
    assert dialog.member_list.count() == 231
    names = [dialog.member_list.item(row).text() for row in range(dialog.member_list.count())]
    assert len(set(names)) == 231 and "Alice Martin (you) · owner" in names


def test_big_unread_counts_are_capped_on_the_badge(qtbot: QtBot, store: FakeChatStore, cast: Cast) -> None:
    assert [unread_badge(n) for n in (0, 1, 999, 1000, 123_456)] == ["", "1", "999", "999+", "999+"]
    chat = store.chat_id("Bob")
    model = ChatListModel()
    model.set_own_user(cast.alice.id)
    model.show_list(store.chat_list())
    refresh(qtbot, store)
    for n in range(1001):
        store.add_message(chat, cast.bob, f"{n}")
    store.receive(chat, cast.bob, "and one more")
    row = model.row_of(chat)
    assert row is not None
    index = model.index(row, 0)
    assert index.data(ChatRole.UNREAD) == 1002
    assert "more than 999 unread messages" in index.data(Qt.ItemDataRole.AccessibleTextRole)
