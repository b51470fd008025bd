"""The crash handler logs a bug with its traceback and counts it (the smoke test exits 1 on any)."""

from __future__ import annotations

import logging
import sys

import pytest

from desktop_chat.ui.crash import CrashHandler


def test_a_bug_is_logged_counted_and_the_old_hook_comes_back(caplog: pytest.LogCaptureFixture) -> None:
    previous = sys.excepthook
    handler = CrashHandler(show_dialog=False)
    handler.install()
    try:
        assert sys.excepthook == handler.handle
        try:
            raise KeyError("no such chat")
        except KeyError as error:
            with caplog.at_level(logging.CRITICAL, logger="desktop_chat.crash"):
                handler.handle(type(error), error, error.__traceback__)
    finally:
        handler.uninstall()
    assert sys.excepthook is previous
    assert handler.crashes == 1
    record = caplog.records[-1]
    assert record.getMessage() == "Unexpected error (a bug)"
    assert record.exc_info is not None and record.exc_info[0] is KeyError
