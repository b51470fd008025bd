"""The sign-in window: email and password (or a new account with a display name), and the server.

The server is a Supabase project: its address and its public key (the anon or publishable key, from the
project's API settings). On the first start, before anyone chose one, the window asks for both and says
what they are; after that it shows the server in one line with "Change", since people rarely switch.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QCloseEvent, QIcon
from PySide6.QtWidgets import (
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from desktop_chat.errors import InvalidInput
from desktop_chat.models import MAX_DISPLAY_NAME_CHARS, validate_display_name

SERVER_HELP = (
    "Your chats live in a Supabase project. Enter its address and its public key, from the project's "
    "Settings → API (the Project URL, and the anon or publishable key). Whoever set up your chat can tell you."
)


def check_server_url(url: str) -> str:
    """``url`` stripped, if it looks like an http(s) address.

    Raises:
        InvalidInput: It does not.
    """
    url = url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput("Enter the server address, like https://xyz.supabase.co (or http://127.0.0.1:54321).")
    return url


def check_project_key(key: str) -> str:
    """``key`` stripped, if it could be a project key (one token, no spaces).

    Raises:
        InvalidInput: It cannot.
    """
    key = key.strip()
    if not key or any(character.isspace() for character in key) or len(key) < 20:
        raise InvalidInput("Enter the project's public key (the anon or publishable key from its API settings).")
    return key


def server_label(url: str) -> str:
    """The server as the one-line summary shows it: its host (and port)."""
    parts = urlsplit(url)
    return parts.netloc or url


class SignInWindow(QWidget):
    """Sign in or create an account.

    Args:
        server_url: The server address to start with.
        project_key: The server's public (anon or publishable) key to start with.
        ask_for_server: Show the server's address and key with an explanation (the first start); else one
            line naming the server, with "Change".
        server_locked: The environment sets the server (``DESKTOP_CHAT_SUPABASE_URL``): it cannot be changed.
        returning: Someone signed in on this computer before ("Welcome back"), else a first-time greeting.
        icon: The app icon shown above the form.
        parent: Qt parent.

    Signals:
        sign_in_requested(str, str, str, str): ``(server URL, project key, email, password)``.
        sign_up_requested(str, str, str, str, str): ``(server URL, project key, email, password, display name)``.
        closed(): The user closed the window.
    """

    sign_in_requested = Signal(str, str, str, str)
    sign_up_requested = Signal(str, str, str, str, str)
    closed = Signal()

    def __init__(
        self,
        server_url: str,
        *,
        project_key: str = "",
        ask_for_server: bool = False,
        server_locked: bool = False,
        returning: bool = False,
        icon: QIcon | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("signInWindow")
        self.setWindowTitle("Sign in — desktop-chat")
        self._signing_up = False
        self._busy = False
        self._returning = returning
        self._server_locked = server_locked

        self.logo = QLabel(self)
        self.logo.setAlignment(Qt.AlignmentFlag.AlignCenter)
        line = self.fontMetrics().height()
        if icon is not None and not icon.isNull():
            self.logo.setPixmap(icon.pixmap(QSize(line * 4, line * 4), self.devicePixelRatioF()))
        self.heading = QLabel(self)
        self.heading.setObjectName("signInHeading")
        self.heading.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.subheading = QLabel(self)
        self.subheading.setObjectName("hint")
        self.subheading.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.subheading.setWordWrap(True)

        self.server_edit = QLineEdit(server_url, self)
        self.server_edit.setPlaceholderText("https://your-project.supabase.co")
        self.server_edit.setAccessibleName("Server address")
        self.key_edit = QLineEdit(project_key, self)
        self.key_edit.setPlaceholderText("eyJhbGciOi… or sb_publishable_…")
        self.key_edit.setAccessibleName("Project key")
        self.server_help = QLabel(SERVER_HELP, self)
        self.server_help.setObjectName("hint")
        self.server_help.setWordWrap(True)
        self.server_summary = QLabel(self)
        self.server_summary.setObjectName("hint")
        self.change_server_button = QPushButton("Change", self)
        self.change_server_button.setObjectName("linkButton")
        self.change_server_button.setFlat(True)
        self.change_server_button.setCursor(Qt.CursorShape.PointingHandCursor)
        self.change_server_button.clicked.connect(lambda: self.show_server_fields(True))
        self.email_edit = QLineEdit(self)
        self.email_edit.setPlaceholderText("you@example.com")
        self.email_edit.setAccessibleName("Email")
        self.password_edit = QLineEdit(self)
        self.password_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.password_edit.setAccessibleName("Password")
        self.name_edit = QLineEdit(self)
        self.name_edit.setMaxLength(MAX_DISPLAY_NAME_CHARS)
        self.name_edit.setPlaceholderText("How others see you")
        self.name_edit.setAccessibleName("Display name")
        self.name_label = QLabel("Display name", self)
        for edit in (self.server_edit, self.key_edit, self.email_edit, self.password_edit, self.name_edit):
            edit.returnPressed.connect(self.submit)

        self.error_label = QLabel(self)
        self.error_label.setObjectName("signInError")
        self.error_label.setWordWrap(True)
        self.error_label.setAccessibleName("Sign-in error")
        self.error_label.hide()
        self.submit_button = QPushButton(self)
        self.submit_button.setObjectName("primaryButton")
        self.submit_button.setDefault(True)
        self.submit_button.clicked.connect(self.submit)
        self.switch_button = QPushButton(self)
        self.switch_button.setObjectName("linkButton")
        self.switch_button.setFlat(True)
        self.switch_button.setCursor(Qt.CursorShape.PointingHandCursor)
        self.switch_button.clicked.connect(lambda: self.set_sign_up(not self._signing_up))

        card = QFrame(self)
        card.setObjectName("signInCard")
        # The server: its fields with what they are (the first start, or "Change"), else one line.
        self.server_fields = QWidget(card)
        server_form = QFormLayout(self.server_fields)
        server_form.setContentsMargins(0, 0, 0, 0)
        server_form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapAllRows)
        server_form.addRow(self.server_help)
        server_form.addRow("Server address", self.server_edit)
        server_form.addRow("Project key", self.key_edit)
        self.server_row = QWidget(card)
        summary = QHBoxLayout(self.server_row)
        summary.setContentsMargins(0, 0, 0, 0)
        summary.addWidget(self.server_summary, 1)
        summary.addWidget(self.change_server_button)
        form = QFormLayout()
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapAllRows)
        form.addRow("Email", self.email_edit)
        form.addRow("Password", self.password_edit)
        form.addRow(self.name_label, self.name_edit)
        card_layout = QVBoxLayout(card)
        unit = max(3, line // 3)
        card_layout.setContentsMargins(unit * 7, unit * 6, unit * 7, unit * 6)
        card_layout.setSpacing(unit * 3)
        card_layout.addWidget(self.logo)
        card_layout.addWidget(self.heading)
        card_layout.addWidget(self.subheading)
        card_layout.addWidget(self.server_fields)
        card_layout.addLayout(form)
        card_layout.addWidget(self.error_label)
        card_layout.addWidget(self.submit_button)
        card_layout.addWidget(self.switch_button, 0, Qt.AlignmentFlag.AlignHCenter)
        card_layout.addWidget(self.server_row)
        card.setFixedWidth(line * 28)
        outer = QHBoxLayout(self)
        outer.addStretch(1)
        column = QVBoxLayout()
        column.addStretch(1)
        column.addWidget(card)
        column.addStretch(1)
        outer.addLayout(column)
        outer.addStretch(1)
        self.resize(line * 40, line * 44)
        self.set_sign_up(False)
        self.show_server_fields(ask_for_server)

    # --- public --------------------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self._busy

    @property
    def signing_up(self) -> bool:
        return self._signing_up

    def show_server_fields(self, shown: bool) -> None:
        """The server's address and key, with what they are; or one line naming the server."""
        shown = shown and not self._server_locked
        self.server_fields.setVisible(shown)
        self.server_row.setVisible(not shown)
        self.change_server_button.setVisible(not self._server_locked)
        self.server_summary.setText(f"Server: {server_label(self.server_edit.text())}")
        if shown:
            self.server_edit.setFocus()

    def set_sign_up(self, signing_up: bool) -> None:
        self._signing_up = signing_up
        self.name_label.setVisible(signing_up)
        self.name_edit.setVisible(signing_up)
        if signing_up:
            heading, subheading = "Create your account", "Pick a display name others will see."
        elif self._returning:
            heading, subheading = "Welcome back", "Sign in to desktop-chat."
        else:
            heading, subheading = "Welcome to desktop-chat", "Sign in, or create an account if you are new."
        self.heading.setText(heading)
        self.subheading.setText(subheading)
        self.switch_button.setText("I already have an account" if signing_up else "New here? Create an account")
        self._update_button()
        self.clear_error()

    def set_busy(self, busy: bool) -> None:
        self._busy = busy
        for widget in (self.server_edit, self.key_edit, self.email_edit, self.password_edit, self.name_edit):
            widget.setReadOnly(busy)  # not disabled: a disabled field loses the keyboard focus
        self.switch_button.setEnabled(not busy)
        self.change_server_button.setEnabled(not busy)
        self._update_button()

    def show_error(self, text: str, *, about_server: bool = False) -> None:
        """Say what went wrong; ``about_server``: it is the server's address or key, so show those fields."""
        self.error_label.setText(text)
        self.error_label.show()
        if about_server:
            self.show_server_fields(True)

    def clear_error(self) -> None:
        self.error_label.clear()
        self.error_label.hide()

    def prefill(self, email: str) -> None:
        self.email_edit.setText(email)
        self.password_edit.setFocus()

    def submit(self) -> None:
        if self._busy:
            return
        email = self.email_edit.text().strip()
        password = self.password_edit.text()
        try:
            url = check_server_url(self.server_edit.text())
            key = check_project_key(self.key_edit.text())
        except InvalidInput as error:
            self.show_error(error.message, about_server=True)
            return
        try:
            if not email or not password:
                raise InvalidInput("Enter your email and password.")
            name = validate_display_name(self.name_edit.text()) if self._signing_up else ""
        except InvalidInput as error:
            self.show_error(error.message)
            return
        self.clear_error()
        self.set_busy(True)
        if self._signing_up:
            self.sign_up_requested.emit(url, key, email, password, name)
        else:
            self.sign_in_requested.emit(url, key, email, password)

    # --- internals -----------------------------------------------------------------------------------
    def _update_button(self) -> None:
        if self._busy:
            text = "Creating account…" if self._signing_up else "Signing in…"
        else:
            text = "Create account" if self._signing_up else "Sign in"
        self.submit_button.setText(text)
        self.submit_button.setEnabled(not self._busy)

    def closeEvent(self, event: QCloseEvent) -> None:
        self.closed.emit()
        super().closeEvent(event)
