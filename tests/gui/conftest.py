"""GUI test fixtures: offscreen Qt, a qasync loop the widgets' async slots run on, the fake store.

``QT_QPA_PLATFORM`` is set here, before pytest-qt creates the ``QApplication``. The loop fixture makes a
qasync loop that counts as *running* while Qt processes events, so ``qtbot.waitUntil``/``waitSignal``
drive the bridge's coroutines; it is taken down after each test so that other tests' ``asyncio.run``
find no loop running.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator

os.environ["QT_QPA_PLATFORM"] = "offscreen"  # before any QApplication exists

import pytest
import qasync
from PySide6.QtWidgets import QApplication

from desktop_chat.ui.bridge import StoreBridge
from tests.gui.fakes import Cast, FakeChatStore, populated_store


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
