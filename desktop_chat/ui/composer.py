"""The composer: a growing multi-line editor where Enter sends and Shift+Enter starts a new line.

Sending never waits for the network: the text is checked against the same limits the database enforces,
handed to the bridge and cleared at once; the store's outbox does the rest. A failure to even queue the
message (rare: the outbox disk is full) comes back as an inline error with the text restored.
"""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtGui import QKeyEvent, QResizeEvent, QShowEvent
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPlainTextEdit, QToolButton, QVBoxLayout, QWidget

from desktop_chat.errors import InvalidInput
from desktop_chat.models import MAX_MESSAGE_CHARS, Message, MessageId, validate_message_text
from desktop_chat.ui.timeline_view import is_jump_to_newest

# The counter appears when this many characters are left, so that it never distracts in normal use.
COUNTER_MARGIN = 1000
MAX_VISIBLE_LINES = 8
# While the user keeps typing, "typing" is repeated this often (ms) so that others' indicators stay on...
TYPING_REFRESH_MS = 4000
# ...and it is withdrawn after this long without a keystroke.
TYPING_IDLE_MS = 5000


class MessageEdit(QPlainTextEdit):
    """The text field. Enter submits, Shift+Enter inserts a line break, Esc cancels an edit.

    Signals:
        submitted(): Enter was pressed without Shift.
        cancelled(): Esc was pressed.
        jump_to_newest(): Ctrl+End was pressed (the timeline should show the newest message).
        reply_step(int): Ctrl+Up (-1: reply to the message before) or Ctrl+Down (+1: the one after).
    """

    submitted = Signal()
    cancelled = Signal()
    jump_to_newest = Signal()
    reply_step = Signal(int)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        modifiers = event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
        if modifiers == Qt.KeyboardModifier.ControlModifier and event.key() in (Qt.Key.Key_Up, Qt.Key.Key_Down):
            # Reply with the keyboard: Ctrl+Up picks the newest message, again the one before it.
            self.reply_step.emit(-1 if event.key() == Qt.Key.Key_Up else 1)
            event.accept()
            return
        if is_jump_to_newest(event):
            # The composer always has the focus, so the timeline's Ctrl+End must work from here too.
            super().keyPressEvent(event)
            self.jump_to_newest.emit()
            return
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            modifiers = event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
            if modifiers == Qt.KeyboardModifier.NoModifier:
                self.submitted.emit()
                event.accept()
                return
            if modifiers & Qt.KeyboardModifier.ShiftModifier:
                self.insertPlainText("\n")
                event.accept()
                return
        if event.key() == Qt.Key.Key_Escape:
            self.cancelled.emit()
            event.ignore()  # let a dialog or window see Esc too
            return
        super().keyPressEvent(event)


