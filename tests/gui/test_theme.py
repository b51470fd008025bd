"""Light and dark palettes, switched live; the icon and stylesheet are found."""

from __future__ import annotations

from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from desktop_chat.ui.theme import DARK, ICON_NAME, LIGHT, STYLESHEET_NAME, Theme, app_icon, resource_path


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
