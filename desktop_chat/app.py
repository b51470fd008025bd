"""Composition root: settings → data layer → bridge → windows, under a qasync loop; shutdown in reverse.

Start-up, each step logged at INFO in this order:

1. settings (defaults, the user's settings file, ``DESKTOP_CHAT_*``, ``--dev-stack``), then logging, then
   the data directory's single-instance lock (taken: a second start asks this one to raise and exits);
2. the Qt application, its theme and icon, the crash handler, the qasync loop;
3. the data layer, from ``open_store`` (**the seam where the real data layer gets built**; it is also
   what takes it down again);
4. the bridge, the notifier, and one session flow per signed-in window (two with ``--demo``);
5. the windows: the main window if a saved session was restored, else the sign-in window.

Shutdown (Quit, a closed window, SIGINT/SIGTERM) runs in reverse and completes before the loop stops:
windows closed, bridges detached, then each data layer closed by the composition that opened it (the
signed-in user's session ended, outbox closed, realtime closed, managed Redis stopped). Nothing here is
global: every object gets what it needs through its constructor.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import qasync
from pydantic import SecretStr, ValidationError
from PySide6.QtCore import QCoreApplication, Qt
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from desktop_chat import APP_ID, __version__
from desktop_chat.config import LOCAL_ANON_KEY, LOCAL_SUPABASE_URL, Settings
from desktop_chat.dal.api import ChatStoreAPI
from desktop_chat.dal.factory import open_data_layer
from desktop_chat.errors import DesktopChatError
from desktop_chat.single_instance import SingleInstance, hand_over
from desktop_chat.telemetry.logs import setup_logging, teardown_logging
from desktop_chat.ui.bridge import StoreBridge
from desktop_chat.ui.crash import CrashHandler
from desktop_chat.ui.notifications import Notifier
from desktop_chat.ui.sign_in import SignInWindow
from desktop_chat.ui.sign_in_flow import SignInFlow
from desktop_chat.ui.theme import Theme, app_icon

_log = logging.getLogger("desktop_chat.app")

DEFAULT_INSTANCE = "default"
# The devstack seed's accounts (published local test credentials): ``--dev-stack`` signs in as alice when
# no session was saved, and ``--demo`` opens a second window as bob.
DEV_EMAIL = "alice@example.com"
# The devstack seed's second account (published test credentials), for ``--demo``.
DEMO_INSTANCE = "bob"
DEMO_EMAIL = "bob@example.com"
DEMO_PASSWORD = "password123"  # noqa: S105 (a published local test account, not a secret)
SMOKE_TEST_TIMEOUT = 30.0

# Opens a data layer for (settings, instance) for the time of an ``async with``; leaving it closes it.
StoreFactory = Callable[[Settings, str], AbstractAsyncContextManager[ChatStoreAPI]]


def instance_settings(settings: Settings, instance: str) -> Settings:
    """Settings for an independent session on this machine: its own outbox, keyring entries and cache."""
    if instance == DEFAULT_INSTANCE:
        return settings
    return settings.model_copy(
        update={
            "data_dir": settings.data_dir / instance,
            "config_dir": settings.config_dir / instance,
            "runtime_dir": settings.runtime_dir / instance,
            "cache_dir": settings.cache_dir / instance,
        }
    )


@asynccontextmanager
async def open_store(settings: Settings, instance: str = DEFAULT_INSTANCE) -> AsyncIterator[ChatStoreAPI]:
    """The real data layer for ``settings``, closed on leaving (the user's session, outbox, cache and its
    redis-server, client).

    ``instance`` names an independent session on this machine (``--demo``'s second window is "bob").
    """
    # The server client is held back until the first window has painted (docs/architecture.md §10).
    layer = await open_data_layer(instance_settings(settings, instance), hold_client=True)
    try:
        yield layer.store
    finally:
        await layer.close()


@dataclass(frozen=True)
class Options:
    """What the command line asked for."""

    smoke_test: bool = False
    dev_stack: bool = False
    demo: bool = False


def load_settings(options: Options) -> Settings:
    """Settings from defaults, the settings file and the environment; ``--dev-stack`` pins the local stack."""
    if options.dev_stack:
        return Settings(supabase_url=LOCAL_SUPABASE_URL, supabase_anon_key=SecretStr(LOCAL_ANON_KEY))
    return Settings()


def configure_logging(settings: Settings) -> None:
    """Rotating, redacted log file in the user log directory, plus stderr."""
    path = setup_logging(settings.log_dir, settings.log_level)
    _log.info("Logging to %s", path)


def use_offscreen_without_display() -> None:
    """No display (a server, CI): run offscreen rather than fail to start."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def run(
    options: Options,
    *,
    store_factory: StoreFactory = open_store,
    settings: Settings | None = None,
    clock: Callable[[], datetime] | None = None,
) -> int:
    """Start the application and return its exit code (blocks until it quits)."""
    use_offscreen_without_display()
    try:
        settings = settings or load_settings(options)
    except ValidationError as error:
        print(f"desktop-chat: a setting is invalid:\n{error}", file=sys.stderr)
        return 2
    configure_logging(settings)
    _log.info("desktop-chat %s starting; settings loaded (server %s)", __version__, settings.supabase_url)
    instance = SingleInstance.claim(settings.data_dir, settings.runtime_dir)
    if instance is None:  # another run has these files: it shows its window, this one touches nothing
        return hand_over(settings.data_dir, settings.runtime_dir, smoke_test=options.smoke_test)

    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)  # a QCoreApplication cannot show windows
    QCoreApplication.setApplicationName("desktop-chat")
    QCoreApplication.setApplicationVersion(__version__)
    # The desktop entry's name: the Wayland app id, so the shell shows the entry's icon and name for the window.
    QApplication.setDesktopFileName(APP_ID)
    # Quitting is ours to decide: the data layers must be closed before the event loop stops.
    app.setQuitOnLastWindowClosed(False)
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    composition = Composition(app, options, settings, store_factory, clock)
    try:
        loop.run_until_complete(instance.listen(composition.raise_window))
        return int(loop.run_until_complete(composition.main()))
    finally:
        instance.release()
        loop.close()
        asyncio.set_event_loop(None)
        teardown_logging()


