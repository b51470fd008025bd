"""PySide6 windows, item models and delegates; with ``desktop_chat.app``, the only code that imports Qt.

Where things are:

- ``bridge``: ``StoreBridge``, the widgets' only way to the data layer (qasync async slots, signals).
- ``session``: which window a user sees (sign-in or main), following the session.
- ``sign_in``, ``main_window``, ``chat_list``, ``chat_panel``, ``composer``, ``dialogs``, ``status_bar``,
  ``diagnostics``, ``settings_dialog``: the windows and their parts.
- ``live_model`` (a windowed Qt mirror of a ``LiveList``), ``chat_list_model``, ``timeline_model``: models.
- ``timeline_delegate`` and ``timeline_view``: painted messages and the anchored scrolling list.
- ``notifications``, ``theme``, ``crash``, ``text``: tray notifications, colours and resources, the crash
  dialog, and the words the UI uses.
"""
