"""The settings dialog writes the settings file; environment variables lock their fields."""

from __future__ import annotations

from pytestqt.qtbot import QtBot

from desktop_chat.config import Settings, read_user_settings
from desktop_chat.ui.settings_dialog import SettingsDialog


def test_saving_writes_the_file_that_the_next_start_reads(qtbot: QtBot, settings: Settings) -> None:
    dialog = SettingsDialog(settings, clear_cache=lambda: None, overridden=frozenset())
    qtbot.addWidget(dialog)
    dialog.theme.setCurrentIndex(dialog.theme.findData("dark"))
    dialog.ttl_messages.setValue(120)
    dialog.external_redis.setChecked(True)
    dialog.redis_url.setText("redis://127.0.0.1:6380/1")
    dialog.log_level.setCurrentText("DEBUG")
    with qtbot.waitSignal(dialog.saved):
        dialog.save()
    again = Settings(config_dir=settings.config_dir)
    assert (again.theme, again.cache_ttl_messages, again.redis_url, again.log_level) == (
        "dark",
        120,
        "redis://127.0.0.1:6380/1",
        "DEBUG",
    )


def test_an_external_redis_needs_an_address(qtbot: QtBot, settings: Settings) -> None:
    dialog = SettingsDialog(settings, clear_cache=lambda: None, overridden=frozenset())
    qtbot.addWidget(dialog)
    dialog.external_redis.setChecked(True)
    dialog.save()
    assert dialog.error_label.text() == "Enter the Redis server's URL, or let the app run its own."
    assert read_user_settings(settings.config_dir) == {}


def test_fields_set_by_the_environment_are_locked_and_not_saved(qtbot: QtBot, settings: Settings) -> None:
    dialog = SettingsDialog(settings, clear_cache=lambda: None, overridden=frozenset({"cache_ttl_recent"}))
    qtbot.addWidget(dialog)
    assert not dialog.ttl_recent.isEnabled()
    assert "DESKTOP_CHAT_CACHE_TTL_RECENT" in dialog.ttl_recent.toolTip()
    dialog.save()
    assert "cache_ttl_recent" not in read_user_settings(settings.config_dir)


def test_theme_previews_live_and_clear_cache_reports_back(qtbot: QtBot, settings: Settings) -> None:
    cleared: list[bool] = []
    dialog = SettingsDialog(settings, clear_cache=lambda: cleared.append(True), overridden=frozenset())
    qtbot.addWidget(dialog)
    with qtbot.waitSignal(dialog.theme_chosen) as chosen:
        dialog.theme.setCurrentIndex(dialog.theme.findData("light"))
    assert chosen.args == ["light"]
    dialog.clear_button.click()
    assert cleared == [True]
    assert dialog.cache_note.text() == "Clearing…"
    dialog.set_cache_cleared()
    assert dialog.cache_note.text() == "The cache is empty."