class Composition:
    """What ``run`` builds, in order, and takes down in reverse.

    Args:
        app: The Qt application.
        options: The command line.
        settings: The running settings.
        store_factory: Opens a data layer (``open_store``; tests pass a fake).
        clock: "Now" for the UI (tests and screenshots fix it).
    """

    def __init__(
        self,
        app: QApplication,
        options: Options,
        settings: Settings,
        store_factory: StoreFactory,
        clock: Callable[[], datetime] | None,
    ) -> None:
        self._app = app
        self._options = options
        self._settings = settings
        self._factory = store_factory
        self._clock = clock
        self._quit = asyncio.Event()
        self._bridges: list[StoreBridge] = []
        self._layers: dict[str, AsyncExitStack] = {}  # per instance: what closes its data layer
        self._closing: list[AsyncExitStack] = []  # layers replaced by another server's, to close
        self._flows: list[SignInFlow] = []
        self._notifiers: list[Notifier] = []
        self._problem_window: SignInWindow | None = None
        self.crash_handler = CrashHandler(show_dialog=not options.smoke_test, log_location=str(settings.log_dir))

    async def main(self) -> int:
        icon = app_icon()
        self._app.setWindowIcon(icon)
        theme = Theme(self._app, self._settings.theme)
        self.crash_handler.install()
        self._handle_signals()
        _log.info("Qt %s ready (%s), theme %s", qasync.QtModuleName, self._app.platformName(), theme.choice)
        try:
            first = await self._start_session(DEFAULT_INSTANCE, icon, theme)
            if first is not None and self._options.dev_stack and not self._options.smoke_test:
                first.sign_in_if_no_session(DEV_EMAIL, DEMO_PASSWORD)
            if self._options.demo:
                flow = await self._start_session(DEMO_INSTANCE, icon, theme)
                if flow is not None:
                    flow.sign_in_automatically(DEMO_EMAIL, DEMO_PASSWORD)
            if self._options.smoke_test:
                return await self._smoke_test()
            await self._quit.wait()
            return 0
        finally:
            await self._shutdown()

    def request_quit(self) -> None:
        self._quit.set()

    def raise_window(self) -> None:
        """Another start of the app asked for the window: bring the one shown to the front."""
        window = self._problem_window or next((w for f in self._flows if (w := f.visible_window()) is not None), None)
        if window is not None:
            window.setWindowState(window.windowState() & ~Qt.WindowState.WindowMinimized)
            window.show()
            window.raise_()
            window.activateWindow()

    # --- start-up ------------------------------------------------------------------------------------
    async def _start_session(self, instance: str, icon: QIcon, theme: Theme) -> SignInFlow | None:
        _log.info("Building the data layer (%s)", instance)
        try:
            store = await self._open_layer(self._settings, instance)
        except DesktopChatError as error:
            problem = error.message
            _log.warning("The data layer could not be started: %s", problem)
            self._show_problem(problem, icon)
            return None
        bridge = StoreBridge(store, server_url=self._settings.supabase_url)
        self._bridges.append(bridge)
        _log.info("Bridge ready (%s)", instance)
        notifier = Notifier(icon, enabled=self._settings.notifications, parent=bridge)
        self._notifiers.append(notifier)

        async def switch_server(url: str, key: str) -> None:
            await self._switch_server(bridge, instance, url, key)

        flow = SignInFlow(
            bridge,
            settings=self._settings,
            theme=theme,
            notifier=notifier,
            icon=icon,
            switch_server=switch_server,
            clock=self._clock or _utc_now,
        )
        flow.quit_requested.connect(self.request_quit)
        self._flows.append(flow)
        _log.info("Restoring the session (%s)", instance)
        flow.start()
        return flow

    async def _open_layer(self, settings: Settings, instance: str) -> ChatStoreAPI:
        """Open a data layer for ``instance``; the one it replaces, if any, is closed afterwards."""
        layer = AsyncExitStack()
        store = await layer.enter_async_context(self._factory(settings, instance))
        previous = self._layers.get(instance)
        self._layers[instance] = layer
        if previous is not None:
            self._closing.append(previous)
        return store

    async def _switch_server(self, bridge: StoreBridge, instance: str, url: str, key: str) -> None:
        """Another server for ``instance``: its own data layer (the sign-in flow remembers it once signed in)."""
        settings = self._settings.model_copy(update={"supabase_url": url, "supabase_anon_key": SecretStr(key)})
        store = await self._open_layer(settings, instance)
        bridge.replace_store(store, server_url=url)
        await self._close_replaced()
        _log.info("Switched to the server at %s", url)

    async def _close_replaced(self) -> None:
        while self._closing:
            await self._close_layer(self._closing.pop())

    async def _close_layer(self, layer: AsyncExitStack) -> None:
        try:
            await layer.aclose()
        except DesktopChatError as error:
            _log.warning("The data layer did not close cleanly: %s", error.message)

    def _show_problem(self, problem: str, icon: QIcon) -> None:
        if self._problem_window is not None:
            return
        window = SignInWindow(self._settings.supabase_url, icon=icon)
        window.setWindowIcon(icon)
        window.show_error(problem)
        window.submit_button.setEnabled(False)
        window.closed.connect(self.request_quit)
        window.show()
        self._problem_window = window

    def _handle_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for number in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(number, self.request_quit)
            except (NotImplementedError, RuntimeError, ValueError):
                # Windows, or not the main thread: Ctrl+C then only works through the window.
                _log.debug("No handler for signal %s", number)

    # --- smoke test ----------------------------------------------------------------------------------
    async def _smoke_test(self) -> int:
        deadline = time.monotonic() + SMOKE_TEST_TIMEOUT
        while True:
            window = self._problem_window or next(
                (shown for flow in self._flows if (shown := flow.visible_window()) is not None), None
            )
            if window is not None:
                break
            if time.monotonic() > deadline:
                _log.error("Smoke test: no window appeared within %.0f s", SMOKE_TEST_TIMEOUT)
                return 1
            await asyncio.sleep(0.01)
        frame = window.grab()  # renders the window: every paint event of one frame
        if frame.isNull() or frame.width() == 0:
            _log.error("Smoke test: the window painted nothing")
            return 1
        _log.info("Smoke test: painted %s (%dx%d)", type(window).__name__, frame.width(), frame.height())
        return 1 if self.crash_handler.crashes else 0

    # --- shutdown ------------------------------------------------------------------------------------
    async def _shutdown(self) -> None:
        _log.info("Shutting down: closing windows")
        for flow in reversed(self._flows):
            flow.close_windows()
        if self._problem_window is not None:
            self._problem_window.closed.disconnect(self.request_quit)
            self._problem_window.close()
            self._problem_window.deleteLater()
            self._problem_window = None
        for notifier in self._notifiers:
            await notifier.close()  # the session bus connection
        for bridge in reversed(self._bridges):
            bridge.detach()
        await self._close_replaced()
        for layer in reversed(list(self._layers.values())):
            _log.info("Closing the data layer (outbox, realtime, cache)")
            await self._close_layer(layer)
        self._layers.clear()
        self.crash_handler.uninstall()
        _log.info("Shut down")


def _utc_now() -> datetime:
    return datetime.now(UTC)
