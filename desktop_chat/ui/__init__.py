"""PySide6 windows, item models and delegates; the only package that imports Qt."""
