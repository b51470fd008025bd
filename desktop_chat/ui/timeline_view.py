"""``TimelineView``: the scrolling list of messages, keeping the reader's place.

What it guarantees:

- **Anchoring.** Before any change to the rows (older page prepended, a row removed, a height changed,
  the width changed) the view notes which messages are visible and where; after the next layout it
  scrolls so that the same message sits at the same height. Reading never jumps.
- **Following.** If the reader was at the bottom, new messages scroll into view. Otherwise nothing moves
  and a "N new messages" button appears; it jumps to the newest message.
- **History on demand.** Near the top the model may fetch (``canFetchMore``/``fetchMore``); near the
  bottom of a window that does not reach the newest rows, the window grows downwards, and after a jump to
  an old message (the timeline a detached window, ``TimelineModel.has_newer``) newer pages load there.
  Rows that come with a newer page are history, not new messages, and the view is never "at the bottom"
  of a detached window, so it does not follow them down. Ctrl+End and the jump button ask for the newest
  messages instead (``live_end_requested``).
- **Jumping.** ``scroll_to_message`` centres a message and marks it for a moment (an outline painted over
  its bubble; the delegate's painting is not touched).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial

from PySide6.QtCore import QEvent, QModelIndex, QPersistentModelIndex, QPoint, Qt, QTimer, Signal
from PySide6.QtGui import (
    QColor,
    QContextMenuEvent,
    QFont,
    QGuiApplication,
    QHelpEvent,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPen,
    QResizeEvent,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QListView,
    QMenu,
    QPushButton,
    QStyle,
    QToolButton,
    QToolTip,
    QWidget,
    QWidgetAction,
)

from desktop_chat.models import DeliveryState, Message, MessageId, ShownReaction
from desktop_chat.ui.emoji_picker import FREQUENT, EmojiPicker
from desktop_chat.ui.text import plural
from desktop_chat.ui.theme import LIGHT, Colors
from desktop_chat.ui.timeline_delegate import Action, MessageDelegate, Target
from desktop_chat.ui.timeline_model import Quote, Receipt, TimelineModel

PAGE = 50
HIGHLIGHT_MS = 2500  # how long a message jumped to stays marked


def is_jump_to_newest(event: QKeyEvent) -> bool:
    """Ctrl+End: jump to the newest message (from the list or from the composer)."""
    return event.key() == Qt.Key.Key_End and event.modifiers() == Qt.KeyboardModifier.ControlModifier


@dataclass(slots=True)
class _Anchor:
    at_bottom: bool
    # Visible messages and the viewport y of each one's bubble, top to bottom; the first that survives wins.
    candidates: list[tuple[MessageId, int]] = field(default_factory=list)
    # The last row on screen when captured, kept up to date through the burst of changes: rows inserted
    # after it are "new below", and nobody has to ask the (stale) layout mid-burst.
    last_visible: int = -1


class TimelineView(QListView):
    """The message list of the open chat.

    Args:
        model: The timeline model to show.
        colors: Custom colours for the delegate.
        parent: Qt parent.

    Signals:
        retry_requested(object): The user asked to send a failed message (``MessageId``) again.
        discard_requested(object): The user asked to drop a failed or pending message (``MessageId``).
        edit_requested(object): The user wants to edit one of their messages (``Message``).
        delete_requested(object): The user wants to delete one of their messages (``Message``).
        visible_rows_changed(): Other messages are now on screen (scrolled, rows added, resized).
        reply_requested(object): The user wants to answer a message (``Message``).
        reaction_toggled(object, str): The user picked a reaction for a message, or clicked one under it
            (``MessageId``, emoji): add it, or take the user's own back.
        jump_requested(object, int): A reply's quote was clicked: show the original, ``(ChatId, seq)``.
            The view scrolls to it itself when it is loaded (``scroll_to_message``); the window does the
            rest (jump to any message).
        live_end_requested(): The user wants the newest messages (Ctrl+End, the jump button) while the
            timeline is a window around an old message; whoever owns the store opens the chat's newest page.
    """

    retry_requested = Signal(object)
    discard_requested = Signal(object)
    edit_requested = Signal(object)
    delete_requested = Signal(object)
    visible_rows_changed = Signal()
    reply_requested = Signal(object)
    reaction_toggled = Signal(object, str)
    jump_requested = Signal(object, int)
    live_end_requested = Signal()

    def __init__(self, model: TimelineModel, colors: Colors = LIGHT, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._model = model
        self._delegate = MessageDelegate(model, colors, self)
        self._anchor: _Anchor | None = None
        self._unseen = 0
        self._following = True
        self._delegate_width = 0
        self._breathing = 0
        self._top_margin = 0
        self._highlight: MessageId | None = None
        self._colors = colors
        self.setItemDelegate(self._delegate)
        self.setModel(model)
        self.setObjectName("timeline")
        self.setAccessibleName("Messages")
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.setUniformItemSizes(False)
        self.setLayoutMode(QListView.LayoutMode.SinglePass)
        self.setMouseTracking(True)
        self.setFrameShape(QListView.Shape.NoFrame)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self._apply_font()

        self._jump = QPushButton(self)
        self._jump.setObjectName("jumpButton")
        self._jump.setAccessibleName("Jump to the newest message")
        self._jump.setCursor(Qt.CursorShape.PointingHandCursor)
        self._jump.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self._jump.clicked.connect(self.scroll_to_newest)
        self._jump.hide()

        # Fetch decisions run after the current event, never inside a layout pass or a model change.
        self._fetch_check = QTimer(self)
        self._fetch_check.setSingleShot(True)
        self._fetch_check.setInterval(0)
        self._fetch_check.timeout.connect(self._check_edges)

        self._highlight_timer = QTimer(self)
        self._highlight_timer.setSingleShot(True)
        self._highlight_timer.setInterval(HIGHLIGHT_MS)
        self._highlight_timer.timeout.connect(self.clear_highlight)

        model.rowsAboutToBeInserted.connect(self._before_rows_change)
        model.rowsAboutToBeMoved.connect(self._before_rows_change)
        model.modelAboutToBeReset.connect(self._before_rows_change)
        model.rowsInserted.connect(self._on_rows_inserted)
        model.rows_arrived_below.connect(self._on_rows_below)
        model.modelReset.connect(self._on_reset)
        model.rowsRemoved.connect(self._update_jump)
        self.verticalScrollBar().valueChanged.connect(self._on_scrolled)
        self.verticalScrollBar().rangeChanged.connect(self._on_range_changed)

    # --- public --------------------------------------------------------------------------------------
    @property
    def message_delegate(self) -> MessageDelegate:
        return self._delegate

    @property
    def unseen(self) -> int:
        """New messages that arrived below while the reader was scrolled up."""
        return self._unseen

    @property
    def jump_button(self) -> QPushButton:
        return self._jump

    def set_colors(self, colors: Colors) -> None:
        self._colors = colors
        self._delegate.set_colors(colors)
        self.viewport().update()

    def is_at_bottom(self) -> bool:
        """Whether the newest message is on screen at the bottom (never in a window around an old one)."""
        bar = self.verticalScrollBar()
        return (
            self._model.rows_below == 0
            and bar.value() >= bar.maximum() - self._delegate_unit()
            and not self._model.has_newer()
        )

    @property
    def highlighted(self) -> MessageId | None:
        """The message marked after a jump to it, until the mark fades."""
        return self._highlight

    def scroll_to_message(self, message_id: MessageId, *, highlight: bool = True) -> bool:
        """Centre the loaded message ``message_id`` on screen (moving the model's window to it) and mark it
        for a moment. False when it is not loaded."""
        model = self._model
        if not model.show_around(message_id):
            return False
        row = model.row_of(message_id)
        if row is None:
            return False
        self.executeDelayedItemsLayout()  # the layout (and any anchor it restores) first, then the scroll
        self._anchor = None
        self.scrollTo(model.index(row, 0), QAbstractItemView.ScrollHint.PositionAtCenter)
        self._following = self.is_at_bottom()
        self._unseen = 0
        if highlight:
            self._highlight = message_id
            self._highlight_timer.start()
            self.viewport().update()
        self._update_jump()
        self._fetch_check.start()
        return True

    def clear_highlight(self) -> None:
        if self._highlight is not None:
            self._highlight = None
            self.viewport().update()

    def scroll_to_newest(self) -> None:
        """Show the newest message at the bottom and follow from now on. In a window around an old message
        the newest ones are not loaded: ``live_end_requested`` asks for them."""
        if self._model.has_newer():
            self.live_end_requested.emit()
            return
        self._model.show_newest()
        self._anchor = _Anchor(at_bottom=True)
        self.scheduleDelayedItemsLayout()
        self.executeDelayedItemsLayout()
        self._unseen = 0
        self._update_jump()

    def scroll_to_first_unread(self) -> bool:
        """Show the "new messages" divider at the top (what the user has not seen starts there); the jump
        button counts the new messages below. False when there is no divider in the loaded rows."""
        model = self._model
        row = model.first_unread_row()
        while row is None and model.has_divider() and model.extend_up(PAGE):
            row = model.first_unread_row()  # loaded, but above the window: bring it in
        if row is None:
            return False
        self.executeDelayedItemsLayout()  # the layout (and any anchor it restores) first, then the scroll
        self._anchor = None
        self.scrollTo(model.index(row, 0), QAbstractItemView.ScrollHint.PositionAtTop)
        self._following = self.is_at_bottom()
        self._count_unseen()
        self._update_jump()
        return True

    def _count_unseen(self) -> None:
        """With a divider, the jump button counts the new messages below the screen."""
        if self._model.unread_after is None:
            return
        if self._model.has_newer():
            # Only part of what is new is loaded (a window around an old message): no count, only "↓".
            self._unseen = 0
            return
        self._unseen = 0 if self.is_at_bottom() else self._model.unread_below(self.visible_rows().stop - 1)

    def visible_rows(self) -> range:
        """View rows at least partly on screen."""
        count = self._model.rowCount()
        if count == 0:
            return range(0)
        top = self.indexAt(QPoint(1, 0))
        bottom = self.indexAt(QPoint(1, self.viewport().height() - 1))
        first = top.row() if top.isValid() else 0
        last = bottom.row() if bottom.isValid() else count - 1
        return range(first, last + 1)

    def newest_visible_seq(self) -> int | None:
        """The highest ``seq`` among the messages on screen (what "read up to" means)."""
        for row in reversed(self.visible_rows()):
            seq = self._model.item(row).seq
            if seq is not None:
                return seq
        return None

    # --- anchoring -----------------------------------------------------------------------------------
    def _before_rows_change(self, *_: object) -> None:
        self._capture_anchor()

    def _capture_anchor(self, *, layout_first: bool = True) -> None:
        if self._anchor is not None:
            return  # the first capture of a burst describes the layout the reader saw
        if layout_first:
            self.executeDelayedItemsLayout()  # measure against an up-to-date layout
        visible = self.visible_rows()
        anchor = _Anchor(at_bottom=self.is_at_bottom(), last_visible=visible.stop - 1)
        if not anchor.at_bottom:
            rows = [(self._model.item(row).id, self._bubble_top(row)) for row in visible]
            # What the reader reads is the first bubble that starts on screen; a bubble cut off at the top
            # is only a fallback (it may grow or shrink above the edge when the width changes).
            anchor.candidates = [row for row in rows if row[1] >= 0] + [row for row in rows if row[1] < 0]
        self._anchor = anchor

    def _bubble_top(self, row: int) -> int:
        # The bubble, not the row: a row's day separator comes and goes with the row above it.
        return self.visualRect(self._model.index(row, 0)).top() + round(self._delegate.geometry(row).bubble.top())

    def _sit_at_bottom(self) -> None:
        """A chat shorter than the screen sits at its bottom, next to the composer, as chats do: the room
        left over goes above the first message (as a top margin of the list's viewport)."""
        breathing = self._breathing
        room = self.height() - 2 * self.frameWidth() - 2 * breathing
        used = 0
        for row in range(self._model.rowCount()):
            used += self._delegate.geometry(row).size.height()
            if used >= room:
                break
        top = breathing + max(0, room - used)
        if top != self._top_margin:
            self._top_margin = top
            self.setViewportMargins(0, top, 0, breathing)

    def doItemsLayout(self) -> None:
        super().doItemsLayout()
        self._sit_at_bottom()
        anchor, self._anchor = self._anchor, None
        if anchor is None:
            return
        bar = self.verticalScrollBar()
        if anchor.at_bottom:
            bar.setValue(bar.maximum())
            return
        for key, top in anchor.candidates:
            row = self._model.row_of(key)
            if row is not None:
                bar.setValue(bar.value() + self._bubble_top(row) - top)
                return

    def rowsAboutToBeRemoved(self, parent: QModelIndex | QPersistentModelIndex, start: int, end: int) -> None:
        self._capture_anchor()
        if self._anchor is not None and start <= self._anchor.last_visible:
            self._anchor.last_visible -= min(end, self._anchor.last_visible) - start + 1
        super().rowsAboutToBeRemoved(parent, start, end)

    def dataChanged(
        self,
        top_left: QModelIndex | QPersistentModelIndex,
        bottom_right: QModelIndex | QPersistentModelIndex,
        roles: Sequence[int] = (),
    ) -> None:
        # A changed message may change height (a failure line, an edit); only then is a layout needed.
        # The old height is the delegate's cached one: QListView's visualRect asks the delegate afresh.
        rows = range(top_left.row(), bottom_right.row() + 1)
        old_heights = [self._delegate.cached_height(self._model.item(row).id) for row in rows]
        new_heights = [self._delegate.geometry(row).size.height() for row in rows]
        if old_heights != new_heights:
            # The rows have not moved, only grown or shrunk: the current layout still says where they are.
            self._capture_anchor(layout_first=False)
            self.scheduleDelayedItemsLayout()
        super().dataChanged(top_left, bottom_right, list(roles))

    # --- reacting to rows ----------------------------------------------------------------------------
    def _on_rows_inserted(self, _parent: QModelIndex, first: int, last: int) -> None:
        # No geometry here: the layout is stale until the burst of changes is over, and asking it (indexAt)
        # would lay out a thousand rows now and again at the end.
        anchor = self._anchor
        if anchor is not None and not anchor.at_bottom:
            if first > anchor.last_visible and self._model.loading_newer:
                pass  # a newer page of history below a window around an old message: nothing new
            elif first > anchor.last_visible:
                self._unseen += sum(
                    1 for row in range(first, last + 1) if not self._model.is_own(self._model.item(row))
                )
            else:
                anchor.last_visible += last - first + 1
        self._update_jump()
        self._fetch_check.start()

    def _on_rows_below(self, count: int) -> None:
        self._unseen += count
        self._update_jump()

    def _on_reset(self) -> None:
        self._update_jump()
        self._fetch_check.start()

    def _on_scrolled(self, _value: int) -> None:
        at_bottom = self.is_at_bottom()
        self._following = at_bottom
        if at_bottom:
            self._unseen = 0
        else:
            self._count_unseen()
        self._report_focus()
        self._update_jump()
        self._fetch_check.start()
        self.visible_rows_changed.emit()

    def _on_range_changed(self, _low: int, _high: int) -> None:
        self._update_jump()
        self._fetch_check.start()
        self.visible_rows_changed.emit()

    def _check_edges(self) -> None:
        bar = self.verticalScrollBar()
        reach = max(self.viewport().height(), 1)
        near_top = bar.value() <= reach
        self._model.set_older_wanted(near_top)
        root = QModelIndex()
        if near_top and self._model.canFetchMore(root):
            self._model.fetchMore(root)
        if bar.maximum() - bar.value() <= reach:
            self._model.fetch_newer()  # rows below the window, or the next newer page after a jump

    def _report_focus(self) -> None:
        index = self.indexAt(QPoint(1, self.viewport().height() // 2))
        if index.isValid():
            self._model.set_focus(self._model.item(index.row()).id)

    def _update_jump(self) -> None:
        bar = self.verticalScrollBar()
        far = (
            bar.maximum() - bar.value() > self.viewport().height()
            or self._model.rows_below > 0
            or self._model.has_newer()
        )
        show = self._unseen > 0 or far
        if show:
            text = f"↓  {plural(self._unseen, 'new message')}" if self._unseen else "↓"
            if text != self._jump.text():
                self._jump.setText(text)
                self._jump.adjustSize()
                self._place_jump()
        self._jump.setVisible(show)

    def _place_jump(self) -> None:
        margin = self._delegate_unit() * 4
        size = self._jump.sizeHint()
        self._jump.resize(size)
        viewport = self.viewport().geometry()
        self._jump.move(viewport.right() - size.width() - margin, viewport.bottom() - size.height() - margin)
        self._jump.raise_()

    def _delegate_unit(self) -> int:
        return max(2, self.fontMetrics().height() // 3)

    # --- the mark on a message jumped to --------------------------------------------------------------
    def paintEvent(self, event: QPaintEvent) -> None:
        super().paintEvent(event)
        if self._highlight is None:
            return
        row = self._model.row_of(self._highlight)
        if row is None:
            return
        rect = self.visualRect(self._model.index(row, 0))
        if not rect.intersects(self.viewport().rect()):
            return
        bubble = self._delegate.geometry(row).bubble.translated(rect.topLeft())
        unit = self._delegate_unit()
        accent = QColor(self._colors.accent)
        fill = QColor(accent)
        fill.setAlpha(40)
        painter = QPainter(self.viewport())
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(QPen(accent, max(2, unit // 2)))
        painter.setBrush(fill)
        painter.drawRoundedRect(bubble.adjusted(-unit, -unit, unit, unit), unit * 3, unit * 3)
        painter.end()

    # --- geometry and font ---------------------------------------------------------------------------
    def resizeEvent(self, event: QResizeEvent) -> None:
        # Rows are as wide as the view minus a scroll bar, shown or not, so that a scroll bar appearing
        # does not re-wrap every message (and make it disappear again).
        extent = self.style().pixelMetric(QStyle.PixelMetric.PM_ScrollBarExtent, None, self)
        width = max(1, self.width() - 2 * self.frameWidth() - extent)
        following = self._following
        if width != self._delegate_width:
            self._capture_anchor()
            self._delegate.set_width(width)
            self._delegate_width = width
            self.scheduleDelayedItemsLayout()
        super().resizeEvent(event)
        self._sit_at_bottom()
        if following and self._anchor is None:
            # Only the height changed (the composer grew, the window was resized): stay at the bottom.
            bar = self.verticalScrollBar()
            bar.setValue(bar.maximum())
        self._place_jump()

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.FontChange:
            self._capture_anchor()
            self._apply_font()
            self.scheduleDelayedItemsLayout()
        super().changeEvent(event)

    def _apply_font(self) -> None:
        self._delegate.set_font(self.font())
        breathing = self._breathing = self.fontMetrics().height() // 2  # between the last bubble and the composer
        self._top_margin = breathing
        self.setViewportMargins(0, breathing, 0, breathing)
        self._delegate.set_width(self._delegate_width)
        self.verticalScrollBar().setSingleStep(self.fontMetrics().height() * 3)

    # --- mouse and keyboard --------------------------------------------------------------------------
    def _action_under(self, position: QPoint) -> tuple[int, Action] | None:
        index = self.indexAt(position)
        if not index.isValid():
            return None
        action = self._delegate.action_at(index.row(), position - self.visualRect(index).topLeft())
        return None if action is None else (index.row(), action)

    def _target_under(self, position: QPoint) -> tuple[int, Target, object] | None:
        index = self.indexAt(position)
        if not index.isValid():
            return None
        target = self._delegate.target_at(index.row(), position - self.visualRect(index).topLeft())
        return None if target is None else (index.row(), target[0], target[1])

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        hit = self._action_under(event.position().toPoint())
        hover = None if hit is None else (self._model.item(hit[0]).id, hit[1])
        if self._delegate.set_hover(hover):
            self.viewport().update()
        target = self._target_under(event.position().toPoint())
        clickable = target is not None and target[1] is not Target.SEEN
        cursor = Qt.CursorShape.PointingHandCursor if hit or clickable else Qt.CursorShape.ArrowCursor
        self.viewport().setCursor(cursor)
        super().mouseMoveEvent(event)

    def leaveEvent(self, event: QEvent) -> None:
        if self._delegate.set_hover(None):
            self.viewport().update()
        super().leaveEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            hit = self._action_under(event.position().toPoint())
            if hit is not None:
                row, action = hit
                message_id = self._model.item(row).id
                if action is Action.RETRY:
                    self.retry_requested.emit(message_id)
                else:
                    self.discard_requested.emit(message_id)
                event.accept()
                return
            target = self._target_under(event.position().toPoint())
            if target is not None and self.activate(target[0], target[1], target[2]):
                event.accept()
                return
        super().mouseReleaseEvent(event)

    def activate(self, row: int, kind: Target, value: object) -> bool:
        """Act on a click on a quote (jump) or a reaction (toggle it); False for what does nothing."""
        message = self._model.item(row)
        if kind is Target.QUOTE and isinstance(value, Quote):
            self.show_original(value)
            return True
        if kind is Target.REACTION and isinstance(value, ShownReaction):
            if message.delivery is DeliveryState.SENT and not message.deleted:
                self.reaction_toggled.emit(message.id, value.emoji)
            return True
        return False

    def show_original(self, quote: Quote) -> None:
        """Scroll to a reply's original if it is loaded, and ask for the jump either way (by seq)."""
        chat_id = self._model.chat_id
        self.scroll_to_message(quote.message_id)
        if chat_id is not None and quote.seq is not None:
            self.jump_requested.emit(chat_id, quote.seq)

    def viewportEvent(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ToolTip and isinstance(event, QHelpEvent):
            target = self._target_under(event.pos())
            tip = None if target is None else self.tooltip_for(target[1], target[2])
            if tip:
                QToolTip.showText(event.globalPos(), tip, self)
                return True
        return super().viewportEvent(event)

    @staticmethod
    def tooltip_for(kind: Target, value: object) -> str | None:
        """Who reacted, who has seen it, or what a quote leads to."""
        if kind is Target.REACTION and isinstance(value, ShownReaction):
            names = list(value.names)
            more = value.count - len(names)
            who = ", ".join(names) + (f" and {more} more" if more > 0 and names else "")
            if not names:
                who = plural(value.count, "person", "people")
            return f"{value.emoji} {who}"
        if kind is Target.SEEN and isinstance(value, Receipt):
            return "Seen by " + ", ".join(value.readers)
        if kind is Target.QUOTE and isinstance(value, Quote):
            return None if value.missing else "Show the original message"
        return None

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if is_jump_to_newest(event):
            self.scroll_to_newest()
            return
        super().keyPressEvent(event)

    def contextMenuEvent(self, event: QContextMenuEvent) -> None:
        index = self.indexAt(event.pos())
        if not index.isValid():
            return
        menu = self.menu_for(self._model.item(index.row()))
        if not menu.isEmpty():
            menu.exec(event.globalPos())

    def _reaction_row(self, menu: QMenu, message: Message) -> QWidgetAction:
        """The frequent reactions as one row of buttons at the top of the message menu (one click reacts)."""
        action = QWidgetAction(menu)
        row = QWidget(menu)
        row.setObjectName("reactionRow")
        row.setAccessibleName("React")
        layout = QHBoxLayout(row)
        unit = max(2, self.fontMetrics().height() // 4)
        layout.setContentsMargins(unit * 2, unit, unit * 2, unit)
        layout.setSpacing(unit)
        font = QFont(self.font())
        font.setPointSizeF(font.pointSizeF() * 1.35)
        for emoji in FREQUENT:
            button = QToolButton(row)
            button.setText(emoji)
            button.setFont(font)
            button.setAutoRaise(True)
            button.setToolTip(f"React with {emoji}")
            button.setAccessibleName(f"React with {emoji}")
            button.clicked.connect(partial(self._react_from_menu, menu, message.id, emoji))
            layout.addWidget(button)
        action.setDefaultWidget(row)
        return action

    def _react_from_menu(self, menu: QMenu, message_id: MessageId, emoji: str) -> None:
        menu.close()
        self.reaction_toggled.emit(message_id, emoji)

    def pick_reaction(self, message: Message) -> EmojiPicker:
        """Open the full emoji picker for ``message`` (returned, so tests can choose in it)."""
        picker = EmojiPicker(self)
        picker.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        picker.chosen.connect(lambda emoji: self.reaction_toggled.emit(message.id, emoji))
        picker.open()
        return picker

    def menu_for(self, message: Message) -> QMenu:
        """The context menu of ``message`` (separate so that tests can inspect it)."""
        menu = QMenu(self)
        menu.setAccessibleName("Message actions")
        own = self._model.is_own(message)
        if message.delivery is DeliveryState.FAILED:
            menu.addAction("Retry", lambda: self.retry_requested.emit(message.id))
        if message.delivery is not DeliveryState.SENT:
            menu.addAction("Discard", lambda: self.discard_requested.emit(message.id))
        if message.delivery is DeliveryState.SENT and not message.deleted:
            menu.addAction(self._reaction_row(menu, message))
            menu.addAction("Reply", lambda: self.reply_requested.emit(message))
            menu.addAction("More reactions…", lambda: self.pick_reaction(message))
        if not message.deleted:
            menu.addAction("Copy text", lambda: QGuiApplication.clipboard().setText(message.content))
        if own and message.delivery is DeliveryState.SENT and not message.deleted:
            menu.addSeparator()
            menu.addAction("Edit…", lambda: self.edit_requested.emit(message))
            menu.addAction("Delete…", lambda: self.delete_requested.emit(message))
        return menu
