"""The chat list: sorted by activity, filtered, unread badges, typing; selection follows a chat that moves."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from PySide6.QtCore import Qt
from pytestqt.modeltest import ModelTester
from pytestqt.qtbot import QtBot

from desktop_chat.models import ChatId
from desktop_chat.ui.chat_list import ChatListPanel
from desktop_chat.ui.chat_list_model import ChatFilterProxyModel, ChatListModel, ChatRole
from desktop_chat.ui.theme import LIGHT
from tests.gui.fakes import Cast, FakeChatStore

NOW = datetime(2026, 11, 26, 14, 30, tzinfo=UTC)


@pytest.fixture
def chats(store: FakeChatStore, cast: Cast) -> ChatListModel:
    model = ChatListModel()
    model.set_own_user(cast.alice.id)
    model.show_list(store.chat_list())
    store.chat_list().reset([])  # what the store does before the first refresh
    return model


def titles(model: ChatListModel | ChatFilterProxyModel) -> list[str]:
    return [model.index(row, 0).data() for row in range(model.rowCount())]


def fill(qtbot: QtBot, store: FakeChatStore, chats: ChatListModel) -> None:
    task = asyncio.ensure_future(store.refresh_chats())
    qtbot.waitUntil(task.done)
    assert chats.rowCount() == 4


def test_chats_are_sorted_by_last_activity_and_a_new_message_moves_one_up(
    qtbot: QtBot, qtmodeltester: ModelTester, store: FakeChatStore, cast: Cast, chats: ChatListModel
) -> None:
    qtmodeltester.check(chats)
    fill(qtbot, store, chats)
    assert titles(chats) == ["Team", "Design review", "Bob", "Release 0.2"]
    store.receive(store.chat_id("Release 0.2"), cast.dave, "Tagging 0.2 now")
    assert titles(chats) == ["Release 0.2", "Team", "Design review", "Bob"]
    assert chats.index(0, 0).data(ChatRole.PREVIEW) == "Tagging 0.2 now"


def test_unread_counts_and_the_total(qtbot: QtBot, store: FakeChatStore, cast: Cast, chats: ChatListModel) -> None:
    fill(qtbot, store, chats)
    bob_chat = store.chat_id("Bob")
    store.receive(bob_chat, cast.bob, "one")
    store.receive(bob_chat, cast.bob, "two")
    row = chats.row_of(bob_chat)
    assert row is not None
    assert chats.index(row, 0).data(ChatRole.UNREAD) == 2
    assert chats.unread_total() == 2
    assert chats.index(row, 0).data(0x0023) is None  # an unknown role answers nothing


def test_typing_shows_for_others_only(qtbot: QtBot, store: FakeChatStore, cast: Cast, chats: ChatListModel) -> None:
    fill(qtbot, store, chats)
    team = store.chat_id("Team")
    changed: list[int] = []
    chats.dataChanged.connect(lambda top_left, _bottom_right: changed.append(top_left.row()))
    chats.set_typing(team, frozenset({cast.alice.id}))
    assert changed == []  # alice is the signed-in user
    chats.set_typing(team, frozenset({cast.alice.id, cast.bob.id}))
    assert chats.index(chats.row_of(team) or 0, 0).data(ChatRole.TYPING) == 1
    assert changed == [chats.row_of(team)]


def test_the_filter_matches_title_or_last_message_in_any_case(
    qtbot: QtBot, qtmodeltester: ModelTester, store: FakeChatStore, cast: Cast, chats: ChatListModel
) -> None:
    fill(qtbot, store, chats)
    proxy = ChatFilterProxyModel()
    proxy.setSourceModel(chats)
    qtmodeltester.check(proxy)
    proxy.set_filter_text("REVIEW")
    assert titles(proxy) == ["Design review"]
    store.receive(store.chat_id("Bob"), cast.bob, "the review is done")
    assert titles(proxy) == ["Bob", "Design review"]
    proxy.set_filter_text("")
    assert titles(proxy) == ["Bob", "Team", "Design review", "Release 0.2"]


def test_the_selected_chat_stays_selected_when_it_moves_to_the_top(
    qtbot: QtBot, store: FakeChatStore, cast: Cast, chats: ChatListModel
) -> None:
    fill(qtbot, store, chats)
    panel = ChatListPanel(chats, clock=lambda: NOW)
    qtbot.addWidget(panel)
    bob_chat = store.chat_id("Bob")
    with qtbot.waitSignal(panel.chat_selected) as selected:
        panel.select(bob_chat)
    assert selected.args == [bob_chat]
    store.receive(bob_chat, cast.bob, "bump")
    current = panel.list_view.currentIndex()
    assert current.row() == 0
    assert current.data(ChatRole.CHAT_ID) == bob_chat
    assert panel.current == bob_chat


def test_the_panel_filter_box_filters_and_down_moves_into_the_list(
    qtbot: QtBot, store: FakeChatStore, chats: ChatListModel
) -> None:
    fill(qtbot, store, chats)
    panel = ChatListPanel(chats, clock=lambda: NOW)
    qtbot.addWidget(panel)
    panel.show()
    qtbot.keyClicks(panel.filter_edit, "team")
    assert panel.proxy.rowCount() == 1
    with qtbot.waitSignal(panel.chat_selected) as selected:
        qtbot.keyClick(panel.filter_edit, Qt.Key.Key_Down)
    assert selected.args == [ChatId(store.chat_id("Team"))]


def test_an_unread_chat_gets_a_badge_in_the_accent_colour(
    qtbot: QtBot, store: FakeChatStore, cast: Cast, chats: ChatListModel
) -> None:
    fill(qtbot, store, chats)
    store.receive(store.chat_id("Bob"), cast.bob, "unread!")
    panel = ChatListPanel(chats, clock=lambda: NOW)
    qtbot.addWidget(panel)
    panel.resize(360, 420)
    panel.show()
    image = panel.list_view.viewport().grab().toImage()
    accent = LIGHT.accent.rgb()

    def accent_pixels(title: str) -> int:
        row = titles(chats).index(title)
        rect = panel.list_view.visualRect(panel.proxy.index(row, 0))
        return sum(
            1
            for x in range(rect.left(), rect.right(), 2)
            for y in range(rect.top(), rect.bottom(), 2)
            if image.pixel(x, y) == accent
        )

    assert accent_pixels("Bob") > 20  # the badge (and the time, in the accent colour)
    assert accent_pixels("Release 0.2") == 0  # nothing unread, nobody typing


def test_an_empty_list_and_an_empty_search_say_so(qtbot: QtBot, store: FakeChatStore, chats: ChatListModel) -> None:
    panel = ChatListPanel(chats, clock=lambda: NOW)
    qtbot.addWidget(panel)
    panel.show()
    assert panel.empty_label.isVisible()  # a new account: no chats at all
    assert panel.empty_label.text().startswith("No chats yet.")
    fill(qtbot, store, chats)
    assert not panel.empty_label.isVisible()
    qtbot.keyClicks(panel.filter_edit, "zebra")
    assert panel.empty_label.isVisible() and panel.empty_label.text() == "No chat matches “zebra”."
    panel.filter_edit.clear()
    assert not panel.empty_label.isVisible()
