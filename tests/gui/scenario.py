"""The whole app, as a person uses it, for ``tests/gui/test_scenario.py``: ``python -m tests.gui.scenario PHASE
ARTIFACTS REPORT [MARKER]``.

Each phase is one run of the real app (``desktop_chat.app.run`` with the real data layer, its own Redis kept
on disk, the throwaway stack given by ``DESKTOP_CHAT_*`` variables) on a real X server (Xvfb, xcb), with a
coroutine on the app's own loop playing the user through the windows: typing with key events, clicking
buttons and answering the confirmation box. Screenshots of each step go to ARTIFACTS; what went wrong, and
what was counted, to REPORT (JSON).

- ``online``: sign in as alice, chat, sign out (confirming), sign in as bob, sign out, create an account,
  sign out, sign in as alice again and open her chats, quit. After every sign-out, nothing of the session may
  be left: no window, no main window object, no task of the signed-in user.
- ``offline`` (started with the gateway stopped): the saved chats show at once, marked as not up to date;
  a message sent is queued; MARKER is written; the test starts the gateway; the message goes out and the
  status says Live.
"""

from __future__ import annotations

import asyncio
import gc
import json
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import shiboken6
from PySide6.QtCore import QCoreApplication, QEvent, Qt, QTimer
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

from desktop_chat.app import Options, run
from desktop_chat.dal.api import ConnectionState
from desktop_chat.models import DeliveryState
from desktop_chat.ui.main_window import MainWindow
from desktop_chat.ui.sign_in import SignInWindow

PASSWORD = "password123"  # the seed's published local test accounts
PATIENCE = 30.0
BACK_ONLINE = 90.0  # the gateway's restart plus the realtime link's reconnect backoff


