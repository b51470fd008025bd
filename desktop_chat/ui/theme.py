"""Light and dark colours, following the system unless the user chose one; the app icon and stylesheet.

Qt's Fusion style with an explicit palette looks the same on every platform and honours dark mode; the
painting delegates read their colours from ``Colors`` rather than hard-coding any.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QColor, QFontDatabase, QGuiApplication, QIcon, QPalette
from PySide6.QtWidgets import QApplication

_log = logging.getLogger(__name__)

ThemeChoice = Literal["system", "light", "dark"]
ICON_NAME = "desktop-chat.svg"
STYLESHEET_NAME = "desktop-chat.qss"
# Colour emoji fonts, best first. Without one, the system's fallback may draw emoji from a monochrome font
# or as boxes; the .deb recommends fonts-noto-color-emoji.
COLOUR_EMOJI_FAMILIES = ("Noto Color Emoji", "Twemoji", "JoyPixels", "Apple Color Emoji", "Segoe UI Emoji")


@dataclass(frozen=True, slots=True)
class Colors:
    """Colours the custom-painted parts use (the rest comes from the palette)."""

    dark: bool
    window: QColor
    surface: QColor  # list and timeline background
    text: QColor
    muted: QColor
    accent: QColor
    accent_text: QColor
    own_bubble: QColor
    own_text: QColor
    other_bubble: QColor
    other_text: QColor
    bubble_border: QColor
    danger: QColor
    selection: QColor
    hover: QColor
    separator: QColor


LIGHT = Colors(
    dark=False,
    window=QColor("#f3f4f6"),
    surface=QColor("#fbfbfc"),
    text=QColor("#1f2328"),
    muted=QColor("#6b7280"),
    accent=QColor("#2f6fde"),
    accent_text=QColor("#ffffff"),
    own_bubble=QColor("#dbe8ff"),
    own_text=QColor("#15233b"),
    other_bubble=QColor("#ffffff"),
    other_text=QColor("#1f2328"),
    bubble_border=QColor("#e3e6ea"),
    danger=QColor("#c62828"),
    selection=QColor("#e3ecfd"),
    hover=QColor("#eef1f5"),
    separator=QColor("#e6e8eb"),
)

DARK = Colors(
    dark=True,
    window=QColor("#1b1d21"),
    surface=QColor("#202328"),
    text=QColor("#e6e7e9"),
    muted=QColor("#9299a3"),
    accent=QColor("#5b93f0"),
    accent_text=QColor("#0d1420"),
    own_bubble=QColor("#2a3f63"),
    own_text=QColor("#eaf1ff"),
    other_bubble=QColor("#2c3036"),
    other_text=QColor("#e6e7e9"),
    bubble_border=QColor("#33373e"),
    danger=QColor("#ef6b6b"),
    selection=QColor("#2b3a52"),
    hover=QColor("#282c32"),
    separator=QColor("#30343a"),
)


def palette_for(colors: Colors) -> QPalette:
    """A full Fusion palette built from ``colors``."""
    palette = QPalette()
    role = QPalette.ColorRole
    group = QPalette.ColorGroup
    palette.setColor(role.Window, colors.window)
    palette.setColor(role.WindowText, colors.text)
    palette.setColor(role.Base, colors.surface)
    palette.setColor(role.AlternateBase, colors.hover)
    palette.setColor(role.Text, colors.text)
    palette.setColor(role.PlaceholderText, colors.muted)
    palette.setColor(role.Button, colors.surface if colors.dark else QColor("#ffffff"))
    palette.setColor(role.ButtonText, colors.text)
    palette.setColor(role.Highlight, colors.accent)
    palette.setColor(role.HighlightedText, colors.accent_text)
    palette.setColor(role.ToolTipBase, colors.surface)
    palette.setColor(role.ToolTipText, colors.text)
    palette.setColor(role.Link, colors.accent)
    palette.setColor(role.BrightText, colors.danger)
    palette.setColor(role.Light, colors.surface.lighter(120))
    palette.setColor(role.Midlight, colors.separator)
    palette.setColor(role.Mid, colors.bubble_border.darker(110))
    palette.setColor(role.Dark, colors.muted)
    palette.setColor(role.Shadow, QColor(0, 0, 0, 90))
    for disabled in (role.WindowText, role.Text, role.ButtonText):
        palette.setColor(group.Disabled, disabled, colors.muted)
    return palette


def resource_path(name: str) -> Path | None:
    """A file from ``resources/``: bundled next to this module in a wheel, else the source checkout's."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "resources" / name, here.parents[1] / "resources" / name):
        if candidate.is_file():
            return candidate
    return None


def app_icon() -> QIcon:
    path = resource_path(ICON_NAME)
    if path is None:
        _log.info("App icon %s not found; using the platform default", ICON_NAME)
        return QIcon()
    return QIcon(str(path))


def colour_emoji_family(installed: Sequence[str]) -> str | None:
    """The best colour emoji font among the ``installed`` families, if any."""
    available = {family.casefold() for family in installed}
    return next((family for family in COLOUR_EMOJI_FAMILIES if family.casefold() in available), None)


def prefer_colour_emoji(families: Callable[[], Sequence[str]] = QFontDatabase.families) -> str | None:
    """Draw emoji with an installed colour emoji font (Qt 6.9's emoji font list); returns the family chosen."""
    family = colour_emoji_family(families())
    if family is None:
        _log.info("No colour emoji font installed (e.g. fonts-noto-color-emoji); emoji use the system fallback")
        return None
    if family not in QFontDatabase.applicationEmojiFontFamilies():
        QFontDatabase.addApplicationEmojiFontFamily(family)
    return family


class Theme(QObject):
    """The app's colours; applies the palette and tells painters when it changes.

    Args:
        app: The application whose palette and style are set.
        choice: "system", "light" or "dark".

    Signals:
        changed(object): The new ``Colors`` after the system or the user switched between light and dark.
    """

    changed = Signal(object)

    def __init__(self, app: QApplication, choice: ThemeChoice = "system") -> None:
        super().__init__(app)
        self._app = app
        self._choice: ThemeChoice = choice
        self._colors = LIGHT
        app.setStyle("Fusion")
        prefer_colour_emoji()
        QGuiApplication.styleHints().colorSchemeChanged.connect(self._on_system_scheme)
        self._apply()

    @property
    def colors(self) -> Colors:
        return self._colors

    @property
    def choice(self) -> ThemeChoice:
        return self._choice

    def set_choice(self, choice: ThemeChoice) -> None:
        self._choice = choice
        self._apply()

    def _on_system_scheme(self, _scheme: Qt.ColorScheme) -> None:
        if self._choice == "system":
            self._apply()

    def _wants_dark(self) -> bool:
        if self._choice != "system":
            return self._choice == "dark"
        return QGuiApplication.styleHints().colorScheme() == Qt.ColorScheme.Dark

    def _apply(self) -> None:
        colors = DARK if self._wants_dark() else LIGHT
        changed = colors is not self._colors
        self._colors = colors
        self._app.setPalette(palette_for(colors))
        stylesheet = resource_path(STYLESHEET_NAME)
        if stylesheet is not None:
            self._app.setStyleSheet(stylesheet.read_text(encoding="utf-8"))
        if changed:
            self.changed.emit(colors)
