"""The crash handler: an unexpected exception is a bug; log it and tell the user in a dialog."""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Callable
from types import TracebackType

from PySide6.QtWidgets import QApplication, QMessageBox

_log = logging.getLogger("desktop_chat.crash")
ExceptHook = Callable[[type[BaseException], BaseException, TracebackType | None], object]


class CrashHandler:
    """Replaces ``sys.excepthook`` while installed (qasync's async slots report bugs through it).

    Args:
        show_dialog: Whether to show a dialog (not in ``--smoke-test``, where nobody would close it).
        log_location: Where the log is, for the dialog's text.
    """

    def __init__(self, *, show_dialog: bool = True, log_location: str = "") -> None:
        self.show_dialog = show_dialog
        self.log_location = log_location
        self.crashes = 0
        self._previous: ExceptHook | None = None

    def install(self) -> None:
        self._previous = sys.excepthook
        sys.excepthook = self.handle

    def uninstall(self) -> None:
        if self._previous is not None:
            sys.excepthook = self._previous
            self._previous = None

    def handle(self, kind: type[BaseException], error: BaseException, tb: TracebackType | None) -> None:
        self.crashes += 1
        _log.critical("Unexpected error (a bug)", exc_info=(kind, error, tb))
        if not self.show_dialog or QApplication.instance() is None:
            return
        box = QMessageBox(QMessageBox.Icon.Critical, "desktop-chat hit a bug", "")
        box.setText("Something went wrong inside desktop-chat. What you were doing may not have finished.")
        where = f" The log in {self.log_location} has the details." if self.log_location else ""
        box.setInformativeText("Please report it with the details below." + where)
        box.setDetailedText("".join(traceback.format_exception(kind, error, tb)))
        box.exec()
