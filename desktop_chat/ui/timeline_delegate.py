"""``MessageDelegate``: paints messages as bubbles, with no widget per message.

Each row may carry a day separator, then a bubble (own messages on the right in the accent tint, others'
on the left under the sender's name and avatar), the time, "edited", and for own messages the delivery
state: a clock while pending, a tick once sent, and for a failed message a line with the reason and two
links, Retry and Discard, whose areas ``action_at`` reports for the view's clicks.

Every size comes from font metrics (no fixed pixels), so the layout scales with the font and the screen.
The geometry of a message, including its laid-out text, is cached per message: ``LiveList`` rows are
frozen models, so a changed message is a new object and an identity check is an exact cache test. The
view's layout pass asks for every row's size, so a hit must cost as little Python as possible.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum

from PySide6.QtCore import (
    QLineF,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QPoint,
    QPointF,
    QRect,
    QRectF,
    QSize,
    Qt,
)
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontMetricsF,
    QPainter,
    QPainterPath,
    QPen,
    QTextLayout,
    QTextOption,
)
from PySide6.QtWidgets import QStyledItemDelegate, QStyleOptionViewItem

from desktop_chat.models import DeliveryState, Message, MessageId, ShownReaction
from desktop_chat.ui.text import clock, day_label, initials, written_at
from desktop_chat.ui.theme import LIGHT, Colors
from desktop_chat.ui.timeline_model import (
    DELETED_TEXT,
    Quote,
    Receipt,
    TimelineModel,
    day_of,
    starts_day,
    starts_run,
)

CACHE_LIMIT = 3000
NEW_MESSAGES = "New messages"
_WRAP = QTextOption()
_WRAP.setWrapMode(QTextOption.WrapMode.WrapAtWordBoundaryOrAnywhere)


class Action(StrEnum):
    """A clickable area inside a message row."""

    RETRY = "retry"
    DISCARD = "discard"


class Target(StrEnum):
    """What else in a row answers the mouse: a reply's quote, a reaction chip, "Seen by N"."""

    QUOTE = "quote"  # value: the Quote (click: jump to the original)
    REACTION = "reaction"  # value: the ShownReaction (click: toggle it; hover: who)
    SEEN = "seen"  # value: the Receipt (hover: who)


@dataclass(slots=True)
class _Metrics:
    """Spacing derived from the font, recomputed when the font changes."""

    line: float
    small_line: float
    unit: int
    side: int
    avatar: int
    gap: int
    pad_x: int
    pad_y: int
    radius: float
    run_gap: int
    continuation_gap: int
    day_block: int
    meta_gap: int
    icon: int


@dataclass(slots=True)
class _Geometry:
    """Where everything of one message goes, relative to the row's top-left corner."""

    message: Message
    previous: Message | None
    width: int
    size: QSize
    own: bool
    day: date | None
    divider: bool  # the "new messages" line goes above this message
    show_name: bool
    layout: QTextLayout
    bubble: QRectF
    text_origin: QPointF
    name_origin: QPointF | None
    meta_rect: QRectF
    meta_text: str
    failure_rect: QRectF | None
    actions: dict[Action, QRectF]
    failure_text: str
    extras: tuple[object, ...] = ()  # what besides the message the row shows (quote, reactions, receipt)
    quote: Quote | None = None
    quote_rect: QRectF | None = None
    chips: tuple[tuple[ShownReaction, QRectF], ...] = ()
    receipt: Receipt | None = None
    seen_rect: QRectF | None = None
    seen_text: str = ""


