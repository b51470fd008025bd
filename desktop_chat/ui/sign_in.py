"""The sign-in window: server, email and password; or a new account with a display name."""

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


def check_server_url(url: str) -> str:
    """``url`` stripped, if it looks like an http(s) address.

    Raises:
        InvalidInput: It does not.
    """
    url = url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput("Enter the server address, like http://127.0.0.1:54321 or https://xyz.supabase.co.")
    return url


class SignInWindow(QWidget):
    """Sign in or create an account.

    Args:
        server_url: The server address to start with.
        icon: The app icon shown above the form.
        parent: Qt parent.

    Signals:
        sign_in_requested(str, str, str): ``(server URL, email, password)``.
        sign_up_requested(str, str, str, str): ``(server URL, email, password, display name)``.
        closed(): The user closed the window.
    """

    sign_in_requested = Signal(str, str, str)
    sign_up_requested = Signal(str, str, str, str)
    closed = Signal()

    def __init__(self, server_url: str, *, icon: QIcon | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("signInWindow")
        self.setWindowTitle("Sign in — desktop-chat")
        self._signing_up = False
        self._busy = False

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
        self.server_edit.setAccessibleName("Server address")
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
        for edit in (self.server_edit, self.email_edit, self.password_edit, self.name_edit):
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
        form = QFormLayout()
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapAllRows)
        form.addRow("Server", self.server_edit)
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
        card_layout.addLayout(form)
        card_layout.addWidget(self.error_label)
        card_layout.addWidget(self.submit_button)
        card_layout.addWidget(self.switch_button, 0, Qt.AlignmentFlag.AlignHCenter)
        card.setFixedWidth(line * 26)
        outer = QHBoxLayout(self)
        outer.addStretch(1)
        column = QVBoxLayout()
        column.addStretch(1)
        column.addWidget(card)
        column.addStretch(1)
        outer.addLayout(column)
        outer.addStretch(1)
        self.resize(line * 40, line * 42)
        self.set_sign_up(False)

    # --- public --------------------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self._busy

    @property
    def signing_up(self) -> bool:
        return self._signing_up

    def set_sign_up(self, signing_up: bool) -> None:
        self._signing_up = signing_up
        self.name_label.setVisible(signing_up)
        self.name_edit.setVisible(signing_up)
        self.heading.setText("Create your account" if signing_up else "Welcome back")
        self.subheading.setText("Pick a display name others will see." if signing_up else "Sign in to desktop-chat.")
        self.switch_button.setText("I already have an account" if signing_up else "New here? Create an account")
        self._update_button()
        self.clear_error()

    def set_busy(self, busy: bool) -> None:
        self._busy = busy
        for widget in (self.server_edit, self.email_edit, self.password_edit, self.name_edit, self.switch_button):
            widget.setEnabled(not busy)
        self._update_button()

    def show_error(self, text: str) -> None:
        self.error_label.setText(text)
        self.error_label.show()

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
            if not email or not password:
                raise InvalidInput("Enter your email and password.")
            name = validate_display_name(self.name_edit.text()) if self._signing_up else ""
        except InvalidInput as error:
            self.show_error(error.message)
            return
        self.clear_error()
        self.set_busy(True)
        if self._signing_up:
            self.sign_up_requested.emit(url, email, password, name)
        else:
            self.sign_in_requested.emit(url, email, password)

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
