"""GUI test fixtures: offscreen Qt, a qasync loop the widgets' async slots run on, the fake store.

``QT_QPA_PLATFORM`` is set here, before pytest-qt creates the ``QApplication``. The loop fixture makes a
qasync loop that counts as *running* while Qt processes events, so ``qtbot.waitUntil``/``waitSignal``
drive the bridge's coroutines; it is taken down after each test so that other tests' ``asyncio.run``
find no loop running.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

os.environ["QT_QPA_PLATFORM"] = "offscreen"  # before any QApplication exists

import pytest
import qasync
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from desktop_chat.config import Settings
from desktop_chat.ui.bridge import StoreBridge
from desktop_chat.ui.notifications import Notifier
from desktop_chat.ui.sign_in_flow import SignInFlow
from desktop_chat.ui.theme import Theme
from tests.gui.fakes import Cast, FakeChatStore, populated_store

NOW = datetime(2026, 11, 26, 14, 30, tzinfo=UTC)


@pytest.fixture
def qloop(qapp: QApplication) -> Iterator[asyncio.AbstractEventLoop]:
    loop = qasync.QEventLoop(qapp, already_running=True)
    asyncio.set_event_loop(loop)
    try:
        yield loop
    finally:
        for task in asyncio.all_tasks(loop):
            task.cancel()
        qapp.processEvents()  # let the cancellations run
        # Not loop.stop(): it also calls QApplication.exit(), after which every nested QEventLoop (as in
        # qtbot.waitSignal) returns at once. This loop never ran exec(), so clearing its flag is enough.
        loop._QEventLoop__is_running = False  # type: ignore[attr-defined]
        asyncio.events._set_running_loop(None)
        loop.close()
        asyncio.set_event_loop(None)


@pytest.fixture
def cast_and_store(qloop: asyncio.AbstractEventLoop) -> tuple[FakeChatStore, Cast]:
    return populated_store(history=120)


@pytest.fixture
def store(cast_and_store: tuple[FakeChatStore, Cast]) -> FakeChatStore:
    return cast_and_store[0]


@pytest.fixture
def cast(cast_and_store: tuple[FakeChatStore, Cast]) -> Cast:
    return cast_and_store[1]


@pytest.fixture
def bridge(store: FakeChatStore) -> Iterator[StoreBridge]:
    bridge = StoreBridge(store, server_url="http://127.0.0.1:54321")
    yield bridge
    bridge.deleteLater()


@pytest.fixture(scope="session")
def theme(qapp: QApplication) -> Theme:
    """One theme for the whole session: it styles the QApplication, which outlives every test."""
    return Theme(qapp, "light")


@pytest.fixture
def notifier(qloop: asyncio.AbstractEventLoop) -> Iterator[Notifier]:
    notifier = Notifier(QIcon(), enabled=True)
    yield notifier
    notifier.deleteLater()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(config_dir=tmp_path / "config", data_dir=tmp_path / "data")


@pytest.fixture
def flow_factory(
    bridge: StoreBridge, settings: Settings, theme: Theme, notifier: Notifier
) -> Iterator[Callable[..., SignInFlow]]:
    """Builds a SignInFlow over the test's bridge, closing its windows afterwards."""
    flows: list[SignInFlow] = []

    def make(**overrides: Any) -> SignInFlow:
        options: dict[str, Any] = {
            "settings": settings,
            "theme": theme,
            "notifier": notifier,
            "icon": QIcon(),
            "clock": lambda: NOW,
            "confirm": lambda *_: True,
            "is_active": lambda: True,
        }
        options.update(overrides)
        flow = SignInFlow(bridge, **options)
        flows.append(flow)
        return flow

    yield make
    for flow in flows:
        flow.close_windows()