class Composer(QFrame):
    """Write, send and edit messages.

    Args:
        parent: Qt parent.

    Signals:
        send_requested(str): Text to send (already checked against the limits).
        reply_submitted(str, object): Text to send as a reply to the ``MessageId`` shown in the banner.
        reply_step(int): Ctrl+Up / Ctrl+Down: reply to the message before (-1) or after (+1) the current one.
        edit_submitted(object, str): ``(MessageId, new text)`` for a message being edited.
        typing_changed(bool): The user started or stopped typing.
    """

    send_requested = Signal(str)
    reply_submitted = Signal(str, object)
    reply_step = Signal(int)
    edit_submitted = Signal(object, str)
    typing_changed = Signal(bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("composer")
        self._editing: MessageId | None = None
        self._replying: MessageId | None = None
        self._reply_text = ""
        self._typing = False

        self.reply_banner = QFrame(self)
        self.reply_banner.setObjectName("replyBanner")
        self.reply_label = QLabel(self.reply_banner)
        self.reply_label.setObjectName("replyLabel")
        self.reply_label.setAccessibleName("Replying to")
        self.reply_cancel = QToolButton(self.reply_banner)
        self.reply_cancel.setObjectName("replyCancel")
        self.reply_cancel.setText("✕")
        self.reply_cancel.setToolTip("Cancel the reply (Esc)")
        self.reply_cancel.setAccessibleName("Cancel the reply")
        self.reply_cancel.setAutoRaise(True)
        self.reply_cancel.clicked.connect(self.cancel_reply)
        banner = QHBoxLayout(self.reply_banner)
        banner.setContentsMargins(0, 0, 0, 0)
        banner.addWidget(self.reply_label, 1)
        banner.addWidget(self.reply_cancel)
        self.reply_banner.hide()

        self.edit_banner = QLabel(self)
        self.edit_banner.setObjectName("editBanner")
        self.edit_banner.setText("Editing message — Enter saves, Esc cancels")
        self.edit_banner.hide()

        self.editor = MessageEdit(self)
        self.editor.setObjectName("messageEdit")
        self.editor.setPlaceholderText("Write a message…")
        self.editor.setAccessibleName("Message")
        self.editor.setTabChangesFocus(True)
        self.editor.setFrameShape(QFrame.Shape.NoFrame)
        self.editor.submitted.connect(self.submit)
        self.editor.cancelled.connect(self._escape)
        self.editor.reply_step.connect(self.reply_step)
        self.editor.textChanged.connect(self._on_text_changed)

        self.send_button = QToolButton(self)
        self.send_button.setObjectName("sendButton")
        self.send_button.setText("Send")
        self.send_button.setAccessibleName("Send message")
        self.send_button.setToolTip("Send (Enter) — new line with Shift+Enter")
        self.send_button.setEnabled(False)
        self.send_button.clicked.connect(self.submit)

        self.counter = QLabel(self)
        self.counter.setObjectName("charCounter")
        self.counter.setAccessibleName("Characters")
        self.counter.hide()

        self.error_label = QLabel(self)
        self.error_label.setObjectName("composerError")
        self.error_label.setWordWrap(True)
        self.error_label.setAccessibleName("Message error")
        self.error_label.hide()

        self._idle = QTimer(self)
        self._idle.setSingleShot(True)
        self._idle.setInterval(TYPING_IDLE_MS)
        self._idle.timeout.connect(lambda: self._set_typing(False))
        self._refresh = QTimer(self)
        self._refresh.setInterval(TYPING_REFRESH_MS)
        self._refresh.timeout.connect(lambda: self.typing_changed.emit(True))

        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.editor, 1)
        row.addWidget(self.send_button, 0, Qt.AlignmentFlag.AlignBottom)
        footer = QHBoxLayout()
        footer.setContentsMargins(0, 0, 0, 0)
        footer.addWidget(self.error_label, 1)
        footer.addWidget(self.counter, 0, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop)
        layout = QVBoxLayout(self)
        unit = max(3, self.fontMetrics().height() // 3)
        layout.setContentsMargins(unit * 3, unit * 2, unit * 3, unit * 2)
        layout.setSpacing(unit)
        layout.addWidget(self.edit_banner)
        layout.addWidget(self.reply_banner)
        layout.addLayout(row)
        layout.addLayout(footer)
        self._fit_height()

    # --- public --------------------------------------------------------------------------------------
    @property
    def text(self) -> str:
        return self.editor.toPlainText()

    @property
    def editing(self) -> MessageId | None:
        return self._editing

    @property
    def replying_to(self) -> MessageId | None:
        """The message the next send answers, if any."""
        return self._replying

    def start_reply(self, message: Message, sender: str) -> None:
        """Answer ``message`` (from ``sender``): "Replying to …" shows above the text until sent or Esc."""
        if self._editing is not None:
            self.cancel_edit()
        self._replying = message.id
        quoted = " ".join(message.content.split())
        self._reply_text = f"Replying to {sender}: {quoted}"
        self.reply_label.setToolTip(message.content)
        self.reply_banner.show()
        self._elide_reply()
        self.editor.setFocus()

    def cancel_reply(self) -> None:
        if self._replying is None:
            return
        self._replying = None
        self.reply_banner.hide()
        self.editor.setFocus()

    def _escape(self) -> None:
        # Esc undoes the innermost thing: an edit first, then a reply.
        if self._editing is not None:
            self.cancel_edit()
        else:
            self.cancel_reply()

    def _elide_reply(self) -> None:
        """One line, however long the original: cut with "…" to the composer's width."""
        line = self.fontMetrics().height()
        width = max(line * 6, self.width() - self.reply_cancel.sizeHint().width() - line * 3)
        metrics = self.reply_label.fontMetrics()
        self.reply_label.setText(metrics.elidedText(self._reply_text, Qt.TextElideMode.ElideRight, width))

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if self._replying is not None:
            self._elide_reply()

    def set_text(self, text: str) -> None:
        self.editor.setPlainText(text)
        self.editor.moveCursor(self.editor.textCursor().MoveOperation.End)

    def submit(self) -> None:
        """Check the text and hand it on; errors stay inline and keep the text."""
        text = self.text
        if not text.strip():
            return
        try:
            validate_message_text(text)
        except InvalidInput as error:
            self.show_error(error.message)
            return
        self.clear_error()
        if self._editing is not None:
            message_id = self._editing
            self.cancel_edit()
            self.edit_submitted.emit(message_id, text)
            return
        self.editor.clear()
        self._set_typing(False)
        reply_to = self._replying
        if reply_to is not None:
            self._replying = None
            self.reply_banner.hide()
            self.reply_submitted.emit(text, reply_to)
            return
        self.send_requested.emit(text)

    def start_edit(self, message: Message) -> None:
        self._editing = message.id
        self.edit_banner.show()
        self._label_button()
        self.set_text(message.content)
        self.editor.setFocus()

    def cancel_edit(self) -> None:
        if self._editing is None:
            return
        self._editing = None
        self.edit_banner.hide()
        self._label_button()
        self.editor.clear()

    def _label_button(self) -> None:
        if self._editing is None:
            self.send_button.setText("Send")
            self.send_button.setAccessibleName("Send message")
            self.send_button.setToolTip("Send (Enter) — new line with Shift+Enter")
        else:
            self.send_button.setText("Save")
            self.send_button.setAccessibleName("Save the edited message")
            self.send_button.setToolTip("Save the edit (Enter) — Esc cancels")

    def show_error(self, text: str) -> None:
        self.error_label.setText(text)
        self.error_label.show()

    def clear_error(self) -> None:
        self.error_label.clear()
        self.error_label.hide()

    def give_back(self, text: str) -> None:
        """Put ``text`` back after a failed send, unless the user already typed something new."""
        if not self.text.strip():
            self.set_text(text)

    def reset(self) -> None:
        """Empty the composer for another chat."""
        self._editing = None
        self._replying = None
        self.reply_banner.hide()
        self.edit_banner.hide()
        self._label_button()
        self.editor.clear()
        self.clear_error()
        self._set_typing(False)

    def sizeHint(self) -> QSize:
        hint = super().sizeHint()
        return QSize(hint.width(), self.minimumSizeHint().height())

    # --- internals -----------------------------------------------------------------------------------
    def _on_text_changed(self) -> None:
        text = self.text
        length = len(text)
        remaining = MAX_MESSAGE_CHARS - length
        if remaining <= COUNTER_MARGIN:
            self.counter.setText(f"{length:,} / {MAX_MESSAGE_CHARS:,}")
            self.counter.setProperty("over", remaining < 0)
            self.counter.style().unpolish(self.counter)
            self.counter.style().polish(self.counter)
            self.counter.show()
        else:
            self.counter.hide()
        self.send_button.setEnabled(bool(text.strip()) and remaining >= 0)
        if self.error_label.isVisible() and remaining >= 0:
            self.clear_error()
        self._fit_height()
        if text and self._editing is None:
            self._set_typing(True)
            self._idle.start()
        elif not text:
            self._set_typing(False)

    def _set_typing(self, typing: bool) -> None:
        if typing == self._typing:
            return
        self._typing = typing
        if typing:
            self._refresh.start()
        else:
            self._refresh.stop()
            self._idle.stop()
        self.typing_changed.emit(typing)

    def _fit_height(self) -> None:
        """Grow with the text up to MAX_VISIBLE_LINES lines, then scroll."""
        editor = self.editor
        wanted = max(1, round(editor.document().size().height()))  # lines, wrapped ones included
        lines = min(MAX_VISIBLE_LINES, wanted)
        chrome = max(0, editor.height() - editor.viewport().height())  # frame, padding, margins
        text = lines * editor.fontMetrics().lineSpacing() + round(editor.document().documentMargin() * 2)
        policy = Qt.ScrollBarPolicy.ScrollBarAsNeeded if wanted > lines else Qt.ScrollBarPolicy.ScrollBarAlwaysOff
        editor.setVerticalScrollBarPolicy(policy)
        editor.setFixedHeight(text + chrome)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self._fit_height()  # the frame's size is only known once styled
