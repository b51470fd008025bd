"""A start with a saved session, in the windows over the real data layer and stack: the main window paints
the cached chat list before the server has answered the saved token, and goes back to the sign-in window
by itself when the server refuses it.

The server's answers are held by a loopback proxy (``hold``) until the list has been painted, so nothing
here depends on how fast anything is; the request timeout is long, so that a start which waited for the
answer (before this change) would show no window at all within the test's patience.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterator
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

import asyncpg
import pytest
from pydantic import SecretStr
from PySide6.QtGui import QIcon
from pytestqt.qtbot import QtBot

from desktop_chat.backend.session_state import SessionState
from desktop_chat.config import Settings
from desktop_chat.dal.api import ConnectionState
from desktop_chat.dal.factory import DataLayer, open_data_layer
from desktop_chat.ui.bridge import StoreBridge
from desktop_chat.ui.notifications import Notifier
from desktop_chat.ui.sign_in_flow import SignInFlow
from desktop_chat.ui.theme import Theme
from devstack.config import REPO_ROOT
from devstack.proxy import LoopbackProxy
from tests.conftest import StackHandle
from tests.integration.dal.conftest import ALICE
from tests.keyrings import MemoryKeyring

pytestmark = pytest.mark.integration

T = TypeVar("T")
PATIENCE_MS = 20_000
ARTIFACTS = REPO_ROOT / "tests" / "artifacts"


def wait(qtbot: QtBot, work: Awaitable[T]) -> T:
    task = asyncio.ensure_future(work)
    qtbot.waitUntil(task.done, timeout=PATIENCE_MS)
    return task.result()


class Start:
    """A computer where alice signed in once (session saved, cache warm), restarted behind a proxy."""

    def __init__(self, qtbot: QtBot, stack: StackHandle, home: Path, theme: Theme) -> None:
        self.qtbot = qtbot
        self.stack = stack
        target = urlsplit(stack.api_url)
        assert target.hostname is not None and target.port is not None
        self.proxy = LoopbackProxy(target.hostname, target.port)
        self.proxy.start()
        self.settings = Settings(
            supabase_url=f"http://127.0.0.1:{self.proxy.port}",
            supabase_anon_key=SecretStr(stack.anon_key),
            redis_url=stack.redis_url.rsplit("/", 1)[0] + "/14",
            config_dir=home / "config",
            data_dir=home / "data",
            runtime_dir=home / "run",
            cache_dir=home / "cache",
            log_dir=home / "log",
            request_timeout=120.0,  # a start that waited for the held answer would show nothing in time
        )
        self.keyring = MemoryKeyring()
        self.theme = theme
        self.layer: DataLayer | None = None
        self.flow: SignInFlow | None = None
        self.bridge: StoreBridge | None = None

    def first_run(self) -> list[str]:
        """Sign in through the data layer (saves the session, warms the cache) and quit; the titles shown."""

        async def run() -> list[str]:
            layer = await open_data_layer(self.settings, keyring_backend=self.keyring, realtime=False)
            try:
                await layer.store.sign_in("alice@example.com", "password123")
                await layer.store.settle()
                return [row.chat.title for row in layer.store.chat_list().rows]
            finally:
                await layer.close()

        return wait(self.qtbot, run())

    def restart(self) -> SignInFlow:
        self.layer = wait(self.qtbot, open_data_layer(self.settings, keyring_backend=self.keyring))
        self.bridge = StoreBridge(self.layer.store, server_url=self.settings.supabase_url)
        notifier = Notifier(QIcon(), enabled=False, parent=self.bridge)
        self.flow = SignInFlow(
            self.bridge,
            settings=self.settings,
            theme=self.theme,
            notifier=notifier,
            icon=QIcon(),
            confirm=lambda *_: True,
        )
        self.flow.start()
        return self.flow

    def close(self) -> None:
        if self.flow is not None and self.bridge is not None:
            self.flow.close_windows()
            self.bridge.detach()
        self.proxy.release()
        if self.layer is not None:
            wait(self.qtbot, self.layer.close())
        self.proxy.stop()


@pytest.fixture
def start(
    qtbot: QtBot, qloop: asyncio.AbstractEventLoop, stack: StackHandle, tmp_path: Path, theme: Theme
) -> Iterator[Start]:
    made = Start(qtbot, stack, tmp_path / "alice", theme)
    yield made
    made.close()


def painted_titles(flow: SignInFlow) -> list[str]:
    window = flow.main_window
    if window is None or not window.isVisible():
        return []
    view = window.chat_list.list_view
    model = view.model()
    if model is None or view.grab().isNull():
        return []
    return [window.chats.item(row).chat.title for row in range(window.chats.rowCount())]


def test_the_cached_chat_list_paints_before_the_saved_session_is_confirmed(qtbot: QtBot, start: Start) -> None:
    titles = start.first_run()
    assert titles
    start.proxy.hold()  # the server's answers (the token's first) wait until the list has painted
    flow = start.restart()
    qtbot.waitUntil(lambda: painted_titles(flow) == titles, timeout=PATIENCE_MS)
    layer = start.layer
    assert layer is not None
    assert layer.backend.auth.state is SessionState.RESTORING and layer.backend.session is None
    assert layer.backend.round_trips.snapshot().answered == 0
    assert flow.main_window is not None and flow.sign_in_window is None
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    flow.main_window.grab().save(str(ARTIFACTS / "restore-before-confirmation.png"))
    qtbot.waitUntil(lambda: start.proxy.held > 0, timeout=PATIENCE_MS)  # the token's answer, held
    start.proxy.release()
    qtbot.waitUntil(lambda: layer.store.status.connection is ConnectionState.LIVE, timeout=PATIENCE_MS)
    assert layer.backend.auth.state is SessionState.CONFIRMED
    assert painted_titles(flow) == titles


def test_a_saved_session_revoked_meanwhile_goes_back_to_the_sign_in_window(
    qtbot: QtBot, start: Start, stack: StackHandle
) -> None:
    titles = start.first_run()

    async def revoke() -> None:  # "sign out everywhere" on another computer
        conn = await asyncpg.connect(stack.db_url)
        try:
            await conn.execute("delete from auth.refresh_tokens where user_id = $1", ALICE)
        finally:
            await conn.close()

    wait(qtbot, revoke())
    start.proxy.hold()
    flow = start.restart()
    qtbot.waitUntil(lambda: painted_titles(flow) == titles, timeout=PATIENCE_MS)
    start.proxy.release()  # the server refuses the token
    qtbot.waitUntil(lambda: flow.main_window is None and flow.sign_in_window is not None, timeout=PATIENCE_MS)
    window = flow.sign_in_window
    assert window is not None and window.isVisible()
    assert "sign in again" in window.error_label.text()
    window.grab().save(str(ARTIFACTS / "restore-revoked-sign-in.png"))
    layer = start.layer
    assert layer is not None and layer.store.current_user is None
    assert layer.backend.auth.state is SessionState.SIGNED_OUT
