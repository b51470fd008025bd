"""GUI test fixtures: offscreen Qt, a qasync loop the widgets' async slots run on, the fake store.

``QT_QPA_PLATFORM`` is set here, before pytest-qt creates the ``QApplication``. The loop fixture makes a
qasync loop that counts as *running* while Qt processes events, so ``qtbot.waitUntil``/``waitSignal``
drive the bridge's coroutines; it is taken down after each test so that other tests' ``asyncio.run``
find no loop running.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
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


# --- a D-Bus session bus of the test's own, and a notification service on it -------------------------------
BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:dir={directory}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""


@dataclass
class NotificationService:
    """What the test notification service (``tests/gui/notification_service.py``) received."""

    record: Path

    def received(self) -> list[dict[str, Any]]:
        if not self.record.exists():
            return []
        return [json.loads(line) for line in self.record.read_text(encoding="utf-8").splitlines()]

    def click(self, notification_id: int) -> None:
        """As if the user clicked the notification: the service emits ``ActionInvoked(id, "default")``."""
        partial = self.record.with_name(self.record.name + ".invoke.partial")
        partial.write_text(str(notification_id))
        partial.replace(self.record.with_name(self.record.name + ".invoke"))  # atomic: never read half-written


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture
def session_bus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A private ``dbus-daemon`` (Debian's), with ``DBUS_SESSION_BUS_ADDRESS`` pointing at it."""
    directory = Path(tempfile.mkdtemp(prefix="dc-bus-"))  # short: a socket path must fit in 108 bytes
    config = tmp_path / "bus.conf"
    config.write_text(BUS_CONFIG.format(directory=directory))
    daemon = subprocess.Popen(
        ["dbus-daemon", f"--config-file={config}", "--nofork", "--print-address=1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert daemon.stdout is not None
        address = daemon.stdout.readline().decode().strip()
        assert address.startswith("unix:"), address
        monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", address)
        yield address
    finally:
        _stop(daemon)
        if daemon.stdout is not None:
            daemon.stdout.close()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def notification_service(session_bus: str, tmp_path: Path) -> Iterator[NotificationService]:
    """The test notification service, owning ``org.freedesktop.Notifications`` on the test's bus."""
    record = tmp_path / "notifications.jsonl"
    service = subprocess.Popen(
        [sys.executable, "-m", "tests.gui.notification_service", str(record)],
        stdout=subprocess.PIPE,
        cwd=Path(__file__).parents[2],
    )
    try:
        assert service.stdout is not None
        assert service.stdout.readline().decode().strip() == "ready"
        yield NotificationService(record)
    finally:
        _stop(service)
        if service.stdout is not None:
            service.stdout.close()


@pytest.fixture(scope="module")
def x_display() -> Iterator[str]:
    """A private Xvfb on a display number it picks itself (-displayfd), stopped by its pid afterwards."""
    read_end, write_end = os.pipe()
    server = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_end), "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
        pass_fds=(write_end,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_end)
    try:
        with os.fdopen(read_end) as announced:
            number = announced.readline().strip()  # written once the server accepts connections
        assert number.isdigit(), "Xvfb did not start"
        yield f":{number}"
    finally:
        server.terminate()
        server.wait(timeout=10)
