"""Desktop notifications for messages the user is not looking at.

Where there is a freedesktop notification service (``org.freedesktop.Notifications`` on the session bus:
GNOME, KDE Plasma, Xfce, Cinnamon, MATE, dunst, mako…), a message becomes a notification of the desktop's
own, one per chat (a newer message replaces the chat's previous notification), and clicking it opens the
chat. Elsewhere (Windows, macOS, a Linux session without such a service) the tray icon's balloon shows it,
where there is a tray. Either way the window title counts what is unread.

D-Bus is spoken through ``jeepney`` (pure Python, already what the keyring uses on Linux), on the app's
asyncio loop. Not QtDBus: from Python, QtDBus marshals every integer as a 16- or 32-bit *signed* value, and
the specification's ``Notify`` takes an unsigned ``replaces_id`` (signature ``susssasa{sv}i``), which strict
services (GNOME Shell, dunst) refuse otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Hashable
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QSystemTrayIcon

from desktop_chat.models import ChatId, Message, UserId
from desktop_chat.ui.text import one_line

PREVIEW_CHARS = 120
APP_NAME = "desktop-chat"
BUS_NAME = "org.freedesktop.Notifications"
OBJECT_PATH = "/org/freedesktop/Notifications"
NOTIFY_SIGNATURE = "susssasa{sv}i"
CALL_TIMEOUT = 2.0  # seconds; a notification service that takes longer is as good as absent
_log = logging.getLogger(__name__)


def should_notify(message: Message, *, own_user: UserId | None, open_chat: ChatId | None, window_active: bool) -> bool:
    """A message deserves a notification unless it is the user's own or on screen in the active window."""
    if own_user is not None and message.sender_id == own_user:
        return False
    if message.deleted:
        return False
    return not window_active or message.chat_id != open_chat


def notification_body(sender: str | None, text: str) -> str:
    preview = one_line(text)
    if len(preview) > PREVIEW_CHARS:
        preview = preview[: PREVIEW_CHARS - 1].rstrip() + "…"
    return f"{sender}: {preview}" if sender else preview