class MessageDelegate(QStyledItemDelegate):
    """Paints the rows of a ``TimelineModel``.

    Args:
        model: The model whose rows this delegate paints (read directly: faster than ``data`` roles).
        colors: The palette's custom colours.
        parent: Qt parent.
    """

    def __init__(self, model: TimelineModel, colors: Colors = LIGHT, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._model = model
        self._colors = colors
        self._width = 0
        self._cache: dict[MessageId, _Geometry] = {}
        self._hover: tuple[MessageId, Action] | None = None
        self._today: date | None = None
        self.set_font(QFont())

    # --- configuration -------------------------------------------------------------------------------
    def set_font(self, font: QFont) -> None:
        self._font = QFont(font)
        self._bold = QFont(font)
        self._bold.setWeight(QFont.Weight.DemiBold)
        self._italic = QFont(font)
        self._italic.setItalic(True)
        self._small = QFont(font)
        self._small.setPointSizeF(max(6.0, font.pointSizeF() * 0.82))
        self._fm = QFontMetricsF(self._font)
        self._small_fm = QFontMetricsF(self._small)
        self._bold_fm = QFontMetricsF(self._bold)
        self._small_bold = QFont(self._small)
        self._small_bold.setWeight(QFont.Weight.DemiBold)
        self._small_bold_fm = QFontMetricsF(self._small_bold)
        self._small_line_bold = self._small_bold_fm.height()
        self._chip_font = QFont(self._font)  # emoji at the text's size: at the small size they are hard to tell apart
        self._chip_fm = QFontMetricsF(self._chip_font)
        line = self._fm.height()
        unit = max(2, round(line / 3))
        self._m = _Metrics(
            line=line,
            small_line=self._small_fm.height(),
            unit=unit,
            side=unit * 3,
            avatar=round(line * 2.2),
            gap=unit * 2,
            pad_x=round(line * 0.75),
            pad_y=max(3, round(line * 0.4)),
            radius=line * 0.75,
            run_gap=unit * 2,
            continuation_gap=max(1, unit // 2),
            day_block=round(line + unit * 5),
            meta_gap=unit * 2,
            icon=max(8, round(self._small_fm.height() * 0.85)),
        )
        self._cache.clear()

    def set_colors(self, colors: Colors) -> None:
        self._colors = colors

    def set_width(self, width: int) -> bool:
        """The row width; returns whether it changed (then every row must be measured again)."""
        if width == self._width:
            return False
        self._width = width
        self._cache.clear()
        return True

    def set_today(self, today: date | None) -> None:
        """Fix the date "Today" refers to (tests and screenshots); None follows the clock."""
        self._today = today

    def forget(self) -> None:
        """Drop every cached geometry (another chat opened)."""
        self._cache.clear()

    def set_hover(self, hover: tuple[MessageId, Action] | None) -> bool:
        """Which action link is under the mouse; returns whether it changed."""
        if hover == self._hover:
            return False
        self._hover = hover
        return True

    # --- Qt ------------------------------------------------------------------------------------------
    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> QSize:
        return self.geometry(index.row()).size

    def paint(
        self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> None:
        geometry = self.geometry(index.row())
        origin = option.rect.topLeft()
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.translate(origin)
        self._paint_row(painter, geometry)
        painter.restore()

    # --- queries for the view ------------------------------------------------------------------------
    def geometry(self, row: int) -> _Geometry:
        """The (cached) geometry of view row ``row``."""
        model = self._model
        message = model.item(row)
        previous = model.item_before(row)
        divider = model.is_first_unread(row)
        cached = self._cache.get(message.id)
        extras = self._extras(message)
        if (
            cached is not None
            and cached.message is message
            and cached.previous is previous
            and cached.divider == divider
            and cached.width == self._effective_width()
            and cached.extras == extras
        ):
            return cached
        geometry = self._measure(message, previous, divider, extras)
        if len(self._cache) >= CACHE_LIMIT:
            # Oldest first: dicts keep insertion order. A quarter at a time keeps this off the hot path.
            for key in list(self._cache)[: CACHE_LIMIT // 4]:
                del self._cache[key]
        self._cache[message.id] = geometry
        return geometry

    def _extras(self, message: Message) -> tuple[object, ...]:
        model = self._model
        if message.reply_to is None and message.id not in model._reactions and message.id not in model._receipts:
            return ()  # the common case, without building anything
        return (model.quote_of(message), model.reactions_of(message.id), model.receipt_of(message))

    def target_at(self, row: int, point: QPoint) -> tuple[Target, object] | None:
        """The quote, reaction chip or "Seen by" at ``point`` (relative to the row), if any."""
        geometry = self.geometry(row)
        where = QPointF(point)
        if geometry.quote_rect is not None and geometry.quote_rect.contains(where) and geometry.quote is not None:
            return (Target.QUOTE, geometry.quote)
        for reaction, rect in geometry.chips:
            if rect.contains(where):
                return (Target.REACTION, reaction)
        if geometry.seen_rect is not None and geometry.seen_rect.contains(where) and geometry.receipt is not None:
            return (Target.SEEN, geometry.receipt)
        return None

    def target_rect(self, row: int, kind: Target, index: int = 0) -> QRect | None:
        """Where a quote, the ``index``-th reaction chip or "Seen by" sits in row ``row`` (tests, screenshots)."""
        geometry = self.geometry(row)
        if kind is Target.QUOTE:
            return None if geometry.quote_rect is None else geometry.quote_rect.toAlignedRect()
        if kind is Target.REACTION:
            return geometry.chips[index][1].toAlignedRect() if index < len(geometry.chips) else None
        return None if geometry.seen_rect is None else geometry.seen_rect.toAlignedRect()

    def cached_height(self, message_id: MessageId) -> int | None:
        """The height last measured for a message (any version of it), or None."""
        cached = self._cache.get(message_id)
        return None if cached is None else cached.size.height()

    def action_at(self, row: int, point: QPoint) -> Action | None:
        """The action link at ``point`` (relative to the row's top-left corner), if any."""
        geometry = self.geometry(row)
        for action, rect in geometry.actions.items():
            if rect.adjusted(-2, -2, 2, 2).contains(QPointF(point)):
                return action
        return None

    def action_rect(self, row: int, action: Action) -> QRect | None:
        """Where ``action`` sits in row ``row`` (relative to the row), or None if the row has none."""
        rect = self.geometry(row).actions.get(action)
        return None if rect is None else rect.toAlignedRect()

    def bubble_rect(self, row: int) -> QRect:
        """The bubble of row ``row``, relative to the row."""
        return self.geometry(row).bubble.toAlignedRect()

    # --- measuring -----------------------------------------------------------------------------------
    def _effective_width(self) -> int:
        return self._width if self._width > 0 else round(self._m.line * 40)

    def _measure(
        self, message: Message, previous: Message | None, divider: bool = False, extras: tuple[object, ...] = ()
    ) -> _Geometry:
        m = self._m
        width = self._effective_width()
        own = self._model.is_own(message)
        day = day_of(message) if starts_day(message, previous) else None
        first_of_run = starts_run(message, previous) or divider
        show_name = first_of_run and not own

        lane = width - 2 * m.side - (0 if own else m.avatar + m.gap)
        bubble_max = max(m.line * 6, min(lane * 0.78, m.line * 38))
        text_max = max(m.line * 3, bubble_max - 2 * m.pad_x)

        deleted = message.deleted
        text = DELETED_TEXT if deleted else message.content
        layout = QTextLayout(text.replace("\n", "\u2028"), self._italic if deleted else self._font)
        layout.setTextOption(_WRAP)
        layout.setCacheEnabled(True)
        layout.beginLayout()
        text_height = 0.0
        text_width = 0.0
        last_width = 0.0
        while True:
            line = layout.createLine()
            if not line.isValid():
                break
            line.setLineWidth(text_max)
            line.setPosition(QPointF(0, text_height))
            text_height += line.height()
            last_width = line.naturalTextWidth()
            text_width = max(text_width, last_width)
        layout.endLayout()

        meta_text = self._meta_text(message)
        meta_width = self._small_fm.horizontalAdvance(meta_text)
        if own:
            meta_width += m.unit + m.icon
        name_width = self._bold_fm.horizontalAdvance(self._model.sender_name(message)) if show_name else 0.0

        y = float((day and m.day_block) or 0)
        if divider:
            y += m.day_block
        y += m.run_gap if first_of_run else m.continuation_gap
        bubble_top = y
        inner = y + m.pad_y
        name_origin = None
        if show_name:
            name_origin = QPointF(0, inner)
            inner += self._bold_fm.height() + m.unit / 2
        quote = extras[0] if extras else None
        assert quote is None or isinstance(quote, Quote)
        quote_box: QRectF | None = None
        quote_width = 0.0
        if quote is not None:
            quote_text_width = max(
                self._small_bold_fm.horizontalAdvance(quote.sender or " "),
                self._small_fm.horizontalAdvance(quote.excerpt),
            )
            quote_width = min(text_max, quote_text_width + 3 * m.unit)
            quote_height = (self._small_line_bold if quote.sender else 0) + m.small_line + m.unit
            quote_box = QRectF(0, inner, quote_width, quote_height)
            inner += quote_height + m.unit
        text_top = inner
        name_width = max(name_width, quote_width)
        if last_width + m.meta_gap + meta_width <= text_max:
            content_width = max(text_width, name_width, last_width + m.meta_gap + meta_width)
            content_bottom = text_top + text_height
            meta_top = content_bottom - m.small_line - max(0.0, (m.line - m.small_line) / 4)
        else:
            content_width = max(text_width, name_width, meta_width)
            meta_top = text_top + text_height
            content_bottom = meta_top + m.small_line
        bubble_width = content_width + 2 * m.pad_x
        bubble_height = content_bottom + m.pad_y - bubble_top
        left = width - m.side - bubble_width if own else m.side + m.avatar + m.gap
        bubble = QRectF(left, bubble_top, bubble_width, bubble_height)
        y = bubble.bottom()
        quote_rect = None
        if quote_box is not None:
            quote_rect = QRectF(
                bubble.left() + m.pad_x, quote_box.top(), bubble.width() - 2 * m.pad_x, quote_box.height()
            )

        reactions = extras[1] if extras else ()
        assert isinstance(reactions, tuple)
        chips: list[tuple[ShownReaction, QRectF]] = []
        if reactions:
            chip_h = self._chip_fm.height() + m.unit
            x = 0.0
            top = y + m.unit
            row_items: list[list[tuple[ShownReaction, float]]] = [[]]
            for reaction in reactions:
                assert isinstance(reaction, ShownReaction)
                w = self._chip_fm.horizontalAdvance(f"{reaction.emoji} {reaction.count}") + 2 * m.unit * 1.5
                if x and x + w > lane:
                    row_items.append([])
                    x = 0.0
                row_items[-1].append((reaction, w))
                x += w + m.unit
            for chip_line in row_items:
                total = sum(w for _, w in chip_line) + m.unit * (len(chip_line) - 1)
                x = bubble.right() - total if own else bubble.left()
                for reaction, w in chip_line:
                    chips.append((reaction, QRectF(x, top, w, chip_h)))
                    x += w + m.unit
                top += chip_h + m.unit / 2
            y = top - m.unit / 2

        receipt = extras[2] if extras else None
        assert receipt is None or isinstance(receipt, Receipt)
        seen_rect = None
        seen_text = ""
        if receipt is not None and receipt.group and receipt.label:
            seen_text = f"Seen by {receipt.count}"
            seen_w = self._small_fm.horizontalAdvance(seen_text)
            seen_rect = QRectF(bubble.right() - seen_w, y + m.unit / 2, seen_w, m.small_line)
            y = seen_rect.bottom()

        failure_rect = None
        actions: dict[Action, QRectF] = {}
        failure_text = ""
        if message.delivery is DeliveryState.FAILED:
            failure_text = f"Not sent: {message.error or 'the server refused it'}"
            top = y + m.unit
            retry_w = self._bold_fm.horizontalAdvance(Action.RETRY.value.title())
            discard_w = self._bold_fm.horizontalAdvance(Action.DISCARD.value.title())
            separator_w = self._fm.horizontalAdvance("  ·  ")
            reason_max = max(m.line * 4, lane - retry_w - discard_w - 2 * separator_w)
            failure_text = self._fm.elidedText(failure_text, Qt.TextElideMode.ElideRight, reason_max)
            reason_w = self._fm.horizontalAdvance(failure_text)
            total = reason_w + separator_w + retry_w + separator_w + discard_w
            x = bubble.right() - total if own else bubble.left()
            failure_rect = QRectF(x, top, reason_w, m.line)
            x += reason_w + separator_w
            actions[Action.RETRY] = QRectF(x, top, retry_w, m.line)
            x += retry_w + separator_w
            actions[Action.DISCARD] = QRectF(x, top, discard_w, m.line)
            y = top + m.line
        height = round(y + m.continuation_gap)
        meta_left = bubble.right() - m.pad_x - meta_width
        return _Geometry(
            message=message,
            previous=previous,
            width=width,
            size=QSize(width, height),
            own=own,
            day=day,
            divider=divider,
            show_name=show_name,
            layout=layout,
            bubble=bubble,
            text_origin=QPointF(bubble.left() + m.pad_x, text_top),
            name_origin=None if name_origin is None else QPointF(bubble.left() + m.pad_x, name_origin.y()),
            meta_rect=QRectF(meta_left, meta_top, meta_width, m.small_line),
            meta_text=meta_text,
            failure_rect=failure_rect,
            actions=actions,
            failure_text=failure_text,
            extras=extras,
            quote=quote,
            quote_rect=quote_rect,
            chips=tuple(chips),
            receipt=receipt,
            seen_rect=seen_rect,
            seen_text=seen_text,
        )

    @staticmethod
    def _meta_text(message: Message) -> str:
        time = clock(written_at(message.id, message.created_at))
        return f"edited  {time}" if message.edited and not message.deleted else time

    # --- painting ------------------------------------------------------------------------------------
    def _paint_row(self, painter: QPainter, g: _Geometry) -> None:
        c, m = self._colors, self._m
        message = g.message
        if g.day is not None:
            self._paint_day(painter, g.day, g.width)
        if g.divider:
            self._paint_divider(painter, m.day_block if g.day is not None else 0, g.width)
        if g.show_name:
            self._paint_avatar(painter, message, g.bubble.top())
        # Bubble.
        fill = c.own_bubble if g.own else c.other_bubble
        if message.delivery is DeliveryState.FAILED:
            fill = _blend(fill, c.danger, 0.10)
        painter.setPen(Qt.PenStyle.NoPen if g.own or c.dark else QPen(c.bubble_border, 1))
        painter.setBrush(fill)
        painter.drawRoundedRect(g.bubble.adjusted(0.5, 0.5, -0.5, -0.5), m.radius, m.radius)
        # Sender name.
        if g.name_origin is not None:
            painter.setFont(self._bold)
            painter.setPen(self._name_color(message))
            painter.drawText(
                QRectF(g.name_origin.x(), g.name_origin.y(), g.bubble.width(), self._bold_fm.height()),
                Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop,
                self._model.sender_name(message),
            )
        if g.quote is not None and g.quote_rect is not None:
            self._paint_quote(painter, g.quote, g.quote_rect, g.own)
        # Text.
        text_color = c.own_text if g.own else c.other_text
        painter.setPen(c.muted if message.deleted else text_color)
        g.layout.draw(painter, g.text_origin)
        # Time, "edited" and the delivery icon.
        painter.setFont(self._small)
        painter.setPen(c.muted)
        meta = QRectF(g.meta_rect)
        if g.own:
            meta.setRight(meta.right() - m.icon - m.unit)
        painter.drawText(meta, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, g.meta_text)
        if g.own:
            icon = QRectF(g.meta_rect.right() - m.icon, 0, m.icon, m.icon)
            icon.moveCenter(QPointF(icon.center().x(), g.meta_rect.center().y()))
            read = g.receipt is not None and g.receipt.read and not g.receipt.group
            self._paint_delivery(painter, message.delivery, icon, read=read)
        for reaction, rect in g.chips:
            self._paint_chip(painter, reaction, rect)
        if g.seen_rect is not None:
            painter.setFont(self._small)
            painter.setPen(c.muted)
            painter.drawText(g.seen_rect, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, g.seen_text)
        # Failure line.
        if g.failure_rect is not None:
            painter.setFont(self._font)
            painter.setPen(c.danger)
            align = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
            painter.drawText(g.failure_rect, align, g.failure_text)
            for action, rect in g.actions.items():
                painter.setPen(c.muted)
                dot = QRectF(rect.left() - self._fm.horizontalAdvance("  ·  "), rect.top(), rect.width(), rect.height())
                painter.drawText(dot, align, "  ·")
                font = QFont(self._bold)
                font.setUnderline(self._hover == (message.id, action))
                painter.setFont(font)
                painter.setPen(c.accent)
                painter.drawText(rect, align, action.value.title())
                painter.setFont(self._font)

    def _paint_quote(self, painter: QPainter, quote: Quote, rect: QRectF, own: bool) -> None:
        """A reply's quote: a bar in the original sender's colour, their name, one line of the original."""
        c, m = self._colors, self._m
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(_blend(c.own_bubble if own else c.other_bubble, c.accent, 0.10))
        painter.drawRoundedRect(rect, m.unit, m.unit)
        painter.setBrush(c.accent)
        painter.drawRect(QRectF(rect.left(), rect.top(), max(2.0, m.unit / 1.5), rect.height()))
        x = rect.left() + m.unit * 2
        width = rect.width() - m.unit * 3
        top = rect.top() + m.unit / 2
        if quote.sender:
            painter.setFont(self._small_bold)
            painter.setPen(c.accent)
            painter.drawText(
                QRectF(x, top, width, self._small_line_bold),
                Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                self._small_bold_fm.elidedText(quote.sender, Qt.TextElideMode.ElideRight, width),
            )
            top += self._small_line_bold
        font = QFont(self._small)
        font.setItalic(quote.deleted or quote.missing)
        painter.setFont(font)
        painter.setPen(c.muted)
        painter.drawText(
            QRectF(x, top, width, m.small_line),
            Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
            self._small_fm.elidedText(quote.excerpt, Qt.TextElideMode.ElideRight, width),
        )

    def _paint_chip(self, painter: QPainter, reaction: ShownReaction, rect: QRectF) -> None:
        """One reaction under a bubble: the emoji and its count, outlined in the accent when it is the user's."""
        c = self._colors
        painter.setPen(QPen(c.accent, 1.2) if reaction.mine else QPen(c.bubble_border, 1))
        painter.setBrush(_blend(c.other_bubble, c.accent, 0.18 if reaction.mine else 0.0))
        painter.drawRoundedRect(rect.adjusted(0.5, 0.5, -0.5, -0.5), rect.height() / 2, rect.height() / 2)
        painter.setFont(self._chip_font)
        painter.setPen(c.accent if reaction.mine else c.other_text)
        painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, f"{reaction.emoji} {reaction.count}")

    def _paint_day(self, painter: QPainter, day: date, width: int) -> None:
        m, c = self._m, self._colors
        today = self._today or datetime.now(UTC).astimezone().date()
        label = day_label(day, today)
        text_width = self._small_fm.horizontalAdvance(label)
        pill = QRectF(0, 0, text_width + 2 * m.pad_x, m.small_line + m.unit * 2)
        pill.moveCenter(QPointF(width / 2, m.day_block / 2 + m.unit / 2))
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(c.separator)
        painter.drawRoundedRect(pill, pill.height() / 2, pill.height() / 2)
        painter.setFont(self._small)
        painter.setPen(c.muted)
        painter.drawText(pill, Qt.AlignmentFlag.AlignCenter, label)

    def _paint_divider(self, painter: QPainter, top: float, width: int) -> None:
        """A line across with "New messages" on it: where what the user has not seen yet begins."""
        m, c = self._m, self._colors
        middle = top + m.day_block / 2 + m.unit / 2
        label = NEW_MESSAGES
        text_width = self._small_fm.horizontalAdvance(label)
        right = width - m.side
        label_rect = QRectF(right - text_width, middle - m.small_line / 2, text_width, m.small_line)
        painter.setPen(QPen(c.danger, max(1.0, m.unit / 3)))
        painter.drawLine(QLineF(m.side, middle, label_rect.left() - m.unit * 2, middle))
        painter.setFont(self._small)
        painter.drawText(label_rect, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, label)

    def _paint_avatar(self, painter: QPainter, message: Message, top: float) -> None:
        m = self._m
        name = self._model.sender_name(message)
        circle = QRectF(m.side, top, m.avatar, m.avatar)
        color = QColor.fromHsl(self._model.hue_of(message.sender_id), 120, 118 if self._colors.dark else 150)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(color)
        painter.drawEllipse(circle)
        font = QFont(self._bold)
        font.setPointSizeF(max(6.0, self._font.pointSizeF() * 0.9))
        painter.setFont(font)
        painter.setPen(QColor("#ffffff"))
        painter.drawText(circle, Qt.AlignmentFlag.AlignCenter, initials(name))

    def _name_color(self, message: Message) -> QColor:
        lightness = 165 if self._colors.dark else 95
        return QColor.fromHsl(self._model.hue_of(message.sender_id), 150, lightness)

    def _paint_delivery(self, painter: QPainter, state: DeliveryState, rect: QRectF, *, read: bool = False) -> None:
        c = self._colors
        pen_width = max(1.0, rect.width() / 9)
        if state is DeliveryState.PENDING:
            painter.setPen(QPen(c.muted, pen_width))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            inner = rect.adjusted(pen_width, pen_width, -pen_width, -pen_width)
            painter.drawEllipse(inner)
            center = inner.center()
            painter.drawLine(QLineF(center, QPointF(center.x(), inner.top() + inner.height() * 0.25)))
            painter.drawLine(QLineF(center, QPointF(inner.right() - inner.width() * 0.25, center.y())))
        elif state is DeliveryState.SENT:
            painter.setPen(
                QPen(
                    c.accent, pen_width * 1.3, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap, Qt.PenJoinStyle.RoundJoin
                )
            )
            painter.setBrush(Qt.BrushStyle.NoBrush)
            path = QPainterPath(QPointF(rect.left() + rect.width() * 0.12, rect.top() + rect.height() * 0.55))
            path.lineTo(QPointF(rect.left() + rect.width() * 0.4, rect.top() + rect.height() * 0.8))
            path.lineTo(QPointF(rect.right() - rect.width() * 0.08, rect.top() + rect.height() * 0.22))
            if read:
                # The second tick: the other person has read it. Both ticks shift left to fit side by side.
                path.translate(-rect.width() * 0.3, 0)
                second = QPainterPath(QPointF(rect.left() + rect.width() * 0.42, rect.top() + rect.height() * 0.7))
                second.lineTo(QPointF(rect.left() + rect.width() * 0.5, rect.top() + rect.height() * 0.8))
                second.lineTo(QPointF(rect.right() + rect.width() * 0.2, rect.top() + rect.height() * 0.22))
                painter.drawPath(second)
            painter.drawPath(path)
        else:
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(c.danger)
            painter.drawEllipse(rect)
            painter.setPen(QPen(QColor("#ffffff"), pen_width * 1.2, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap))
            center_x = rect.center().x()
            painter.drawLine(
                QLineF(center_x, rect.top() + rect.height() * 0.25, center_x, rect.top() + rect.height() * 0.58)
            )
            painter.drawPoint(QPointF(center_x, rect.top() + rect.height() * 0.76))


def _blend(base: QColor, over: QColor, amount: float) -> QColor:
    return QColor.fromRgbF(
        base.redF() + (over.redF() - base.redF()) * amount,
        base.greenF() + (over.greenF() - base.greenF()) * amount,
        base.blueF() + (over.blueF() - base.blueF()) * amount,
    )


__all__ = ["NEW_MESSAGES", "Action", "MessageDelegate", "Target"]
