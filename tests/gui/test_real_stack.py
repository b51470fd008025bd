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
