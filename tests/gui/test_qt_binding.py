"""The installed Qt binding keeps Python's reference counts straight (PySide6 6.12.0 on Python 3.11 did not)."""

from __future__ import annotations

import sys

from PySide6.QtCore import QObject


def test_void_methods_do_not_drop_references_to_none() -> None:
    # PySide6 6.12.0 forgot to take a reference to None when a void method returned, so every call such as
    # setObjectName() took one away; a running app died with "deallocating None" after a few thousand calls.
    target = QObject()
    before = sys.getrefcount(None)
    for _ in range(1000):
        target.setObjectName("probe")
    assert sys.getrefcount(None) - before > -100
