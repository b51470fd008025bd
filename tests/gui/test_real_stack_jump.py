"""Search and jump in the real window over the real data layer and stack: a chat of 100,000 messages, the
word of the one 50,000 back found with Ctrl+Shift+F, the chat opened there (centred, marked, anchored while
pages come), a live message kept for later, and Ctrl+End back to the newest with it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QIcon
from pytestqt.qtbot import QtBot

from desktop_chat.dal.factory import DataLayer, open_data_layer
from desktop_chat.models import ChatId
from desktop_chat.ui.bridge import StoreBridge
from desktop_chat.ui.main_window import MainWindow
from desktop_chat.ui.notifications import Notifier
from desktop_chat.ui.sign_in_flow import SignInFlow
from desktop_chat.ui.theme import Theme
from tests.conftest import StackHandle
from tests.gui.test_real_stack import settings_for
from tests.history import write_history
from tests.keyrings import MemoryKeyring

pytestmark = pytest.mark.integration

T = TypeVar("T")
HISTORY = 100_000
TARGET = 50_000
PASSWORD = "password123"


def run(qtbot: QtBot, awaitable: Awaitable[T], timeout: int = 60_000) -> T:
    task = asyncio.ensure_future(awaitable)
    qtbot.waitUntil(task.done, timeout=timeout)
    return task.result()


class World:
    def __init__(self) -> None:
        self.layers: list[DataLayer] = []
        self.reader: DataLayer | None = None
        self.speaker: DataLayer | None = None
        self.flow: SignInFlow | None = None
        self.bridge: StoreBridge | None = None
        self.chat: ChatId | None = None


@pytest.fixture
def world(
    qtbot: QtBot, qloop: asyncio.AbstractEventLoop, stack: StackHandle, tmp_path: Path, theme: Theme
) -> Iterator[World]:
    made = World()
    tag = uuid.uuid4().hex[:8]
    reader_email, speaker_email = f"reader-{tag}@example.com", f"speaker-{tag}@example.com"

    def layer(name: str, db: int, **options: Any) -> DataLayer:
        opened = run(
            qtbot, open_data_layer(settings_for(stack, tmp_path / name, db), keyring_backend=MemoryKeyring(), **options)
        )
        made.layers.append(opened)
        return opened

    try:
        speaker = made.speaker = layer("speaker", 13, realtime=False)
        run(qtbot, speaker.store.sign_up(speaker_email, PASSWORD, "Sam Speaker"))
        setup = layer("setup", 14, realtime=False)
        reader_profile = run(qtbot, setup.store.sign_up(reader_email, PASSWORD, "Rita Reader"))
        assert speaker.store.current_user is not None
        chat = made.chat = run(qtbot, speaker.store.create_chat("The long history", [reader_email]))
        people = [speaker.store.current_user.id, reader_profile.id]
        run(qtbot, write_history(stack.db_url, chat, people, HISTORY), timeout=180_000)
        reader = made.reader = layer("reader", 12)
        made.bridge = StoreBridge(reader.store, server_url=stack.api_url)
        notifier = Notifier(QIcon(), enabled=False, parent=made.bridge)
        made.flow = SignInFlow(
            made.bridge,
            settings=reader.settings,
            theme=theme,
            notifier=notifier,
            icon=QIcon(),
            confirm=lambda *_: True,
        )
        made.flow.sign_in_automatically(reader_email, PASSWORD)
        qtbot.waitUntil(lambda: made.flow is not None and made.flow.main_window is not None, timeout=20_000)
        qtbot.waitUntil(lambda: reader.store.chat_list().get(chat) is not None, timeout=20_000)
        yield made
    finally:
        if made.flow is not None:
            made.flow.close_windows()
        if made.bridge is not None:
            made.bridge.detach()
        for opened in reversed(made.layers):
            run(qtbot, opened.close())


def bubble_top(window: MainWindow, seq: int) -> int:
    view, model = window.chat_panel.view, window.chat_panel.model
    view.executeDelayedItemsLayout()
    message_id = model.row_of_seq(seq)
    assert message_id is not None
    row = model.row_of(message_id)
    assert row is not None
    return view.visualRect(model.index(row, 0)).top() + round(view.message_delegate.geometry(row).bubble.top())


def test_find_a_message_50000_back_and_jump_there_and_back(qtbot: QtBot, world: World) -> None:
    assert world.flow is not None and world.bridge is not None and world.speaker is not None
    window, bridge, chat = world.flow.main_window, world.bridge, world.chat
    assert window is not None and chat is not None
    window.show()

    qtbot.keyClick(window, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    panel = window.search_panel
    assert panel.isVisible() and panel.field.hasFocus()
    with qtbot.waitSignal(bridge.messages_found, timeout=20_000):
        qtbot.keyClicks(panel.field, f"{TARGET}")
    [hit] = panel.model.hits
    assert hit.seq == TARGET and hit.chat_id == chat and not panel.status.text().startswith("Offline")
    assert [text for text, lit in hit.snippet_parts() if lit] == [str(TARGET)]

    with qtbot.waitSignal(bridge.chat_opened_at, timeout=20_000):
        qtbot.keyClick(panel.field, Qt.Key.Key_Return)
    chat_panel = window.chat_panel
    view, model = chat_panel.view, chat_panel.model
    assert [m.seq for m in model.items()] == list(range(TARGET - 25, TARGET + 26))
    target_row = model.row_of(hit.id)
    assert target_row is not None and target_row in view.visible_rows()
    assert view.highlighted == hit.id and model.has_newer()

    # Pages above and below do not move what the user reads.
    before = bubble_top(window, TARGET)
    with qtbot.waitSignal(bridge.newer_loaded, timeout=20_000):
        assert model.fetch_newer()
    model.set_older_wanted(True)
    with qtbot.waitSignal(bridge.older_loaded, timeout=20_000):
        model.fetchMore(model.index(0, 0).parent())
    assert bubble_top(window, TARGET) == before
    assert [m.seq for m in model.items()] == list(range(TARGET - 75, TARGET + 76))
    assert view.unseen == 0

    # Someone writes meanwhile: not in this window (no hole), not lost.
    run(qtbot, world.speaker.store.send(chat, "are you still reading that?"))
    qtbot.waitUntil(
        lambda: (
            (row := world.reader.store.chat_list().get(chat)) is not None  # type: ignore[union-attr]
            and row.last_message is not None
            and row.last_message.seq == HISTORY + 1
        ),
        timeout=20_000,
    )
    assert model.row_of_seq(HISTORY + 1) is None

    # Ctrl+End: the newest messages, the one written meanwhile at the bottom, following live again.
    with qtbot.waitSignal(bridge.chat_opened, timeout=20_000):
        qtbot.keyClick(view, Qt.Key.Key_End, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: model.item(model.rowCount() - 1).content == "are you still reading that?", timeout=20_000)
    assert not model.has_newer()
    qtbot.waitUntil(view.is_at_bottom, timeout=5000)
    run(qtbot, world.speaker.store.send(chat, "welcome back"))
    qtbot.waitUntil(lambda: model.item(model.rowCount() - 1).content == "welcome back", timeout=20_000)
