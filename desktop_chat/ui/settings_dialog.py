"""The settings dialog, in the user's words: how it looks, notifications, and the copy of recent chats kept on
this computer (how long, how much room it takes, clear it). What only an administrator or a developer
would touch (an external Redis server, how often saved data is checked with the server, log detail) sits
under "Advanced", closed by default.

Values set by ``DESKTOP_CHAT_*`` environment variables win over the settings file, so their fields are shown
disabled with the variable's name. The theme applies at once; the rest at the next start (the data layer is
built with them).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QStyledItemDelegate,
    QVBoxLayout,
    QWidget,
)

from desktop_chat.config import ENV_PREFIX, Settings, env_overrides, save_user_settings
from desktop_chat.dal.api import CacheUsage
from desktop_chat.errors import LocalStorageError
from desktop_chat.ui.text import byte_size

THEMES = (("system", "Follow the system"), ("light", "Light"), ("dark", "Dark"))
LOG_LEVELS = (
    ("INFO", "Normal"),
    ("DEBUG", "Detailed, for troubleshooting"),
    ("WARNING", "Warnings and errors only"),
    ("ERROR", "Errors only"),
)
MINUTE = 60
WEEK_IN_MINUTES = 7 * 24 * 60


def _combo(parent: QWidget) -> QComboBox:
    """A combo box whose list the stylesheet can colour: Fusion's default, menu-like list paints its current
    item in the highlighted-text colour without the highlight behind it (dark text on dark, in dark mode)."""
    combo = QComboBox(parent)
    combo.setItemDelegate(QStyledItemDelegate(combo))
    return combo


class SettingsDialog(QDialog):
    """Edit the user-editable settings.

    Args:
        settings: The settings the app runs with.
        clear_cache: Empties the cache now.
        overridden: Settings set by environment variables (default: read from the environment).
        parent: Qt parent.

    Signals:
        saved(object): The values written to the file (a dict), after a successful save.
        theme_chosen(str): "system", "light" or "dark", as soon as it is picked (for a live preview).
    """

    saved = Signal(object)
    theme_chosen = Signal(str)

    def __init__(
        self,
        settings: Settings,
        *,
        clear_cache: Callable[[], object],
        overridden: frozenset[str] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.setObjectName("settingsDialog")
        self._settings = settings
        self._config_dir: Path = settings.config_dir
        self._clear_cache_callback = clear_cache
        self._overridden = env_overrides() if overridden is None else overridden

        # --- appearance and notifications ---------------------------------------------------------------
        self.theme = _combo(self)
        for value, label in THEMES:
            self.theme.addItem(label, value)
        self.theme.setCurrentIndex(next(i for i, (value, _) in enumerate(THEMES) if value == settings.theme))
        self.theme.setAccessibleName("Theme")
        self.theme.currentIndexChanged.connect(lambda _: self.theme_chosen.emit(self.theme.currentData()))
        self.notifications = QCheckBox("Show a notification when a message arrives in a chat I am not reading", self)
        self.notifications.setChecked(settings.notifications)

        # --- the copy of recent chats on this computer -------------------------------------------------------
        self.cache_enabled = QCheckBox("Keep recent chats on this computer, so they open at once and offline", self)
        self.cache_enabled.setChecked(settings.cache_enabled)
        self.keep_days = QSpinBox(self)
        self.keep_days.setRange(1, 365)
        self.keep_days.setSuffix(" days")
        self.keep_days.setValue(max(1, round(settings.cache_keep_days)))
        self.keep_days.setAccessibleName("Keep saved chats for, in days")
        self.usage_label = QLabel("Working out how much room they take…", self)
        self.usage_label.setObjectName("hint")
        self.usage_label.setWordWrap(True)
        self.clear_button = QPushButton("Clear saved chats", self)
        self.clear_button.setToolTip("Removes the copy kept on this computer; your chats stay on the server.")
        self.clear_button.clicked.connect(self._clear_cache)
        self.cache_note = QLabel(self)
        self.cache_note.setObjectName("hint")

        # --- advanced ----------------------------------------------------------------------------------------
        self.managed_redis = QRadioButton("This app's own private store (recommended)", self)
        self.external_redis = QRadioButton("A Redis server at", self)
        self.redis_group = QButtonGroup(self)
        self.redis_group.addButton(self.managed_redis)
        self.redis_group.addButton(self.external_redis)
        self.redis_url = QLineEdit(settings.redis_url or "", self)
        self.redis_url.setPlaceholderText("redis://127.0.0.1:6379/0")
        self.redis_url.setAccessibleName("Redis server address")
        (self.external_redis if settings.redis_url else self.managed_redis).setChecked(True)
        self.redis_url.setEnabled(bool(settings.redis_url))
        self.external_redis.toggled.connect(self.redis_url.setEnabled)
        self.ttl_recent = self._minutes(settings.cache_ttl_recent, "Check the chat list after, in minutes")
        self.ttl_chat = self._minutes(settings.cache_ttl_chat, "Check a chat's members after, in minutes")
        self.ttl_messages = self._minutes(settings.cache_ttl_messages, "Check saved messages after, in minutes")
        self.log_level = _combo(self)
        for value, label in LOG_LEVELS:
            self.log_level.addItem(label, value)
        self.log_level.setCurrentIndex(max(0, self.log_level.findData(settings.log_level)))
        self.log_level.setAccessibleName("Log detail")

        appearance = QGroupBox("Appearance", self)
        appearance_form = QFormLayout(appearance)
        appearance_form.addRow("Theme", self.theme)
        appearance_form.addRow(self.notifications)

        saved = QGroupBox("Saved chats", self)
        saved_form = QFormLayout(saved)
        saved_form.addRow(self.cache_enabled)
        saved_form.addRow("Keep them for", self.keep_days)
        saved_form.addRow(self.usage_label)
        clear_row = QHBoxLayout()
        clear_row.addWidget(self.clear_button)
        clear_row.addWidget(self.cache_note, 1)
        saved_form.addRow(clear_row)

        self.advanced_toggle = QPushButton("Show advanced settings", self)
        self.advanced_toggle.setObjectName("linkButton")
        self.advanced_toggle.setFlat(True)
        self.advanced_toggle.setCursor(Qt.CursorShape.PointingHandCursor)
        self.advanced = QGroupBox("Advanced", self)
        self.advanced_toggle.clicked.connect(lambda: self.show_advanced(not self.advanced.isVisible()))
        advanced_form = QFormLayout(self.advanced)
        advanced_form.addRow(QLabel("Where saved chats are kept:", self))
        advanced_form.addRow(self.managed_redis)
        redis_row = QHBoxLayout()
        redis_row.addWidget(self.external_redis)
        redis_row.addWidget(self.redis_url, 1)
        advanced_form.addRow(redis_row)
        checks = QLabel("Check saved data with the server after:", self)
        checks.setToolTip("Saved data is also kept up to date as it changes; these checks are the safety net.")
        advanced_form.addRow(checks)
        advanced_form.addRow("Chat list", self.ttl_recent)
        advanced_form.addRow("Chat members", self.ttl_chat)
        advanced_form.addRow("Messages", self.ttl_messages)
        advanced_form.addRow("Log detail", self.log_level)
        self.advanced.hide()

        self.error_label = QLabel(self)
        self.error_label.setObjectName("dialogError")
        self.error_label.setWordWrap(True)
        self.error_label.hide()
        note = QLabel("Changes other than the theme apply the next time desktop-chat starts.", self)
        note.setObjectName("hint")
        note.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel, self)
        buttons.accepted.connect(self.save)
        buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(appearance)
        layout.addWidget(saved)
        layout.addWidget(self.advanced_toggle, 0, Qt.AlignmentFlag.AlignLeft)
        layout.addWidget(self.advanced)
        layout.addWidget(note)
        layout.addWidget(self.error_label)
        layout.addWidget(buttons)
        self._lock_overridden()
        self.setMinimumWidth(self.fontMetrics().averageCharWidth() * 76)

    def values(self) -> dict[str, Any]:
        """What the dialog would save."""
        external = self.external_redis.isChecked() and self.redis_url.text().strip()
        return {
            "theme": self.theme.currentData(),
            "notifications": self.notifications.isChecked(),
            "cache_enabled": self.cache_enabled.isChecked(),
            "cache_keep_days": self.keep_days.value(),
            "redis_url": self.redis_url.text().strip() if external else None,
            "cache_ttl_recent": self.ttl_recent.value() * MINUTE,
            "cache_ttl_chat": self.ttl_chat.value() * MINUTE,
            "cache_ttl_messages": self.ttl_messages.value() * MINUTE,
            "log_level": self.log_level.currentData(),
        }

    def save(self) -> None:
        values = {key: value for key, value in self.values().items() if key not in self._overridden}
        if self.external_redis.isChecked() and not self.redis_url.text().strip():
            self.show_advanced(True)
            self._show_error("Enter the Redis server's address, or let the app keep saved chats itself.")
            return
        try:
            save_user_settings(self._config_dir, values)
        except LocalStorageError as error:
            self._show_error(error.message)
            return
        self.saved.emit(values)
        self.accept()

    def show_advanced(self, shown: bool) -> None:
        self.advanced.setVisible(shown)
        self.advanced_toggle.setText("Hide advanced settings" if shown else "Show advanced settings")
        self.adjustSize()

    def show_usage(self, usage: CacheUsage) -> None:
        """How much room the saved chats take (the bridge's ``cache_usage_loaded``)."""
        if usage.disk_bytes:
            text = f"They take {byte_size(usage.disk_bytes)} on this computer."
        elif usage.memory_bytes:
            text = f"They take {byte_size(usage.memory_bytes)} of memory."
        else:
            text = "Nothing is saved yet."
        self.usage_label.setText(text)

    def _show_error(self, text: str) -> None:
        self.error_label.setText(text)
        self.error_label.show()

    def _clear_cache(self) -> None:
        self.cache_note.setText("Clearing…")
        self._clear_cache_callback()

    def set_cache_cleared(self) -> None:
        """The bridge reports the cache is empty."""
        self.cache_note.setText("Cleared.")

    def _minutes(self, seconds: int, name: str) -> QSpinBox:
        box = QSpinBox(self)
        box.setRange(1, WEEK_IN_MINUTES)
        box.setSuffix(" min")
        box.setValue(max(1, round(seconds / MINUTE)))
        box.setAccessibleName(name)
        return box

    def _lock_overridden(self) -> None:
        fields: Mapping[str, list[QWidget]] = {
            "theme": [self.theme],
            "notifications": [self.notifications],
            "cache_enabled": [self.cache_enabled],
            "cache_keep_days": [self.keep_days],
            "redis_url": [self.managed_redis, self.external_redis, self.redis_url],
            "cache_ttl_recent": [self.ttl_recent],
            "cache_ttl_chat": [self.ttl_chat],
            "cache_ttl_messages": [self.ttl_messages],
            "log_level": [self.log_level],
        }
        for name, widgets in fields.items():
            if name in self._overridden:
                for widget in widgets:
                    widget.setEnabled(False)
                    widget.setToolTip(f"Set by the environment variable {ENV_PREFIX}{name.upper()}")
