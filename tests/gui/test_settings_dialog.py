"""The settings dialog: in the user's words (the technical parts under "Advanced"), working spin boxes and
lists in both themes, what the saved chats take on disk; it writes the settings file, and environment
variables lock their fields."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from PySide6.QtGui import QColor, QImage
from PySide6.QtWidgets import QAbstractButton, QApplication, QGroupBox, QLabel, QSpinBox, QWidget
from pytestqt.qtbot import QtBot

from desktop_chat.config import Settings, read_user_settings
from desktop_chat.dal.api import CacheUsage
from desktop_chat.ui.settings_dialog import SettingsDialog
from desktop_chat.ui.theme import Theme


@pytest.fixture
def dialog(qtbot: QtBot, settings: Settings) -> SettingsDialog:
    dialog = SettingsDialog(settings, clear_cache=lambda: None, overridden=frozenset())
    qtbot.addWidget(dialog)
    return dialog


@pytest.fixture(params=["light", "dark"])
def themed(request: pytest.FixtureRequest, theme: Theme) -> Iterator[str]:
    theme.set_choice(request.param)
    yield request.param
    theme.set_choice("light")


def shown_words(root: QWidget) -> str:
    texts = [root.windowTitle()]
    for widget in root.findChildren(QWidget):
        if not widget.isVisibleTo(root):
            continue
        if isinstance(widget, QLabel | QAbstractButton):
            texts.append(widget.text())
        elif isinstance(widget, QGroupBox):
            texts.append(widget.title())
    return " | ".join(texts)


def lightness_spread(image: QImage, left: int, top: int, right: int, bottom: int) -> int:
    values = [QColor(image.pixel(x, y)).lightness() for x in range(left, right) for y in range(top, bottom)]
    return max(values) - min(values)


def test_the_dialog_speaks_the_users_words_and_keeps_the_technical_parts_under_advanced(
    qtbot: QtBot, dialog: SettingsDialog
) -> None:
    dialog.show()
    words = shown_words(dialog)
    for technical in ("Redis", "TTL", "cache", "Cache", "Log level", "INFO", "DEBUG"):
        assert technical not in words, f"{technical!r} in: {words}"
    spins = [box.text() for box in dialog.findChildren(QSpinBox) if box.isVisibleTo(dialog)]
    assert spins == ["30 days"]  # no times in seconds
    assert "Keep them for" in words and "Clear saved chats" in words
    dialog.advanced_toggle.click()
    assert dialog.advanced.isVisible()
    assert "Redis server" in shown_words(dialog)  # there, for whoever needs it
    assert dialog.ttl_recent.suffix() == " min" and dialog.ttl_recent.value() == 5  # 300 s, in minutes


def test_saving_writes_the_file_that_the_next_start_reads(
    qtbot: QtBot, dialog: SettingsDialog, settings: Settings
) -> None:
    dialog.theme.setCurrentIndex(dialog.theme.findData("dark"))
    dialog.keep_days.setValue(7)
    dialog.ttl_messages.setValue(2)  # minutes
    dialog.external_redis.setChecked(True)
    dialog.redis_url.setText("redis://127.0.0.1:6380/1")
    dialog.log_level.setCurrentIndex(dialog.log_level.findData("DEBUG"))
    assert dialog.log_level.currentText() == "Detailed, for troubleshooting"
    with qtbot.waitSignal(dialog.saved):
        dialog.save()
    again = Settings(config_dir=settings.config_dir)
    assert (again.theme, again.cache_keep_days, again.cache_ttl_messages, again.redis_url, again.log_level) == (
        "dark",
        7,
        120,
        "redis://127.0.0.1:6380/1",
        "DEBUG",
    )


def test_an_external_redis_needs_an_address(qtbot: QtBot, dialog: SettingsDialog, settings: Settings) -> None:
    dialog.external_redis.setChecked(True)
    dialog.save()
    assert dialog.advanced.isVisibleTo(dialog)  # the field in question is shown
    assert dialog.error_label.text() == "Enter the Redis server's address, or let the app keep saved chats itself."
    assert read_user_settings(settings.config_dir) == {}


def test_fields_set_by_the_environment_are_locked_and_not_saved(qtbot: QtBot, settings: Settings) -> None:
    dialog = SettingsDialog(settings, clear_cache=lambda: None, overridden=frozenset({"cache_ttl_recent"}))
    qtbot.addWidget(dialog)
    assert not dialog.ttl_recent.isEnabled()
    assert "DESKTOP_CHAT_CACHE_TTL_RECENT" in dialog.ttl_recent.toolTip()
    dialog.save()
    assert "cache_ttl_recent" not in read_user_settings(settings.config_dir)


def test_theme_previews_live_and_clearing_reports_back_with_the_room_taken(qtbot: QtBot, settings: Settings) -> None:
    cleared: list[bool] = []
    dialog = SettingsDialog(settings, clear_cache=lambda: cleared.append(True), overridden=frozenset())
    qtbot.addWidget(dialog)
    with qtbot.waitSignal(dialog.theme_chosen) as chosen:
        dialog.theme.setCurrentIndex(dialog.theme.findData("light"))
    assert chosen.args == ["light"]
    dialog.show_usage(CacheUsage(disk_bytes=2_600_000, memory_bytes=3_000_000, keep_days=30))
    assert dialog.usage_label.text() == "They take 2.5 MB on this computer."
    dialog.clear_button.click()
    assert cleared == [True]
    assert dialog.cache_note.text() == "Clearing…"
    dialog.set_cache_cleared()
    assert dialog.cache_note.text() == "Cleared."
    dialog.show_usage(CacheUsage(disk_bytes=0, memory_bytes=0, keep_days=30))
    assert dialog.usage_label.text() == "Nothing is saved yet."


def test_spin_boxes_show_their_arrows(qtbot: QtBot, dialog: SettingsDialog, themed: str) -> None:
    dialog.show()
    box = dialog.keep_days
    qtbot.waitExposed(dialog)
    image = box.grab().toImage()
    height = image.height()
    # The up arrow sits in the right end's upper half, the down arrow in its lower half: both drawn.
    right = image.width() - 3
    assert lightness_spread(image, right - 12, 3, right, height // 2 - 1) > 40, themed
    assert lightness_spread(image, right - 12, height // 2 + 1, right, height - 3) > 40, themed


@pytest.mark.qt_log_ignore("does not support grabbing the keyboard")  # an offscreen popup
def test_the_current_item_of_a_list_is_readable_in_both_themes(
    qtbot: QtBot, dialog: SettingsDialog, themed: str
) -> None:
    dialog.show()
    combo = dialog.theme
    combo.showPopup()
    view = combo.view()
    qtbot.waitExposed(view)
    rect = view.visualRect(combo.model().index(combo.currentIndex(), 0))
    image = view.viewport().grab(rect).toImage()
    text = QColor(image.pixel(0, 0))  # the row's background at its corner…
    # …against the darkest or lightest pixel inside it (the letters): they must stand apart.
    assert lightness_spread(image, 0, 0, image.width(), image.height()) > 100, (themed, text.name())
    combo.hidePopup()
    QApplication.processEvents()