class Scenario:
    def __init__(self, artifacts: Path) -> None:
        self.artifacts = artifacts
        self.problems: list[str] = []
        self.counts: dict[str, Any] = {}
        self.shots: list[str] = []

    # --- looking ---------------------------------------------------------------------------------------
    @staticmethod
    def shown(kind: type[Any]) -> Any:
        return next((w for w in QApplication.topLevelWidgets() if isinstance(w, kind) and w.isVisible()), None)

    async def until(self, check: Callable[[], bool], what: str, within: float = PATIENCE) -> None:
        deadline = time.monotonic() + within
        while not check():
            self.dismiss_crash_dialogs()
            if time.monotonic() > deadline:
                raise AssertionError(f"waited {within:.0f} s for: {what}")
            await asyncio.sleep(0.02)

    def dismiss_crash_dialogs(self) -> None:
        for widget in QApplication.topLevelWidgets():
            if isinstance(widget, QMessageBox) and widget.isVisible() and "hit a bug" in widget.windowTitle():
                self.problems.append(f"crash dialog: {widget.text()}")
                widget.accept()

    async def shot(self, name: str) -> None:
        """The whole screen, as a person sees it (dialogs included)."""
        await asyncio.sleep(0.25)  # let layouts and paints happen
        screen = QApplication.primaryScreen()
        path = self.artifacts / f"scenario-{name}.png"
        screen.grabWindow(0).save(str(path))
        self.shots.append(path.name)

    def check(self, ok: bool, what: str) -> None:
        if not ok:
            self.problems.append(what)

    # --- doing -----------------------------------------------------------------------------------------
    async def type_into(self, widget: QWidget, text: str) -> None:
        widget.setFocus(Qt.FocusReason.OtherFocusReason)
        if hasattr(widget, "clear"):
            widget.clear()
        QTest.keyClicks(widget, text)
        await asyncio.sleep(0)

    async def sign_in(self, email: str, *, new_name: str | None = None) -> MainWindow:
        await self.until(lambda: self.shown(SignInWindow) is not None, "the sign-in window")
        window: SignInWindow = self.shown(SignInWindow)
        window.activateWindow()
        window.set_sign_up(new_name is not None)
        await self.type_into(window.email_edit, email)
        await self.type_into(window.password_edit, PASSWORD)
        if new_name is not None:
            await self.type_into(window.name_edit, new_name)
        QTest.keyClick(window.password_edit, Qt.Key.Key_Return)
        await self.until(lambda: self.shown(MainWindow) is not None, f"{email} signed in")
        main: MainWindow = self.shown(MainWindow)
        main.activateWindow()  # in front, as the window manager would put it (Xvfb has none)
        await self.until(main.isActiveWindow, f"{email}'s window in front")
        await self.until(lambda: main.chats.rowCount() > 0 or new_name is not None, f"{email}'s chats")
        return main

    async def open_chat(self, main: MainWindow, title: str) -> None:
        row = next(r for r in range(main.chats.rowCount()) if main.chats.item(r).chat.title == title)
        chat_id = main.chats.item(row).chat.id
        main.open_chat(chat_id)
        await self.until(
            lambda: main.chat_panel.model.chat_id == chat_id and main.chat_panel.model.rowCount() > 0,
            f"{title} open with its messages",
        )

    async def send(self, main: MainWindow, text: str) -> None:
        editor = main.chat_panel.composer.editor
        await self.type_into(editor, text)
        QTest.keyClick(editor, Qt.Key.Key_Return)
        await self.until(lambda: self.row(main, text) is not None, f"{text!r} shown")

    @staticmethod
    def row(main: MainWindow, text: str) -> Any:
        model = main.chat_panel.model
        return next((m for m in model.items() if m.content == text), None)

    async def sign_out(self, main: MainWindow, name: str) -> None:
        action = next(a for a in main.actions() if a.text() == "Sign &out…")
        QTimer.singleShot(0, action.trigger)  # from the Qt loop: the confirmation box runs a loop of its own
        await self.until(lambda: isinstance(QApplication.activeModalWidget(), QMessageBox), "the confirmation")
        box = QApplication.activeModalWidget()
        assert isinstance(box, QMessageBox)
        self.check(name in box.text(), f"the sign-out question names {name}: {box.text()!r}")
        await self.shot(f"sign-out-{name.split()[0].lower()}")
        confirm = next(b for b in box.buttons() if b.text() == "Sign out")
        confirm.click()
        await self.until(lambda: self.shown(SignInWindow) is not None and self.shown(MainWindow) is None, "signed out")
        await self.nothing_left(name)

    async def nothing_left(self, name: str) -> None:
        """After a sign-out: one window (sign-in), no main window object, no task of the signed-in user."""
        for _ in range(5):
            QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
            await asyncio.sleep(0.05)
        gc.collect()
        visible = [type(w).__name__ for w in QApplication.topLevelWidgets() if w.isVisible()]
        self.check(visible == ["SignInWindow"], f"after {name} signed out, windows left: {visible}")
        alive = sum(1 for o in gc.get_objects() if isinstance(o, MainWindow) and shiboken6.isValid(o))
        self.check(alive == 0, f"after {name} signed out, {alive} main window(s) still exist")
        tasks = [
            getattr(task.get_coro(), "__qualname__", "?")
            for task in asyncio.all_tasks()
            if task is not asyncio.current_task()
        ]
        # The realtime library's reply timers of pushes that got no reply (the leave of a closing socket)
        # end by themselves within its push timeout (10 s). The cache's probe of a Redis that looked slow (a
        # busy machine) is the app's, not the session's: it runs across sign-ins until Redis is back.
        # Everything else of the session must be gone.
        app_wide = ("AsyncPush.start_timeout", "TieredCache._probe_loop")
        ours = sorted(name for name in tasks if not name.startswith(app_wide))
        self.counts.setdefault("tasks after sign-out", []).append(ours)
        self.counts.setdefault("realtime push timers after sign-out", []).append(len(tasks) - len(ours))

    # --- the phases ------------------------------------------------------------------------------------
    async def online(self) -> None:
        await self.until(lambda: self.shown(SignInWindow) is not None, "the sign-in window")
        await self.shot("01-sign-in")
        alice = await self.sign_in("alice@example.com")
        self.check("Alice" in alice.windowTitle(), f"alice's window title: {alice.windowTitle()!r}")
        await self.open_chat(alice, "Alice & Bob")
        said = f"Hello from the scenario {uuid.uuid4().hex[:6]}"
        await self.send(alice, said)
        await self.until(lambda: self.row(alice, said).delivery is DeliveryState.SENT, "alice's message sent")
        await self.shot("02-alice-chats")
        await self.sign_out(alice, "Alice")

        bob = await self.sign_in("bob@example.com")
        self.check("Bob" in bob.windowTitle(), f"bob's window title: {bob.windowTitle()!r}")
        titles = {bob.chats.item(r).chat.title for r in range(bob.chats.rowCount())}
        self.check("Book club" in titles, f"bob's own chats, not alice's: {sorted(titles)}")
        await self.shot("03-bob")
        await self.sign_out(bob, "Bob")

        name = f"Newcomer {uuid.uuid4().hex[:4]}"
        newcomer = await self.sign_in(f"new-{uuid.uuid4().hex[:8]}@example.com", new_name=name)
        self.check(name in newcomer.windowTitle(), f"the new account's title: {newcomer.windowTitle()!r}")
        await self.until(lambda: newcomer.chat_list.empty_label.isVisible(), "the empty list says so")
        await self.shot("04-new-account")
        await self.sign_out(newcomer, name)

        alice = await self.sign_in("alice@example.com")
        await self.open_chat(alice, "Project Falcon")  # one unread message: read once it is on screen
        falcon = alice.chat_panel.chat_id
        await self.until(lambda: alice.chats.summary(falcon).unread_count == 0, "Project Falcon read")
        await self.open_chat(alice, "Alice & Bob")  # both chats' history and members are in the cache now
        await self.until(lambda: alice.chat_panel.subtitle_label.text() == "2 members", "the members")
        await asyncio.sleep(0.5)  # the cache's write-through
        await self.shot("05-alice-again")
        self.counts["said"] = said
        tasks = self.counts["tasks after sign-out"]
        self.check(all(left == ["Composition.main"] for left in tasks), f"tasks left after sign-outs: {tasks}")

    async def offline(self, marker: Path) -> None:
        await self.until(lambda: self.shown(MainWindow) is not None, "the saved session, offline")
        main: MainWindow = self.shown(MainWindow)
        await self.until(lambda: main.chats.rowCount() >= 2, "the saved chats, at once")
        falcon = next(
            main.chats.item(r)
            for r in range(main.chats.rowCount())
            if main.chats.item(r).chat.title == "Project Falcon"
        )
        self.check(
            falcon.unread_count == 0, f"Project Falcon was read before the restart; now {falcon.unread_count} unread"
        )
        status = main.status
        # The saved token goes to the server after the first paint (the client is built then): "Connecting…"
        # until its attempt fails, then "Offline".
        await self.until(lambda: status.connection_label.text() == "Offline", "Offline, the token unconfirmed")
        self.check("not up to date" in status.stale_label.text(), f"stale notice: {status.stale_label.text()!r}")
        await self.shot("06-offline-start")
        await self.open_chat(main, "Alice & Bob")
        await self.until(lambda: main.chat_panel.subtitle_label.text() == "2 members", "the saved members")
        said = "Typed while the server is away"
        await self.send(main, said)
        self.check(self.row(main, said).delivery is DeliveryState.PENDING, "the offline message waits")
        await self.until(lambda: status.outbox_label.text() == "1 message waiting to send", "the waiting count")
        await self.shot("07-offline-queued")
        await asyncio.to_thread(marker.write_text, "queued")  # the test starts the gateway now
        bridge = main._bridge
        await self.until(
            lambda: bridge.status.connection is ConnectionState.LIVE and status.connection_label.text() == "Live",
            "Live again",
            within=BACK_ONLINE,
        )
        await self.until(lambda: self.row(main, said).delivery is DeliveryState.SENT, "the queued message sent")
        await self.until(lambda: not status.outbox_label.isVisible(), "nothing waiting")
        await self.shot("08-delivered-live")


def main(argv: list[str]) -> int:
    phase, artifacts, report = argv[1], Path(argv[2]), Path(argv[3])
    marker = Path(argv[4]) if len(argv) > 4 else None
    artifacts.mkdir(parents=True, exist_ok=True)
    scenario = Scenario(artifacts)

    async def play() -> None:
        try:
            if phase == "online":
                await scenario.online()
            else:
                assert marker is not None
                await scenario.offline(marker)
        except BaseException as error:
            scenario.problems.append(f"{type(error).__name__}: {error}")
        finally:
            for widget in QApplication.topLevelWidgets():
                if widget.isVisible() and isinstance(widget, SignInWindow | MainWindow):
                    widget.close()  # the last window closed: the app quits and shuts down in order

    app = QApplication.instance() or QApplication(argv[:1])  # before the timer: timers need the application
    assert app is not None
    QTimer.singleShot(0, lambda: asyncio.ensure_future(play()))
    code = run(Options())
    report.write_text(
        json.dumps({"exit": code, "problems": scenario.problems, "counts": scenario.counts, "shots": scenario.shots})
    )
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv))
