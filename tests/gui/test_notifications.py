"""Which messages deserve a notification, what it says, and that it reaches the desktop's notification service
(a real ``dbus-daemon`` and a notification service of the test's own), or else the tray."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
from PySide6.QtGui import QIcon
from pytestqt.qtbot import QtBot

from desktop_chat.models import ChatId, Message, MessageId, UserId
from desktop_chat.ui.notifications import PREVIEW_CHARS, Notifier, notification_body, should_notify
from desktop_chat.ui.sign_in_flow import SignInFlow
from tests.gui.conftest import NotificationService
from tests.gui.fakes import Cast, FakeChatStore, stable_id

ME = UserId(stable_id("me"))
THEM = UserId(stable_id("them"))
OPEN = ChatId(stable_id("open"))
OTHER = ChatId(stable_id("other"))


def message(sender: UserId, session: ChatId, *, deleted: bool = False) -> Message:
    at = datetime(2026, 11, 26, tzinfo=UTC)
    return Message(
        id=MessageId(stable_id("n", sender, session)),
        chat_id=session,
        sender_id=sender,
        content="hello",
        created_at=at,
        deleted_at=at if deleted else None,
        seq=1,
        rev=1,
    )


@pytest.mark.parametrize(
    ("sender", "session", "active", "deleted", "expected"),
    [
        (THEM, OTHER, True, False, True),  # another chat
        (THEM, OPEN, True, False, False),  # on screen
        (THEM, OPEN, False, False, True),  # window in the background
        (ME, OTHER, False, False, False),  # my own, from another device
        (THEM, OTHER, False, True, False),  # already deleted
    ],
)
def test_should_notify(sender: UserId, session: ChatId, active: bool, deleted: bool, expected: bool) -> None:
    assert (
        should_notify(message(sender, session, deleted=deleted), own_user=ME, open_chat=OPEN, window_active=active)
        is expected
    )


def test_the_body_is_one_short_line() -> None:
    assert notification_body("Bob", "a\nb") == "Bob: a b"
    assert notification_body(None, "x") == "x"
    long = notification_body(None, "word " * 100)
    assert len(long) == PREVIEW_CHARS and long.endswith("…")


# --- the desktop's notification service, over a real session bus -----------------------------------------
@pytest.fixture
def desktop_notifier(qtbot: QtBot, qloop: asyncio.AbstractEventLoop, session_bus: str) -> Iterator[Notifier]:
    notifier = Notifier(QIcon(), enabled=True)
    yield notifier
    closing = qloop.create_task(notifier.close())
    qtbot.waitUntil(closing.done)
    notifier.deleteLater()


def test_a_notification_goes_to_the_desktops_notification_service(
    qtbot: QtBot, notification_service: NotificationService, desktop_notifier: Notifier
) -> None:
    assert desktop_notifier.uses_desktop_service
    with qtbot.waitSignal(desktop_notifier.delivered) as delivered:
        desktop_notifier.notify("Team", "Carol Diaz: lunch <at> 12 & then?", key=OPEN)
    assert delivered.args == ["desktop"]
    (shown,) = notification_service.received()
    assert shown["app_name"] == "desktop-chat" and shown["app_icon"] == "desktop-chat"
    assert (shown["summary"], shown["body"]) == ("Team", "Carol Diaz: lunch <at> 12 & then?")  # no markup asked
    assert shown["actions"] == ["default", "Open"]
    assert shown["hints"] == {"desktop-entry": "desktop-chat", "category": "im.received", "urgency": 1}
    # The chat's next message replaces its notification instead of piling up another one.
    with qtbot.waitSignal(desktop_notifier.delivered):
        desktop_notifier.notify("Team", "Carol Diaz: or 1?", key=OPEN)
    with qtbot.waitSignal(desktop_notifier.delivered):
        desktop_notifier.notify("Bob", "Bob Chen: hi", key=OTHER)
    first, again, other = notification_service.received()
    assert again["replaces_id"] == first["id"] and other["replaces_id"] == 0 and other["id"] != first["id"]


def test_clicking_a_notification_says_which_chat_it_was(
    qtbot: QtBot, notification_service: NotificationService, desktop_notifier: Notifier
) -> None:
    with qtbot.waitSignal(desktop_notifier.delivered):
        desktop_notifier.notify("Bob", "Bob Chen: hi", key=OTHER)
    (shown,) = notification_service.received()
    with qtbot.waitSignal(desktop_notifier.activated, timeout=10_000) as clicked:
        notification_service.click(shown["id"])
    assert clicked.args == [OTHER]


def test_without_a_notification_service_the_tray_is_used(
    qtbot: QtBot, session_bus: str, desktop_notifier: Notifier
) -> None:
    with qtbot.waitSignal(desktop_notifier.delivered) as delivered:
        desktop_notifier.notify("Team", "Carol Diaz: hello", key=OPEN)
    # Offscreen there is no tray either: the title's unread count is all that is left.
    assert delivered.args == ["tray" if desktop_notifier.has_tray else "none"]
    assert not desktop_notifier.uses_desktop_service  # not tried again for every message


def test_a_message_in_the_background_reaches_the_desktop_and_its_click_opens_the_chat(
    qtbot: QtBot,
    notification_service: NotificationService,
    desktop_notifier: Notifier,
    flow_factory: Callable[..., SignInFlow],
    store: FakeChatStore,
    cast: Cast,
) -> None:
    flow = flow_factory(notifier=desktop_notifier, is_active=lambda: False)
    flow.start()
    qtbot.waitUntil(lambda: flow.main_window is not None and flow.main_window.chats.rowCount() > 0)
    main = flow.main_window
    assert main is not None
    chat = store.chat_id("Bob")
    with qtbot.waitSignal(desktop_notifier.delivered):
        store.receive(chat, cast.bob, "are you there?")
    (shown,) = notification_service.received()
    assert shown["summary"] == "Bob" and shown["body"].endswith("are you there?")
    with qtbot.waitSignal(desktop_notifier.activated, timeout=10_000):
        notification_service.click(shown["id"])
    qtbot.waitUntil(lambda: main.chat_panel.chat_id == chat)