def _escape(text: str) -> str:
    """Bodies may carry markup (``body-markup``); a message's own ``<`` and ``&`` must stay text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class DesktopNotifications:
    """The freedesktop notification service on the session bus, through one connection kept open.

    Args:
        on_clicked: Called with the key of a notification the user clicked.
    """

    def __init__(self, on_clicked: Any) -> None:
        self._on_clicked = on_clicked
        self._router: Any = None
        self._context: Any = None  # the router's async context manager, exited by close()
        self._listener: asyncio.Task[None] | None = None
        self._ids: dict[Hashable, int] = {}  # key (a chat) → the id of its notification on screen
        self._keys: dict[int, Hashable] = {}
        self._lock = asyncio.Lock()
        self._markup = False
        self.unavailable = ""  # why notifications cannot go this way (empty: they can, or not tried yet)

    @staticmethod
    def session_bus() -> str | None:
        """The session bus's address (Linux and the BSDs): the environment's, else systemd's usual socket."""
        if not sys.platform.startswith(("linux", "freebsd", "openbsd", "netbsd")):
            return None
        address = os.environ.get("DBUS_SESSION_BUS_ADDRESS")
        if address:
            return address
        runtime = os.environ.get("XDG_RUNTIME_DIR")
        if runtime and os.path.exists(os.path.join(runtime, "bus")):
            return f"unix:path={os.path.join(runtime, 'bus')}"
        return None

    async def notify(self, key: Hashable, title: str, body: str) -> bool:
        """Show (or replace ``key``'s) notification; False when the service cannot be reached."""
        async with self._lock:
            try:
                return await asyncio.wait_for(self._notify(key, title, body), CALL_TIMEOUT)
            except (ImportError, OSError, TimeoutError, KeyError, ValueError, RuntimeError) as error:
                # No bus, no service, a service that refused or did not answer: say it once, use the tray.
                self.unavailable = f"{type(error).__name__}: {error}"
                _log.info("No desktop notification service (%s); using the tray", self.unavailable)
                await self.close()
                return False

    async def _notify(self, key: Hashable, title: str, body: str) -> bool:
        from jeepney import DBusAddress, MessageType, new_method_call

        router = await self._connect()
        address = DBusAddress(OBJECT_PATH, bus_name=BUS_NAME, interface="org.freedesktop.Notifications")
        hints = {
            "desktop-entry": ("s", APP_NAME),  # the service finds the app's name and icon through it
            "category": ("s", "im.received"),
            "urgency": ("y", 1),
        }
        replaces = self._ids.get(key, 0)
        call = new_method_call(
            address,
            "Notify",
            NOTIFY_SIGNATURE,
            (
                APP_NAME,
                replaces,
                APP_NAME,
                title,
                _escape(body) if self._markup else body,
                ["default", "Open"],
                hints,
                -1,
            ),
        )
        reply = await router.send_and_get_reply(call)
        if reply.header.message_type is MessageType.error:
            raise RuntimeError(str(reply.body[0]) if reply.body else "the notification service refused")
        (number,) = reply.body
        self._keys.pop(replaces, None)
        self._ids[key] = number
        self._keys[number] = key
        return True

    async def _connect(self) -> Any:
        if self._router is not None:
            return self._router
        from jeepney import DBusAddress, MatchRule, MessageType, new_method_call
        from jeepney.bus_messages import message_bus
        from jeepney.io.asyncio import open_dbus_router

        bus = self.session_bus()
        if bus is None:
            raise RuntimeError("no session bus")
        context = open_dbus_router(bus=bus)
        router = await context.__aenter__()
        self._context = context
        self._router = router
        rule = MatchRule(type="signal", interface="org.freedesktop.Notifications", path=OBJECT_PATH)
        queue: asyncio.Queue[Any] = asyncio.Queue()
        router.filter(rule, queue=queue)
        await router.send_and_get_reply(message_bus.AddMatch(rule))
        self._listener = asyncio.get_running_loop().create_task(self._listen(queue), name="notification-signals")
        # Also finds out whether anyone serves notifications at all (an error reply when no one does).
        address = DBusAddress(OBJECT_PATH, bus_name=BUS_NAME, interface="org.freedesktop.Notifications")
        reply = await router.send_and_get_reply(new_method_call(address, "GetCapabilities"))
        if reply.header.message_type is MessageType.error:
            raise RuntimeError(str(reply.body[0]) if reply.body else "no notification service")
        self._markup = "body-markup" in reply.body[0]
        return router

    async def _listen(self, queue: asyncio.Queue[Any]) -> None:
        from jeepney import HeaderFields

        while True:
            signal = await queue.get()
            member = signal.header.fields.get(HeaderFields.member)
            number = signal.body[0] if signal.body else None
            if member == "ActionInvoked" and number in self._keys:
                self._on_clicked(self._keys[number])
            elif member == "NotificationClosed" and number in self._keys:
                self._ids.pop(self._keys.pop(number), None)

    async def close(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
        context, self._context, self._router = self._context, None, None
        if context is not None:
            with contextlib.suppress(Exception):  # the connection may already be gone
                await context.__aexit__(None, None, None)
        self._ids.clear()
        self._keys.clear()


class Notifier(QObject):
    """Shows notifications through the desktop's notification service, else the system tray.

    Args:
        icon: The app icon for the tray.
        enabled: The user's setting.
        use_desktop_service: Try the freedesktop service first (where there is a session bus).
        parent: Qt parent.

    Signals:
        notified(str, str): A notification was raised (title, body), whichever way it could be shown.
        delivered(str): How the last one went out: "desktop" (the notification service), "tray", or "none".
        activated(object): The user clicked a notification (its key, e.g. a ``ChatId``) or the tray icon
            (None).
    """

    notified = Signal(str, str)
    delivered = Signal(str)
    activated = Signal(object)

    def __init__(
        self,
        icon: QIcon,
        *,
        enabled: bool = True,
        use_desktop_service: bool = True,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.enabled = enabled
        self._icon = icon
        self._tray: QSystemTrayIcon | None = None
        self._desktop: DesktopNotifications | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._last_key: Hashable | None = None
        if use_desktop_service and DesktopNotifications.session_bus() is not None:
            self._desktop = DesktopNotifications(self.activated.emit)
        # Without a tray (offscreen, some Wayland desktops) a QSystemTrayIcon only produces warnings.
        if QSystemTrayIcon.isSystemTrayAvailable() and not icon.isNull():
            self._tray = QSystemTrayIcon(icon, self)
            self._tray.setToolTip(APP_NAME)
            self._tray.activated.connect(lambda _reason: self.activated.emit(None))
            self._tray.messageClicked.connect(lambda: self.activated.emit(self._last_key))
            self._tray.show()
        elif self._desktop is None:
            _log.info("No notification service and no system tray: new messages are counted in the window title")

    @property
    def has_tray(self) -> bool:
        return self._tray is not None

    @property
    def uses_desktop_service(self) -> bool:
        """Notifications go to the desktop's service (until it fails once)."""
        return self._desktop is not None and not self._desktop.unavailable

    def set_unread(self, count: int) -> None:
        if self._tray is not None:
            self._tray.setToolTip(f"{APP_NAME} — {count} unread" if count else APP_NAME)

    def notify(self, title: str, body: str, key: Hashable | None = None) -> None:
        """Raise a notification; one per ``key`` (a chat) is on screen at a time."""
        if not self.enabled:
            return
        self._last_key = key
        self.notified.emit(title, body)
        if self.uses_desktop_service:
            task = asyncio.get_running_loop().create_task(self._notify_desktop(key, title, body))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return
        self._notify_tray(title, body)

    async def _notify_desktop(self, key: Hashable | None, title: str, body: str) -> None:
        assert self._desktop is not None
        if await self._desktop.notify(key if key is not None else title, title, body):
            self.delivered.emit("desktop")
        else:
            self._notify_tray(title, body)

    def _notify_tray(self, title: str, body: str) -> None:
        if self._tray is not None and self._tray.supportsMessages():
            self._tray.showMessage(title, body, self._icon, 6000)
            self.delivered.emit("tray")
        else:
            self.delivered.emit("none")

    def hide(self) -> None:
        if self._tray is not None:
            self._tray.hide()

    async def close(self) -> None:
        """Close the connection to the notification service (at shutdown)."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._desktop is not None:
            await self._desktop.close()
