"""Light and dark palettes, switched live; the icon and stylesheet are found."""

from __future__ import annotations

from PySide6.QtGui import QFontDatabase, QPalette
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from desktop_chat.ui.theme import (
    DARK,
    ICON_NAME,
    LIGHT,
    STYLESHEET_NAME,
    Theme,
    app_icon,
    colour_emoji_family,
    prefer_colour_emoji,
    resource_path,
)


def test_switching_to_dark_and_back_repaints_with_the_palette(qtbot: QtBot, qapp: QApplication, theme: Theme) -> None:
    with qtbot.waitSignal(theme.changed) as changed:
        theme.set_choice("dark")
    assert changed.args == [DARK]
    assert qapp.palette().color(QPalette.ColorRole.Window) == DARK.window
    with qtbot.waitSignal(theme.changed):
        theme.set_choice("light")
    assert qapp.palette().color(QPalette.ColorRole.Window) == LIGHT.window
    assert theme.colors is LIGHT


def test_resources_are_found_and_used(theme: Theme, qapp: QApplication) -> None:
    assert resource_path(ICON_NAME) is not None
    assert resource_path(STYLESHEET_NAME) is not None
    assert resource_path("no-such-file.png") is None
    assert not app_icon().isNull()
    assert "jumpButton" in qapp.styleSheet()


def test_a_colour_emoji_font_is_chosen_when_one_is_installed() -> None:
    assert colour_emoji_family(["DejaVu Sans", "Twemoji", "noto color emoji"]) == "Noto Color Emoji"
    assert colour_emoji_family(["DejaVu Sans", "Twemoji"]) == "Twemoji"
    assert colour_emoji_family(["DejaVu Sans", "Noto Sans"]) is None


def test_the_installed_colour_emoji_font_draws_emoji(qapp: QApplication) -> None:
    before = QFontDatabase.applicationEmojiFontFamilies()
    try:
        assert prefer_colour_emoji(lambda: ["DejaVu Sans", "Noto Color Emoji"]) == "Noto Color Emoji"
        assert QFontDatabase.applicationEmojiFontFamilies().count("Noto Color Emoji") == 1
        prefer_colour_emoji(lambda: ["Noto Color Emoji"])  # a second theme does not add it twice
        assert QFontDatabase.applicationEmojiFontFamilies().count("Noto Color Emoji") == 1
    finally:
        for family in QFontDatabase.applicationEmojiFontFamilies():
            if family not in before:
                QFontDatabase.removeApplicationEmojiFontFamily(family)


def test_without_a_colour_emoji_font_nothing_is_registered(qapp: QApplication) -> None:
    before = QFontDatabase.applicationEmojiFontFamilies()
    assert prefer_colour_emoji(lambda: ["DejaVu Sans"]) is None
    assert QFontDatabase.applicationEmojiFontFamilies() == before
