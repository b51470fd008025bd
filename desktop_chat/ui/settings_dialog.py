"""The settings dialog: appearance, notifications, cache and logging, saved to the user's settings file.

Values set by ``DESKTOP_CHAT_*`` environment variables win over the file, so their fields are shown
disabled with the variable's name. The theme applies at once; cache and logging changes apply at the next
start (the store is built with them).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal
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
    QVBoxLayout,
    QWidget,
)

from desktop_chat.config import ENV_PREFIX, Settings, env_overrides, save_user_settings
from desktop_chat.errors import LocalStorageError

THEMES = (("system", "Follow the system"), ("light", "Light"), ("dark", "Dark"))
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
DAY = 24 * 3600


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

        self.theme = QComboBox(self)
        for value, label in THEMES:
            self.theme.addItem(label, value)
        self.theme.setCurrentIndex(next(i for i, (value, _) in enumerate(THEMES) if value == settings.theme))
        self.theme.setAccessibleName("Theme")
        self.theme.currentIndexChanged.connect(lambda _: self.theme_chosen.emit(self.theme.currentData()))
        self.notifications = QCheckBox("Show desktop notifications for new messages", self)
        self.notifications.setChecked(settings.notifications)

        self.cache_enabled = QCheckBox("Keep a local cache for instant reads", self)
        self.cache_enabled.setChecked(settings.cache_enabled)
        self.managed_redis = QRadioButton("Run a private Redis for this app", self)
        self.external_redis = QRadioButton("Use the Redis server at", self)
        self.redis_group = QButtonGroup(self)
        self.redis_group.addButton(self.managed_redis)
        self.redis_group.addButton(self.external_redis)
        self.redis_url = QLineEdit(settings.redis_url or "", self)
        self.redis_url.setPlaceholderText("redis://127.0.0.1:6379/0")
        self.redis_url.setAccessibleName("Redis URL")
        (self.external_redis if settings.redis_url else self.managed_redis).setChecked(True)
        self.redis_url.setEnabled(bool(settings.redis_url))
        self.external_redis.toggled.connect(self.redis_url.setEnabled)
        self.ttl_recent = self._seconds(settings.cache_ttl_recent, "Recent chats list kept for")
        self.ttl_chat = self._seconds(settings.cache_ttl_chat, "Chat details kept for")
        self.ttl_messages = self._seconds(settings.cache_ttl_messages, "Messages kept for")
        self.clear_button = QPushButton("Clear cache now", self)
        self.clear_button.clicked.connect(self._clear_cache)
        self.cache_note = QLabel(self)
        self.cache_note.setObjectName("hint")

        self.log_level = QComboBox(self)
        self.log_level.addItems(list(LOG_LEVELS))
        self.log_level.setCurrentText(settings.log_level)
        self.log_level.setAccessibleName("Log level")

        appearance = QGroupBox("Appearance", self)
        appearance_form = QFormLayout(appearance)
        appearance_form.addRow("Theme", self.theme)
        appearance_form.addRow(self.notifications)
        cache = QGroupBox("Cache", self)
        cache_form = QFormLayout(cache)
        cache_form.addRow(self.cache_enabled)
        cache_form.addRow(self.managed_redis)
        redis_row = QHBoxLayout()
        redis_row.addWidget(self.external_redis)
        redis_row.addWidget(self.redis_url, 1)
        cache_form.addRow(redis_row)
        cache_form.addRow("Recent chats", self.ttl_recent)
        cache_form.addRow("Chat details", self.ttl_chat)
        cache_form.addRow("Messages", self.ttl_messages)
        clear_row = QHBoxLayout()
        clear_row.addWidget(self.clear_button)
        clear_row.addWidget(self.cache_note, 1)
        cache_form.addRow(clear_row)
        logging_box = QGroupBox("Logging", self)
        logging_form = QFormLayout(logging_box)
        logging_form.addRow("Log level", self.log_level)

        self.error_label = QLabel(self)
        self.error_label.setObjectName("dialogError")
        self.error_label.setWordWrap(True)
        self.error_label.hide()
        note = QLabel("Cache and logging changes apply the next time desktop-chat starts.", self)
        note.setObjectName("hint")
        note.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel, self)
        buttons.accepted.connect(self.save)
        buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(appearance)
        layout.addWidget(cache)
        layout.addWidget(logging_box)
        layout.addWidget(note)
        layout.addWidget(self.error_label)
        layout.addWidget(buttons)
        self._lock_overridden()
        self.setMinimumWidth(self.fontMetrics().averageCharWidth() * 72)

    def values(self) -> dict[str, Any]:
        """What the dialog would save."""
        external = self.external_redis.isChecked() and self.redis_url.text().strip()
        return {
            "theme": self.theme.currentData(),
            "notifications": self.notifications.isChecked(),
            "cache_enabled": self.cache_enabled.isChecked(),
            "redis_url": self.redis_url.text().strip() if external else None,
            "cache_ttl_recent": self.ttl_recent.value(),
            "cache_ttl_chat": self.ttl_chat.value(),
            "cache_ttl_messages": self.ttl_messages.value(),
            "log_level": self.log_level.currentText(),
        }

    def save(self) -> None:
        values = {key: value for key, value in self.values().items() if key not in self._overridden}
        if self.external_redis.isChecked() and not self.redis_url.text().strip():
            self._show_error("Enter the Redis server's URL, or let the app run its own.")
            return
        try:
            save_user_settings(self._config_dir, values)
        except LocalStorageError as error:
            self._show_error(error.message)
            return
        self.saved.emit(values)
        self.accept()

    def _show_error(self, text: str) -> None:
        self.error_label.setText(text)
        self.error_label.show()

    def _clear_cache(self) -> None:
        self.cache_note.setText("Clearing…")
        self._clear_cache_callback()

    def set_cache_cleared(self) -> None:
        """The bridge reports the cache is empty."""
        self.cache_note.setText("The cache is empty.")

    def _seconds(self, value: int, name: str) -> QSpinBox:
        box = QSpinBox(self)
        box.setRange(1, 7 * DAY)
        box.setSuffix(" s")
        box.setValue(value)
        box.setAccessibleName(name)
        return box

    def _lock_overridden(self) -> None:
        fields: Mapping[str, list[QWidget]] = {
            "theme": [self.theme],
            "notifications": [self.notifications],
            "cache_enabled": [self.cache_enabled],
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
