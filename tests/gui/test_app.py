"""The composition root, run in-process over the fake store: start-up order, shutdown order, seams."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from desktop_chat.app import Options, load_settings, open_store, run
from desktop_chat.config import LOCAL_SUPABASE_URL, Settings
from desktop_chat.dal.api import ChatStoreAPI
from desktop_chat.doctor import run_doctor
from desktop_chat.ui.main_window import MainWindow
from devstack.procs import free_port
from tests.gui.fakes import FakeChatStore, populated_store


class SlowClosingStore(FakeChatStore):
    """Takes a while to flush its outbox, like the real one might."""

    async def close(self) -> None:
        await asyncio.sleep(0.05)
        await super().close()


def factory_of(stores: dict[str, FakeChatStore]) -> Any:
    @asynccontextmanager
    async def factory(settings: Settings, instance: str) -> AsyncIterator[ChatStoreAPI]:
        try:
            yield stores[instance]
        finally:
            await stores[instance].close()  # whoever opens a data layer closes it

    return factory


@pytest.fixture
def app_settings(settings: Settings) -> Settings:
    return settings


def messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == "desktop_chat.app"]


def test_smoke_test_builds_in_order_paints_and_shuts_down_in_reverse(
    qapp: QApplication, caplog: pytest.LogCaptureFixture, app_settings: Settings
) -> None:
    caplog.set_level(logging.INFO, logger="desktop_chat")
    store, _ = populated_store()
    code = run(Options(smoke_test=True), store_factory=factory_of({"default": store}), settings=app_settings)
    assert code == 0
    steps = messages(caplog)
    order = [
        "desktop-chat",
        "Qt PySide6 ready",
        "Building the data layer (default)",
        "Bridge ready (default)",
        "Restoring the session (default)",
        "Smoke test: painted MainWindow",
        "Shutting down: closing windows",
        "Closing the data layer",
        "Shut down",
    ]
    positions = [next(i for i, step in enumerate(steps) if step.startswith(prefix)) for prefix in order]
    assert positions == sorted(positions), steps
    assert store.closed


def test_quitting_waits_for_the_store_to_close_before_the_loop_stops(
    qapp: QApplication, app_settings: Settings
) -> None:
    store = SlowClosingStore()
    alice = store.add_user("alice@example.com", "Alice")
    store.saved_session = alice

    def close_main_window() -> None:
        for widget in QApplication.topLevelWidgets():
            if isinstance(widget, MainWindow) and widget.isVisible():
                widget.close()  # the user closes the window: the app quits
                poller.stop()

    poller = QTimer()
    poller.setInterval(20)
    poller.timeout.connect(close_main_window)
    poller.start()
    code = run(Options(), store_factory=factory_of({"default": store}), settings=app_settings)
    assert code == 0
    assert store.closed  # set at the end of close(): the loop ran until it finished


def test_the_real_data_layer_starts_and_the_sign_in_window_paints(
    qapp: QApplication, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    # The real open_store: keyring, cache (its own redis-server), outbox, client; no saved session and
    # no server to talk to, so the app asks the user to sign in, and shuts everything down again.
    caplog.set_level(logging.INFO, logger="desktop_chat")
    settings = Settings(
        supabase_url=f"http://127.0.0.1:{free_port()}",
        config_dir=tmp_path / "config",
        data_dir=tmp_path / "data",
        runtime_dir=tmp_path / "run",
        cache_dir=tmp_path / "cache",
        log_dir=tmp_path / "log",
    )
    code = run(Options(smoke_test=True), store_factory=open_store, settings=settings)
    assert code == 0
    steps = messages(caplog)
    assert "Bridge ready (default)" in steps
    assert any(step.startswith("Smoke test: painted SignInWindow") for step in steps)
    assert (tmp_path / "data" / "outbox.sqlite3").exists()
    assert not list((tmp_path / "run").glob("**/*.sock"))  # the cache's redis-server was stopped


def test_demo_opens_a_second_session_signed_in_as_bob(
    qapp: QApplication, caplog: pytest.LogCaptureFixture, app_settings: Settings
) -> None:
    caplog.set_level(logging.INFO, logger="desktop_chat")
    alice_store, _ = populated_store()
    bob_store, _ = populated_store(signed_in=False)
    code = run(
        Options(smoke_test=True, demo=True),
        store_factory=factory_of({"default": alice_store, "bob": bob_store}),
        settings=app_settings,
    )
    assert code == 0
    assert "Building the data layer (bob)" in messages(caplog)
    assert ("sign_in", ("bob@example.com",)) in bob_store.calls
    assert alice_store.closed and bob_store.closed


def test_dev_stack_pins_the_local_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DESKTOP_CHAT_SUPABASE_URL", "https://elsewhere.supabase.co")
    assert load_settings(Options(dev_stack=True)).supabase_url == LOCAL_SUPABASE_URL
    assert load_settings(Options()).supabase_url == "https://elsewhere.supabase.co"


def test_doctor_prints_a_report_and_exits_by_its_result(app_settings: Settings) -> None:
    async def checks(_settings: Settings) -> dict[str, Any]:
        return {
            "ok": False,
            "checks": [
                {"name": "supabase", "ok": True, "detail": "reachable in 12 ms"},
                {"name": "redis", "ok": False, "detail": "connection refused"},
            ],
            "version": "0.1.0",
        }

    out = io.StringIO()
    assert run_doctor(as_json=False, settings=app_settings, checks=checks, out=out) == 1
    assert out.getvalue().splitlines() == [
        "ok   supabase: reachable in 12 ms",
        "FAIL redis: connection refused",
        "     version: 0.1.0",
    ]
    out = io.StringIO()
    run_doctor(as_json=True, settings=app_settings, checks=checks, out=out)
    assert json.loads(out.getvalue())["checks"][1]["name"] == "redis"
