"""The widgets over the real data layer and the real stack, under qasync: alice's window sends, the message
is confirmed, and bob's window receives it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr
from PySide6.QtCore import Qt
from PySide6.QtGui import QIcon
from pytestqt.qtbot import QtBot

from desktop_chat.config import Settings
from desktop_chat.dal.factory import DataLayer, open_data_layer
from desktop_chat.models import DeliveryState
from desktop_chat.ui.bridge import StoreBridge
from desktop_chat.ui.notifications import Notifier
from desktop_chat.ui.sign_in_flow import SignInFlow
from desktop_chat.ui.theme import Theme
from tests.conftest import StackHandle
from tests.integration.accounts import user_in_rooms
from tests.keyrings import MemoryKeyring

pytestmark = pytest.mark.integration


class Client:
    """One signed-in window over a real data layer."""

    def __init__(self, layer: DataLayer, flow: SignInFlow, bridge: StoreBridge) -> None:
        self.layer = layer
        self.flow = flow
        self.bridge = bridge


def settings_for(stack: StackHandle, home: Path, db: int) -> Settings:
    return Settings(
        supabase_url=stack.api_url,
        supabase_anon_key=SecretStr(stack.anon_key),
        redis_url=stack.redis_url.rsplit("/", 1)[0] + f"/{db}",
        config_dir=home / "config",
        data_dir=home / "data",
        runtime_dir=home / "run",
        cache_dir=home / "cache",
        log_dir=home / "log",
    )


@pytest.fixture
def clients(
    qtbot: QtBot, qloop: asyncio.AbstractEventLoop, stack: StackHandle, tmp_path: Path, theme: Theme
) -> Iterator[dict[str, Client]]:
    made: dict[str, Client] = {}
    for db, name in ((12, "alice"), (13, "bob")):
        settings = settings_for(stack, tmp_path / name, db)
        task = asyncio.ensure_future(open_data_layer(settings, keyring_backend=MemoryKeyring()))
        qtbot.waitUntil(task.done, timeout=20_000)
        layer = task.result()
        bridge = StoreBridge(layer.store, server_url=settings.supabase_url)
        notifier = Notifier(QIcon(), enabled=False, parent=bridge)
        flow = SignInFlow(
            bridge, settings=settings, theme=theme, notifier=notifier, icon=QIcon(), confirm=lambda *_: True
        )
        flow.sign_in_automatically(f"{name}@example.com", "password123")
        qtbot.waitUntil(lambda flow=flow: flow.main_window is not None, timeout=20_000)
        made[name] = Client(layer, flow, bridge)
    yield made
    for client in made.values():
        client.flow.close_windows()
        client.bridge.detach()
        closing = asyncio.ensure_future(client.layer.close())
        qtbot.waitUntil(closing.done, timeout=20_000)


def test_alice_sends_from_her_window_and_bobs_window_shows_it(qtbot: QtBot, clients: dict[str, Client]) -> None:
    alice, bob = clients["alice"], clients["bob"]
    creating = asyncio.ensure_future(alice.layer.store.create_chat("GUI wiring", ["bob@example.com"]))
    qtbot.waitUntil(creating.done, timeout=20_000)
    chat = creating.result()
    alice_window, bob_window = alice.flow.main_window, bob.flow.main_window
    assert alice_window is not None and bob_window is not None
    qtbot.waitUntil(lambda: bob.layer.store.chat_list().get(chat) is not None, timeout=20_000)

    with qtbot.waitSignal(alice.bridge.chat_opened, timeout=20_000):
        alice_window.open_chat(chat)
    with qtbot.waitSignal(bob.bridge.chat_opened, timeout=20_000):
        bob_window.open_chat(chat)

    composer = alice_window.chat_panel.composer
    qtbot.keyClicks(composer.editor, "Hello from the real stack")
    qtbot.keyClick(composer.editor, Qt.Key.Key_Return)

    alice_model = alice_window.chat_panel.model
    bob_model = bob_window.chat_panel.model

    def last(model: object) -> object | None:
        count = model.rowCount()  # type: ignore[attr-defined]
        return model.item(count - 1) if count else None  # type: ignore[attr-defined]

    qtbot.waitUntil(
        lambda: (
            (m := last(alice_model)) is not None
            and m.content == "Hello from the real stack"  # type: ignore[attr-defined]
            and m.delivery is DeliveryState.SENT
        ),  # type: ignore[attr-defined]
        timeout=20_000,
    )
    qtbot.waitUntil(
        lambda: (m := last(bob_model)) is not None and m.content == "Hello from the real stack",  # type: ignore[attr-defined]
        timeout=20_000,
    )
    assert last(bob_model).seq == last(alice_model).seq  # type: ignore[attr-defined, union-attr]
    assert composer.text == ""


def test_diagnostics_and_settings_show_what_the_cache_takes(qtbot: QtBot, clients: dict[str, Client]) -> None:
    window = clients["alice"].flow.main_window
    assert window is not None
    diagnostics = window.show_diagnostics()
    qtbot.waitUntil(lambda: diagnostics.values["Redis memory"].text() != "—", timeout=20_000)
    assert diagnostics.values["Redis memory"].text().endswith(("KB", "MB"))
    diagnostics.close()
    dialog = window.show_settings()
    qtbot.waitUntil(lambda: dialog.usage_label.text().startswith("They take"), timeout=20_000)
    dialog.reject()


# --- a user in a thousand chats ----------------------------------------------------------------------------
ROOMS = 1000


def listed_titles(model: object) -> list[str]:
    return [model.index(row, 0).data() for row in range(model.rowCount())]  # type: ignore[attr-defined]


def test_a_user_in_a_thousand_chats_scrolls_to_the_last_one_and_finds_old_ones_by_name(
    qtbot: QtBot,
    qloop: asyncio.AbstractEventLoop,
    stack: StackHandle,
    tmp_path: Path,
    theme: Theme,
) -> None:
    making = asyncio.ensure_future(user_in_rooms(stack.db_url, ROOMS))
    qtbot.waitUntil(making.done, timeout=60_000)
    email = making.result().email
    settings = settings_for(stack, tmp_path / "rooms", 6)  # 5 is the cache contract's wiped database
    opening = asyncio.ensure_future(open_data_layer(settings, keyring_backend=MemoryKeyring()))
    qtbot.waitUntil(opening.done, timeout=20_000)
    layer = opening.result()
    bridge = StoreBridge(layer.store, server_url=settings.supabase_url)
    notifier = Notifier(QIcon(), enabled=False, parent=bridge)
    flow = SignInFlow(bridge, settings=settings, theme=theme, notifier=notifier, icon=QIcon(), confirm=lambda *_: True)
    try:
        flow.sign_in_automatically(email, "password123")
        qtbot.waitUntil(lambda: flow.main_window is not None, timeout=20_000)
        window = flow.main_window
        assert window is not None
        window.show()
        panel = window.chat_list
        qtbot.waitUntil(lambda: window.chats.rowCount() >= 20, timeout=20_000)
        assert window.chats.rowCount() < ROOMS  # a page (or the few the view needed to fill itself)
        assert listed_titles(window.chats)[0] == "Room 0001"

        # The filter box finds a chat that is far from loaded, on the server.
        assert "Room 0987" not in listed_titles(window.chats)
        qtbot.keyClicks(panel.filter_edit, "room 0987")
        qtbot.waitUntil(lambda: listed_titles(panel.proxy) == ["Room 0987"], timeout=20_000)
        panel.list_view.setCurrentIndex(panel.proxy.index(0, 0))
        qtbot.waitUntil(lambda: window.chat_panel.chat_id is not None, timeout=20_000)
        assert window.chat_panel.title_label.text() == "Room 0987"
        panel.filter_edit.clear()

        # So does the quick switcher.
        switcher = window.quick_switch()
        qtbot.keyClicks(switcher.search, "Room 0912")
        qtbot.waitUntil(lambda: listed_titles(switcher.proxy) == ["Room 0912"], timeout=20_000)
        qtbot.keyClick(switcher.search, Qt.Key.Key_Return)
        qtbot.waitUntil(lambda: window.chat_panel.title_label.text() == "Room 0912", timeout=20_000)

        # Scrolling the list to its end loads page after page, down to the oldest chat.
        view = panel.list_view
        for _ in range(ROOMS // 10):
            if listed_titles(window.chats)[-1] == "Room 1000" and not bridge.has_more_chats():
                break
            view.scrollToBottom()
            qtbot.wait(20)
        qtbot.waitUntil(lambda: not bridge.has_more_chats(), timeout=20_000)
        view.scrollToBottom()
        titles = listed_titles(window.chats)
        assert titles == [f"Room {n:04}" for n in range(1, ROOMS + 1)]  # every chat once, newest first
        last = panel.proxy.index(panel.proxy.rowCount() - 1, 0)
        assert last.data() == "Room 1000"
        assert view.viewport().rect().intersects(view.visualRect(last))  # on screen
    finally:
        flow.close_windows()
        bridge.detach()
        closing = asyncio.ensure_future(layer.close())
        qtbot.waitUntil(closing.done, timeout=20_000)
