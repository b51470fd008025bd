"""Desktop notifications for messages the user is not looking at."""

from __future__ import annotations

import logging

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QSystemTrayIcon

from desktop_chat.models import ChatId, Message, UserId
from desktop_chat.ui.text import one_line

PREVIEW_CHARS = 120
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


class Notifier(QObject):
    """Shows notifications through the system tray, where there is one.

    Args:
        icon: The app icon for the tray.
        enabled: The user's setting.
        parent: Qt parent.

    Signals:
        notified(str, str): A notification was raised (title, body), whether or not a tray could show it.
        activated(): The user clicked the tray icon or a notification.
    """

    notified = Signal(str, str)
    activated = Signal()

    def __init__(self, icon: QIcon, *, enabled: bool = True, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.enabled = enabled
        self._icon = icon
        self._tray: QSystemTrayIcon | None = None
        # Without a tray (offscreen, some Wayland desktops) a QSystemTrayIcon only produces warnings.
        if QSystemTrayIcon.isSystemTrayAvailable() and not icon.isNull():
            self._tray = QSystemTrayIcon(icon, self)
            self._tray.setToolTip("desktop-chat")
            self._tray.activated.connect(lambda _reason: self.activated.emit())
            self._tray.messageClicked.connect(self.activated)
            self._tray.show()
        else:
            _log.info("No system tray: notifications are only counted in the window title")

    @property
    def has_tray(self) -> bool:
        return self._tray is not None

    def set_unread(self, count: int) -> None:
        if self._tray is not None:
            self._tray.setToolTip(f"desktop-chat — {count} unread" if count else "desktop-chat")

    def notify(self, title: str, body: str) -> None:
        if not self.enabled:
            return
        if self._tray is not None and self._tray.supportsMessages():
            self._tray.showMessage(title, body, self._icon, 6000)
        self.notified.emit(title, body)

    def hide(self) -> None:
        if self._tray is not None:
            self._tray.hide()
