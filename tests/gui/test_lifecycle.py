"""The account lifecycle in one process: sign in, chat, sign out, another account, a new account, again and
again, without a crash, a leaked window, task, connection or model, and with titles naming the account."""

from __future__ import annotations

import asyncio
import gc
import sys
from collections.abc import Callable, Iterator
from types import TracebackType

import pytest
import shiboken6
from PySide6.QtCore import QCoreApplication, QEvent, QObject
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from desktop_chat.ui.bridge import StoreBridge
from desktop_chat.ui.chat_list_model import ChatListModel
from desktop_chat.ui.main_window import MainWindow
from desktop_chat.ui.sign_in import SignInWindow
from desktop_chat.ui.sign_in_flow import SignInFlow
from desktop_chat.ui.timeline_model import TimelineModel
from tests.gui.fakes import PASSWORD, FakeChatStore

FlowFactory = Callable[..., SignInFlow]
BRIDGE_SIGNALS = ("failed", "finished", "started", "status_changed", "chat_opened", "incoming_received")


@pytest.fixture
def crashes() -> Iterator[list[BaseException]]:
    """What reached ``sys.excepthook`` (the crash dialog in the app): must stay empty."""
    seen: list[BaseException] = []
    previous = sys.excepthook

    def hook(kind: type[BaseException], error: BaseException, trace: TracebackType | None) -> None:
        seen.append(error)

    sys.excepthook = hook
    yield seen
    sys.excepthook = previous


def settle(qtbot: QtBot) -> None:
    """Let deleteLater happen (Qt deletes on a later turn of the loop)."""
    for _ in range(3):
        QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
        QApplication.processEvents()
    gc.collect()


def alive(kind: type[QObject]) -> int:
    return sum(1 for thing in gc.get_objects() if isinstance(thing, kind) and shiboken6.isValid(thing))


def receivers(bridge: StoreBridge) -> dict[str, int]:
    meta = bridge.metaObject()
    counts = {}
    for name in BRIDGE_SIGNALS:
        method = next(
            meta.method(i) for i in range(meta.methodCount()) if bytes(meta.method(i).name().data()).decode() == name
        )
        counts[name] = bridge.receivers(f"2{bytes(method.methodSignature().data()).decode()}")
    return counts


def sign_in_as(qtbot: QtBot, flow: SignInFlow, email: str, *, new_name: str | None = None) -> MainWindow:
    qtbot.waitUntil(lambda: flow.sign_in_window is not None and flow.sign_in_window.isVisible())
    window = flow.sign_in_window
    assert isinstance(window, SignInWindow)
    window.set_sign_up(new_name is not None)
    window.email_edit.setText(email)
    window.password_edit.setText(PASSWORD)
    if new_name is not None:
        window.name_edit.setText(new_name)
    window.submit()
    qtbot.waitUntil(lambda: flow.main_window is not None and flow.main_window.isVisible())
    main = flow.main_window
    assert isinstance(main, MainWindow)
    return main


def chat_and_sign_out(qtbot: QtBot, flow: SignInFlow, main: MainWindow, store: FakeChatStore) -> None:
    qtbot.waitUntil(lambda: "refresh_chats" in store.call_names()[-3:])
    if main.chats.rowCount():
        chat_id = main.chats.item(0).chat.id
        main.open_chat(chat_id)
        qtbot.waitUntil(lambda: main.chat_panel.model.rowCount() > 0 or main.chat_panel.model.chat_id == chat_id)
        main.chat_panel.composer.set_text("hello from the lifecycle test")
        main.chat_panel.composer.submit()
    main.sign_out_requested.emit()
    qtbot.waitUntil(lambda: flow.main_window is None and flow.sign_in_window is not None)


def test_sign_out_and_in_as_others_and_a_new_account_any_number_of_times(
    qtbot: QtBot,
    flow_factory: FlowFactory,
    store: FakeChatStore,
    bridge: StoreBridge,
    crashes: list[BaseException],
) -> None:
    store.saved_session = None
    store._current = None
    flow = flow_factory()
    flow.start()
    loop = asyncio.get_event_loop()
    baseline: dict[str, int] | None = None
    tasks_before = len(asyncio.all_tasks(loop))
    # Other tests of the session may have left objects for the garbage collector: count what this one adds.
    settle(qtbot)
    before = {kind: alive(kind) for kind in (MainWindow, ChatListModel, TimelineModel)}
    for round_ in range(3):
        for email, name, title in (
            ("alice@example.com", None, "Alice Martin"),
            ("bob@example.com", None, "Bob Chen"),
            (f"new{round_}@example.com", f"Newcomer {round_}", f"Newcomer {round_}"),
        ):
            main = sign_in_as(qtbot, flow, email, new_name=name)
            assert title in main.windowTitle()  # which account this window is
            chat_and_sign_out(qtbot, flow, main, store)
            settle(qtbot)
            visible = [w for w in QApplication.topLevelWidgets() if w.isVisible()]
            assert visible == [flow.sign_in_window]  # no main window, dialog or diagnostics left behind
            assert {kind: alive(kind) for kind in before} == before
            counts = receivers(bridge)
            baseline = baseline or counts
            assert counts == baseline  # nothing stays connected to the bridge from a closed window
            assert len(asyncio.all_tasks(loop)) <= tasks_before
    assert crashes == []
