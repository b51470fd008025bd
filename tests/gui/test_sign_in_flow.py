"""Sign-in window and session flow: errors in words, busy state, restore, sign-up, sign-out, expiry."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from desktop_chat.errors import BackendUnavailable, EnvironmentFailure
from desktop_chat.ui.bridge import StoreBridge
from desktop_chat.ui.main_window import MainWindow
from desktop_chat.ui.sign_in import SignInWindow
from desktop_chat.ui.sign_in_flow import SignInFlow
from tests.gui.fakes import FakeChatStore

FlowFactory = Callable[..., SignInFlow]


@pytest.fixture
def signed_out(store: FakeChatStore) -> FakeChatStore:
    store.saved_session = None
    store._current = None
    return store


def sign_in_window(qtbot: QtBot, flow: SignInFlow) -> SignInWindow:
    flow.start()
    qtbot.waitUntil(lambda: flow.sign_in_window is not None and flow.sign_in_window.isVisible())
    window = flow.sign_in_window
    assert window is not None
    return window


def fill(window: SignInWindow, email: str, password: str) -> None:
    window.email_edit.setText(email)
    window.password_edit.setText(password)


def test_a_saved_session_skips_sign_in(qtbot: QtBot, flow_factory: FlowFactory, store: FakeChatStore) -> None:
    flow = flow_factory()
    flow.start()
    qtbot.waitUntil(lambda: flow.main_window is not None)
    assert flow.sign_in_window is None
    assert "refresh_chats" in store.call_names()


def test_without_a_session_the_sign_in_window_shows(
    qtbot: QtBot, flow_factory: FlowFactory, signed_out: FakeChatStore
) -> None:
    window = sign_in_window(qtbot, flow_factory())
    assert window.submit_button.text() == "Sign in"
    assert window.server_edit.text() == "http://127.0.0.1:54321"


def test_wrong_password_is_said_in_words_and_the_form_comes_back(
    qtbot: QtBot, flow_factory: FlowFactory, signed_out: FakeChatStore
) -> None:
    flow = flow_factory()
    window = sign_in_window(qtbot, flow)
    fill(window, "alice@example.com", "nope")
    qtbot.mouseClick(window.submit_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.error_label.isVisible())
    assert window.error_label.text() == "Wrong email or password."
    assert not window.busy
    assert window.submit_button.isEnabled()
    assert flow.main_window is None


def test_an_unreachable_server_is_named(qtbot: QtBot, flow_factory: FlowFactory, signed_out: FakeChatStore) -> None:
    window = sign_in_window(qtbot, flow_factory())
    signed_out.fail_next("sign_in", BackendUnavailable("connection refused"))
    fill(window, "alice@example.com", "password123")
    window.submit()
    qtbot.waitUntil(lambda: window.error_label.isVisible())
    assert window.error_label.text().startswith("Cannot reach the server at http://127.0.0.1:54321.")


def test_the_form_is_busy_until_the_store_answers(
    qtbot: QtBot, flow_factory: FlowFactory, signed_out: FakeChatStore
) -> None:
    flow = flow_factory()
    window = sign_in_window(qtbot, flow)
    signed_out.hold("sign_in")
    fill(window, "alice@example.com", "password123")
    qtbot.keyClick(window.password_edit, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: "sign_in" in signed_out.call_names())
    assert window.busy
    assert window.submit_button.text() == "Signing in…"
    assert not window.submit_button.isEnabled()
    assert window.email_edit.isReadOnly()  # read-only, not disabled: the cursor stays where it was
    signed_out.release("sign_in")
    qtbot.waitUntil(lambda: flow.main_window is not None)
    assert flow.sign_in_window is None


def test_missing_fields_are_caught_before_asking_the_store(
    qtbot: QtBot, flow_factory: FlowFactory, signed_out: FakeChatStore
) -> None:
    window = sign_in_window(qtbot, flow_factory())
    window.submit()
    assert window.error_label.text() == "Enter your email and password."
    window.server_edit.setText("localhost:54321")
    fill(window, "alice@example.com", "x")
    window.submit()
    assert window.error_label.text().startswith("Enter the server address")
    assert "sign_in" not in signed_out.call_names()


def test_sign_up_needs_a_display_name_and_signs_in(
    qtbot: QtBot, flow_factory: FlowFactory, signed_out: FakeChatStore
) -> None:
    flow = flow_factory()
    window = sign_in_window(qtbot, flow)
    qtbot.mouseClick(window.switch_button, Qt.MouseButton.LeftButton)
    assert window.signing_up and window.name_edit.isVisible()
    fill(window, "erin@example.com", "secret-enough")
    window.submit()
    assert window.error_label.text() == "The display name is empty."
    window.name_edit.setText("Erin")
    window.submit()
    qtbot.waitUntil(lambda: flow.main_window is not None)
    assert signed_out.current_user is not None and signed_out.current_user.display_name == "Erin"


def test_sign_up_errors_from_the_server_are_shown(
    qtbot: QtBot, flow_factory: FlowFactory, signed_out: FakeChatStore
) -> None:
    window = sign_in_window(qtbot, flow_factory())
    window.set_sign_up(True)
    fill(window, "bob@example.com", "secret-enough")
    window.name_edit.setText("Another Bob")
    window.submit()
    qtbot.waitUntil(lambda: window.error_label.isVisible())
    assert window.error_label.text() == "An account with this email address already exists."


def test_sign_out_clears_the_session_and_returns_to_sign_in(
    qtbot: QtBot, flow_factory: FlowFactory, store: FakeChatStore
) -> None:
    flow = flow_factory()
    flow.start()
    qtbot.waitUntil(lambda: flow.main_window is not None)
    main = flow.main_window
    assert isinstance(main, MainWindow)
    main.sign_out_requested.emit()
    qtbot.waitUntil(lambda: flow.sign_in_window is not None and flow.sign_in_window.isVisible())
    assert flow.main_window is None
    assert store.saved_session is None
    assert store.cache_cleared == 1


def test_an_expired_session_explains_itself_on_the_sign_in_window(
    qtbot: QtBot, flow_factory: FlowFactory, store: FakeChatStore, bridge: StoreBridge
) -> None:
    from desktop_chat.errors import Unauthorized

    flow = flow_factory()
    flow.start()
    qtbot.waitUntil(lambda: flow.main_window is not None)
    store.fail_next("refresh_chats", Unauthorized("refresh token revoked"))
    bridge.refresh_chats()
    qtbot.waitUntil(lambda: flow.sign_in_window is not None and flow.sign_in_window.isVisible())
    assert flow.sign_in_window is not None
    assert flow.sign_in_window.error_label.text() == "Your session has expired. Please sign in again."


def test_another_server_url_rebuilds_the_store_first(
    qtbot: QtBot, flow_factory: FlowFactory, signed_out: FakeChatStore
) -> None:
    switched: list[tuple[str, str]] = []

    async def switch(url: str, key: str) -> None:
        switched.append((url, key))

    flow = flow_factory(switch_server=switch)
    window = sign_in_window(qtbot, flow)
    window.server_edit.setText("https://abc.supabase.co/")
    window.key_edit.setText("sb_publishable_abcdefghijklmnopqrstuvwxyz")
    fill(window, "alice@example.com", "password123")
    window.submit()
    qtbot.waitUntil(lambda: flow.main_window is not None)
    assert switched == [("https://abc.supabase.co", "sb_publishable_abcdefghijklmnopqrstuvwxyz")]


def test_a_server_that_cannot_be_used_is_reported(
    qtbot: QtBot, flow_factory: FlowFactory, signed_out: FakeChatStore
) -> None:
    async def switch(url: str, _key: str) -> None:
        raise EnvironmentFailure(f"Cannot open the outbox for {url}.")

    flow = flow_factory(switch_server=switch)
    window = sign_in_window(qtbot, flow)
    window.server_edit.setText("https://abc.supabase.co")
    fill(window, "alice@example.com", "password123")
    window.submit()
    qtbot.waitUntil(lambda: window.error_label.isVisible())
    assert window.error_label.text() == "Cannot open the outbox for https://abc.supabase.co."
    assert not window.busy
    assert "sign_in" not in signed_out.call_names()


def test_closing_the_sign_in_window_asks_to_quit(
    qtbot: QtBot, flow_factory: FlowFactory, signed_out: FakeChatStore
) -> None:
    flow = flow_factory()
    window = sign_in_window(qtbot, flow)
    with qtbot.waitSignal(flow.quit_requested):
        window.close()
