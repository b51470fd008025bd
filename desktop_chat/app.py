"""Composition root: settings, then the main window, under a Qt event loop."""

from __future__ import annotations

import os
import socket
import sys
from urllib.parse import urlsplit

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QLabel, QMainWindow

from desktop_chat import __version__
from desktop_chat.config import Settings


def _reachable(url: str) -> bool:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def run(*, smoke_test: bool = False, dev_stack: bool = False, demo: bool = False) -> int:
    """Start the application and return its exit code."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        # No display (a server, CI): run offscreen rather than fail.
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    settings = Settings()
    app = QApplication.instance() or QApplication(sys.argv[:1])
    window = QMainWindow()
    window.setWindowTitle(f"desktop-chat {__version__}")
    state = "connected to" if _reachable(settings.supabase_url) else "cannot reach"
    label = QLabel(f"desktop-chat is {state} the stack at {settings.supabase_url}")
    label.setMargin(24)
    window.setCentralWidget(label)
    window.resize(640, 200)
    window.show()
    if smoke_test:
        QTimer.singleShot(0, app.quit)
    return app.exec()
