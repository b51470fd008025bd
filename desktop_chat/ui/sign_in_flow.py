"""``SignInFlow``: which window a user sees, following the session (restored, signed in, signed out)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from uuid import UUID

from PySide6.QtCore import QEvent, QObject, QTimer, Signal
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QWidget

from desktop_chat.config import Settings, env_overrides, save_user_settings, server_chosen
from desktop_chat.errors import DesktopChatError, LocalStorageError
from desktop_chat.models import ChatId, Profile
from desktop_chat.ui.bridge import SERVER_PROBLEM, Operation, StoreBridge, async_slot
from desktop_chat.ui.dialogs import Confirm, ask_confirmation
from desktop_chat.ui.main_window import MainWindow
from desktop_chat.ui.notifications import Notifier
from desktop_chat.ui.sign_in import SignInWindow
from desktop_chat.ui.theme import Theme

_log = logging.getLogger(__name__)
SwitchServer = Callable[[str, str], Awaitable[None]]  # (server URL, project key)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class SignInFlow(QObject):
    """Shows the sign-in window until someone is signed in, then the main window; and back on sign-out.

    Args:
        bridge: The data layer.
        settings: The running settings.
        theme: The app's colours.
        notifier: Where notifications go.
        icon: The app icon.
        switch_server: Rebuilds the data layer for another server (URL and project key; raises
            ``DesktopChatError``); None when that is not possible.
        clock: "Now" (for tests and screenshots).
        confirm: Asks before destructive actions (a seam for tests).
        is_active: Whether the main window is in front (a seam for tests).
        parent: Qt parent.

    Signals:
        quit_requested(): The user closed the last window of this session, or chose Quit.
        window_shown(object): A window (sign-in or main) is now shown.
    """

    quit_requested = Signal()
    window_shown = Signal(object)

    def __init__(
        self,
        bridge: StoreBridge,
        *,
        settings: Settings,
        theme: Theme,
        notifier: Notifier,
        icon: QIcon,
        switch_server: SwitchServer | None = None,
        clock: Callable[[], datetime] = _utc_now,
        confirm: Confirm = ask_confirmation,
        is_active: Callable[[], bool] | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._bridge = bridge
        self._settings = settings
        self._theme = theme
        self._notifier = notifier
        self._icon = icon
        self._switch_server = switch_server
        self._clock = clock
        self._confirm = confirm
        self._is_active = is_active
        self._sign_in: SignInWindow | None = None
        self._main: MainWindow | None = None
        self._expired_message = ""
        self._startup_problem = ""
        self._fallback_credentials: tuple[str, str] | None = None
        self._server = (bridge.server_url, settings.supabase_anon_key.get_secret_value())
        self._list_painted: _FirstPaint | None = None
        self._typed_email: str | None = None  # who is signing in through the form (remembered once in)
        self._remembered_email: str | None = None
        bridge.session_checked.connect(self._on_session_checked)
        bridge.signed_in.connect(self._on_signed_in)
        bridge.signed_out.connect(self._on_signed_out)
        bridge.session_expired.connect(self._on_session_expired)
        bridge.failed.connect(self._on_failed)
        bridge.finished.connect(self._on_finished)
        notifier.activated.connect(self._on_notification_clicked)

    # --- public --------------------------------------------------------------------------------------
    @property
    def sign_in_window(self) -> SignInWindow | None:
        return self._sign_in

    @property
    def main_window(self) -> MainWindow | None:
        return self._main

    def visible_window(self) -> QWidget | None:
        for window in (self._main, self._sign_in):
            if window is not None and window.isVisible():
                return window
        return None

    def start(self) -> None:
        """Restore the saved session if there is one, else ask the user to sign in."""
        self._bridge.restore_session()

    def show_startup_problem(self, text: str) -> None:
        """The data layer could not be started: show why, where the user would sign in."""
        self._startup_problem = text
        window = self._show_sign_in()
        window.show_error(text)
        window.submit_button.setEnabled(False)

    def sign_in_if_no_session(self, email: str, password: str) -> None:
        """Once the saved session has been checked: sign in with these if there was none (``--dev-stack``)."""
        self._fallback_credentials = (email, password)

    @async_slot(str, str)
    async def sign_in_automatically(self, email: str, password: str) -> None:
        """Sign in without the form (the demo's second window)."""
        window = self._show_sign_in()
        window.prefill(email)
        window.set_busy(True)
        await self._bridge.sign_in(email, password)

    def close_windows(self) -> None:
        """Close every window of this session without asking anything (shutdown)."""
        if self._main is not None:
            self._main.close_for_sign_out()
            self._main.deleteLater()
            self._main = None
        if self._sign_in is not None:
            self._sign_in.closed.disconnect(self.quit_requested)
            self._sign_in.close()
            self._sign_in.deleteLater()
            self._sign_in = None

    # --- sign-in window ------------------------------------------------------------------------------
    def _show_sign_in(self) -> SignInWindow:
        if self._sign_in is None:
            locked = env_overrides()
            url, key = self._server
            self._sign_in = SignInWindow(
                url,
                project_key=key,
                ask_for_server=not server_chosen(self._settings) and "supabase_url" not in locked,
                server_locked="supabase_url" in locked,
                returning=self._last_email() is not None,
                icon=self._icon,
            )
            if self._last_email():
                self._sign_in.prefill(self._last_email() or "")
            self._sign_in.setWindowIcon(self._icon)
            self._sign_in.sign_in_requested.connect(self._sign_in_at)
            self._sign_in.sign_up_requested.connect(self._sign_up_at)
            self._sign_in.closed.connect(self.quit_requested)
        self._sign_in.show()
        self._sign_in.raise_()
        self.window_shown.emit(self._sign_in)
        self._painted_soon()
        return self._sign_in

    def _painted_soon(self) -> None:
        """Tell the data layer once the window just shown has painted: the server client, held back for the
        first frame, is built then (a zero timer runs after the paint events the show posted)."""
        QTimer.singleShot(0, self._bridge.first_frame_painted)

    def _after_list_painted(self) -> None:
        """The chat list's first rows are in: tell the data layer once the list has painted them (its next
        paint event), so that building the server client cannot come between them and the screen."""
        main = self._main
        if main is None or self._list_painted is not None:
            return
        viewport = main.chat_list.list_view.viewport()
        if not viewport.isVisible():  # no paint will come (minimized): nothing to wait for
            self._painted_soon()
            return
        self._list_painted = _FirstPaint(viewport, self._painted_soon)
        viewport.update()

    @async_slot(str, str, str, str)
    async def _sign_in_at(self, url: str, key: str, email: str, password: str) -> None:
        if await self._use_server(url, key):
            self._typed_email = email
            await self._bridge.sign_in(email, password)

    @async_slot(str, str, str, str, str)
    async def _sign_up_at(self, url: str, key: str, email: str, password: str, display_name: str) -> None:
        if await self._use_server(url, key):
            self._typed_email = email
            await self._bridge.sign_up(email, password, display_name)

    async def _use_server(self, url: str, key: str) -> bool:
        if (url, key) == self._server:
            return True
        window = self._sign_in
        if self._switch_server is None:
            if window is not None:
                window.show_error("This build cannot switch servers; set DESKTOP_CHAT_SUPABASE_URL instead.")
                window.set_busy(False)
            return False
        try:
            await self._switch_server(url, key)
        except DesktopChatError as error:
            if window is not None:
                window.show_error(error.message, about_server=True)
                window.set_busy(False)
            return False
        self._server = (url, key)
        return True

    def _remember(self) -> None:
        """After a sign-in through the form: the server and who signed in, for the next start."""
        email, self._typed_email = self._typed_email, None
        if email is None:
            return
        url, key = self._server
        locked = env_overrides()
        values = {"last_email": email, "supabase_url": url, "supabase_anon_key": key}
        try:
            save_user_settings(self._settings.config_dir, {k: v for k, v in values.items() if k not in locked})
        except LocalStorageError as error:
            _log.warning("Could not remember the server and email: %s", error.message)
        self._remembered_email = email

    def _last_email(self) -> str | None:
        return self._remembered_email or self._settings.last_email

    def _on_failed(self, operation: str, message: str, context: object) -> None:
        about_server = context == SERVER_PROBLEM
        if operation in (Operation.SIGN_IN.value, Operation.SIGN_UP.value) and self._sign_in is not None:
            self._typed_email = None
            self._sign_in.show_error(message, about_server=about_server)
        if operation == Operation.RESTORE_SESSION.value:
            self._show_sign_in().show_error(message, about_server=about_server)
        if operation == Operation.REFRESH_CHATS.value:
            self._after_list_painted()

    def _on_finished(self, operation: str, _context: object) -> None:
        if operation == Operation.REFRESH_CHATS.value:
            self._after_list_painted()  # the main window's chat list is in (the first frame after a restore)
        if operation in (Operation.SIGN_IN.value, Operation.SIGN_UP.value) and self._sign_in is not None:
            self._sign_in.set_busy(False)

    # --- session -------------------------------------------------------------------------------------
    def _on_session_checked(self, profile: Profile | None) -> None:
        if profile is None:
            credentials, self._fallback_credentials = self._fallback_credentials, None
            if credentials is not None:
                self.sign_in_automatically(*credentials)
            else:
                self._show_sign_in()

    def _on_signed_in(self, profile: Profile) -> None:
        _log.info("Signed in; opening the main window")
        self._remember()
        if self._sign_in is not None:
            self._sign_in.closed.disconnect(self.quit_requested)
            self._sign_in.close()
            self._sign_in.deleteLater()
            self._sign_in = None
        if self._main is not None:
            return
        self._main = MainWindow(
            self._bridge,
            profile,
            settings=self._settings,
            theme=self._theme,
            notifier=self._notifier,
            clock=self._clock,
            confirm=self._confirm,
            is_active=self._is_active,
        )
        self._main.setWindowIcon(self._icon)
        self._main.quit_requested.connect(self.quit_requested)
        self._main.sign_out_requested.connect(self._bridge.sign_out)
        self._main.show()
        self.window_shown.emit(self._main)
        self._bridge.refresh_chats()

    def _on_notification_clicked(self, key: object) -> None:
        if self._main is not None:
            self._main.bring_forward(ChatId(key) if isinstance(key, UUID) else None)

    def _on_session_expired(self, message: str) -> None:
        self._expired_message = message

    def _on_signed_out(self) -> None:
        _log.info("Signed out; back to the sign-in window")
        if self._main is not None:
            self._main.close_for_sign_out()
            self._main.deleteLater()
            self._main = None
        self._list_painted = None
        window = self._show_sign_in()
        if self._expired_message:
            window.show_error(self._expired_message)
            self._expired_message = ""


class _FirstPaint(QObject):
    """Calls ``then`` once, after the first paint event of ``widget`` from now (an event filter that removes
    itself)."""

    def __init__(self, widget: QWidget, then: Callable[[], None]) -> None:
        super().__init__(widget)
        self._widget = widget
        self._then: Callable[[], None] | None = then
        widget.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self._widget and event.type() == QEvent.Type.Paint and self._then is not None:
            then, self._then = self._then, None
            self._widget.removeEventFilter(self)
            then()  # the paint itself runs when this returns; ``then`` defers its work past it
        return False


__all__ = ["SignInFlow"]
