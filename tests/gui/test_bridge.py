"""StoreBridge: store calls become signals; expected failures become sentences; bugs are not swallowed."""

from __future__ import annotations

import pytest
from pytestqt.qtbot import QtBot

from desktop_chat.errors import (
    BackendUnavailable,
    Bug,
    InvalidInput,
    LocalStorageError,
    NotSignedIn,
    Rejected,
    Unauthorized,
)
from desktop_chat.ui.bridge import Operation, StoreBridge, describe_error
from tests.gui.fakes import Cast, FakeChatStore

URL = "http://127.0.0.1:54321"


@pytest.mark.parametrize(
    ("error", "operation", "expected"),
    [
        (Unauthorized("Invalid login credentials"), Operation.SIGN_IN, "Wrong email or password."),
        (Unauthorized("jwt expired"), Operation.SEND, "Your session has expired. Please sign in again."),
        (
            BackendUnavailable("connect timeout"),
            Operation.SIGN_IN,
            f"Cannot reach the server at {URL}. Check your connection and try again.",
        ),
        (InvalidInput("The message is empty."), Operation.SEND, "The message is empty."),
        (
            Rejected("Only the chat's owners can rename it."),
            Operation.RENAME_CHAT,
            "Only the chat's owners can rename it.",
        ),
        (NotSignedIn("no session"), Operation.REFRESH_CHATS, "You are signed out. Please sign in again."),
        (LocalStorageError("The disk is full."), Operation.SEND, "The disk is full."),
    ],
)
def test_errors_are_described_in_plain_words(error: Exception, operation: Operation, expected: str) -> None:
    assert describe_error(error, operation, URL) == expected  # type: ignore[arg-type]


def test_an_operation_reports_started_result_and_finished_in_order(
    qtbot: QtBot, bridge: StoreBridge, store: FakeChatStore
) -> None:
    events: list[str] = []
    bridge.started.connect(lambda operation, _context: events.append(f"started {operation}"))
    bridge.chat_created.connect(lambda _session: events.append("chat_created"))
    bridge.finished.connect(lambda operation, _context: events.append(f"finished {operation}"))
    with qtbot.waitSignal(bridge.finished):
        bridge.create_chat("Planning", ["bob@example.com"])
    assert events == ["started create_chat", "chat_created", "finished create_chat"]


def test_an_expected_failure_becomes_failed_with_a_sentence_and_no_result(
    qtbot: QtBot, bridge: StoreBridge, store: FakeChatStore
) -> None:
    created: list[object] = []
    bridge.chat_created.connect(created.append)
    with qtbot.waitSignal(bridge.failed) as failed:
        bridge.create_chat("Planning", ["nobody@example.com"])
    assert failed.args == [
        "create_chat",
        "There is no account for nobody@example.com.",
        None,
    ]
    assert created == []


def test_a_failed_send_gives_the_text_back_in_the_context(
    qtbot: QtBot, bridge: StoreBridge, store: FakeChatStore
) -> None:
    team = store.chat_id("Team")
    store.fail_next("send", LocalStorageError("The outbox cannot be written: the disk is full."))
    with qtbot.waitSignal(bridge.failed) as failed:
        bridge.send(team, "hello")
    assert failed.args == ["send", "The outbox cannot be written: the disk is full.", (team, "hello")]


def test_an_expired_session_signs_out_with_a_reason(qtbot: QtBot, bridge: StoreBridge, store: FakeChatStore) -> None:
    store.fail_next("refresh_chats", Unauthorized("refresh token revoked"))
    reasons: list[str] = []
    bridge.session_expired.connect(reasons.append)
    with qtbot.waitSignal(bridge.signed_out):
        bridge.refresh_chats()
    assert reasons == ["Your session has expired. Please sign in again."]


def test_wrong_credentials_do_not_sign_out(qtbot: QtBot, bridge: StoreBridge, store: FakeChatStore) -> None:
    signed_out: list[object] = []
    bridge.signed_out.connect(lambda: signed_out.append(True))
    with qtbot.waitSignal(bridge.failed) as failed:
        bridge.sign_in("alice@example.com", "wrong")
    assert failed.args[1] == "Wrong email or password."
    assert signed_out == []


def test_a_bug_is_not_turned_into_a_message(qtbot: QtBot, bridge: StoreBridge, store: FakeChatStore) -> None:
    store.fail_next("refresh_chats", Bug("reply did not match the contract"))
    failed: list[object] = []
    bridge.failed.connect(lambda *args: failed.append(args))
    with qtbot.captureExceptions() as exceptions:
        with qtbot.waitSignal(bridge.finished):
            bridge.refresh_chats()
        qtbot.waitUntil(lambda: len(exceptions) == 1)
    assert isinstance(exceptions[0][1], Bug)
    assert failed == []


def test_store_listeners_arrive_as_signals(qtbot: QtBot, bridge: StoreBridge, store: FakeChatStore, cast: Cast) -> None:
    team = store.chat_id("Team")
    with qtbot.waitSignal(bridge.typing_changed) as typing:
        store.someone_typing(team, [cast.bob])
    assert typing.args == [team, frozenset({cast.bob.id})]
    with qtbot.waitSignal(bridge.incoming_received) as incoming:
        message = store.receive(team, cast.bob, "hi")
    assert incoming.args == [message]


def test_detach_unsubscribes_and_leaves_closing_the_store_to_its_owner(
    qtbot: QtBot, bridge: StoreBridge, store: FakeChatStore, cast: Cast
) -> None:
    typing: list[object] = []
    bridge.typing_changed.connect(lambda *args: typing.append(args))
    bridge.detach()
    assert not store.closed  # the composition root built it, and closes it
    store.someone_typing(store.chat_id("Team"), [cast.bob])
    assert typing == []
