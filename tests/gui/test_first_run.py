"""The first start of an installed app: no local stack, no settings. The sign-in window asks for the server
(address and project key) and says what they are; a wrong address or key is a plain sentence, never a crash;
what worked is remembered, so the next start only names the server and greets the user back.

The whole app runs in-process (``desktop_chat.app.run`` with the real data layer) against the throwaway
stack; a coroutine on the app's own loop plays the user.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from desktop_chat.app import Options, open_store, run
from desktop_chat.config import Settings, read_user_settings
from desktop_chat.ui.main_window import MainWindow
from desktop_chat.ui.sign_in import SERVER_HELP, SignInWindow
from devstack.procs import free_port
from tests.conftest import StackHandle
from tests.gui.fakes import PASSWORD

pytestmark = pytest.mark.integration
PATIENCE = 30.0


class _NotSupabase(BaseHTTPRequestHandler):
    """Some web server that is not a Supabase project: a page for everything."""

    def do_GET(self) -> None:
        self._page()

    def do_POST(self) -> None:
        self._page()

    def _page(self) -> None:
        body = b"<html><body>Welcome to nginx!</body></html>"
        self.send_response(404)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def web_server() -> Iterator[Callable[[type[BaseHTTPRequestHandler]], str]]:
    servers: list[ThreadingHTTPServer] = []

    def serve(handler: type[BaseHTTPRequestHandler]) -> str:
        server = ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


def home_settings(home: Path) -> Settings:
    """What an installed app starts with: nothing chosen (the defaults), only its own directories."""
    return Settings(
        config_dir=home / "config",
        data_dir=home / "data",
        runtime_dir=home / "run",
        cache_dir=home / "cache",
        log_dir=home / "log",
        request_timeout=5.0,
    )


def play(user: Callable[[], Awaitable[None]], problems: list[BaseException]) -> None:
    """Run ``user`` on the app's loop once it runs; then quit the app (closing its windows)."""

    async def script() -> None:
        try:
            await user()
        except BaseException as error:  # reported by the test, after the app has shut down
            problems.append(error)
        finally:
            for widget in QApplication.topLevelWidgets():
                if widget.isVisible() and isinstance(widget, SignInWindow | MainWindow):
                    widget.close()  # closing the last window quits

    QTimer.singleShot(0, lambda: asyncio.ensure_future(script()))


async def until(check: Callable[[], bool], what: str) -> None:
    async with asyncio.timeout(PATIENCE):
        while not check():  # noqa: ASYNC110 - polling the app's windows from its own loop
            await asyncio.sleep(0.02)
    assert check(), what


def shown(kind: type[Any]) -> Any:
    return next((w for w in QApplication.topLevelWidgets() if isinstance(w, kind) and w.isVisible()), None)


async def try_server(window: SignInWindow, url: str, key: str, password: str = PASSWORD) -> str:
    """Type a server, key and credentials, submit, and return the sentence the window shows."""
    window.show_server_fields(True)
    window.server_edit.setText(url)
    window.key_edit.setText(key)
    window.password_edit.setText(password)
    window.clear_error()
    window.submit()
    await until(lambda: shown(MainWindow) is not None or window.error_label.isVisible(), "an answer")
    return "" if shown(MainWindow) is not None else window.error_label.text()


def test_the_first_start_asks_for_the_server_explains_it_and_remembers_it(
    qapp: QApplication,
    stack: StackHandle,
    tmp_path: Path,
    web_server: Callable[[type[BaseHTTPRequestHandler]], str],
) -> None:
    settings = home_settings(tmp_path / "home")
    nothing_there = f"http://127.0.0.1:{free_port()}"
    not_supabase = web_server(_NotSupabase)
    problems: list[BaseException] = []
    said: dict[str, str] = {}

    async def first_time() -> None:
        await until(lambda: shown(SignInWindow) is not None, "the sign-in window")
        window = shown(SignInWindow)
        assert window.heading.text() == "Welcome to desktop-chat"  # nobody signed in here before
        assert window.server_fields.isVisible() and window.server_help.text() == SERVER_HELP
        window.email_edit.setText("alice@example.com")
        said["typo"] = await try_server(window, "htp:/oops", stack.anon_key)
        said["nothing there"] = await try_server(window, nothing_there, stack.anon_key)
        said["not supabase"] = await try_server(window, not_supabase, stack.anon_key)
        said["wrong key"] = await try_server(window, stack.api_url, "eyJhbGciOi.not-the-key.at-all")
        said["no key"] = await try_server(window, stack.api_url, "")
        assert window.server_fields.isVisible()  # each time, the fields in question are in view
        said["right"] = await try_server(window, stack.api_url, stack.anon_key)
        await until(lambda: shown(MainWindow) is not None, "signed in")

    play(first_time, problems)
    assert run(Options(), store_factory=open_store, settings=settings) == 0
    assert problems == []
    assert said == {
        "typo": "Enter the server address, like https://xyz.supabase.co (or http://127.0.0.1:54321).",
        "nothing there": f"Cannot reach the server at {nothing_there}. Check your connection and try again.",
        "not supabase": f"There is no Supabase project at {not_supabase}. Check the server address.",
        "wrong key": f"The server at {stack.api_url} does not accept this project key. "
        "Check the key: the project's anon or publishable key, from its API settings.",
        "no key": "Enter the project's public key (the anon or publishable key from its API settings).",
        "right": "",
    }
    remembered = read_user_settings(settings.config_dir)
    assert remembered == {
        "supabase_url": stack.api_url,
        "supabase_anon_key": stack.anon_key,
        "last_email": "alice@example.com",
    }

    # The next start: the session was saved, so sign out first to see the sign-in window again.
    async def next_time() -> None:
        await until(lambda: shown(MainWindow) is not None, "the saved session")
        shown(MainWindow).sign_out_requested.emit()
        await until(lambda: shown(SignInWindow) is not None, "signed out")
        window = shown(SignInWindow)
        assert window.heading.text() == "Welcome back"
        assert window.email_edit.text() == "alice@example.com"
        assert not window.server_fields.isVisible()
        assert window.server_summary.text() == f"Server: {stack.api_url.removeprefix('http://')}"

    play(next_time, problems)
    again = Settings(**{**home_settings(tmp_path / "home").model_dump(), **remembered})
    assert run(Options(), store_factory=open_store, settings=again) == 0
    assert problems == []
