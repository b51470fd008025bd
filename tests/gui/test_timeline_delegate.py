"""MessageDelegate: what each kind of row shows and reserves, and that every size follows the font."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont
from pytestqt.qtbot import QtBot

from desktop_chat.dal.api import new_timeline
from desktop_chat.models import ChatId, DeliveryState, Message, MessageId, UserId, new_message_id
from desktop_chat.ui.bridge import StoreBridge
from desktop_chat.ui.text import clock, full_time
from desktop_chat.ui.theme import Theme
from desktop_chat.ui.timeline_delegate import Action, MessageDelegate
from desktop_chat.ui.timeline_model import TimelineModel
from desktop_chat.ui.timeline_view import TimelineView
from tests.gui.fakes import populated_store, stable_id

ME = UserId(stable_id("me"))
THEM = UserId(stable_id("them"))
SESSION = ChatId(stable_id("chat"))
AT = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def message(key: str, sender: UserId, text: str = "hello", **extra: object) -> Message:
    seq = None if extra.get("delivery") in (DeliveryState.PENDING, DeliveryState.FAILED) else len(key)
    return Message(
        id=MessageId(stable_id(key)),
        chat_id=SESSION,
        sender_id=sender,
        content=text,
        created_at=AT,
        seq=seq,
        rev=seq,
        **extra,  # type: ignore[arg-type]
    )


def delegate_for(
    bridge: StoreBridge, rows: list[Message], *, point_size: float = 10.0
) -> tuple[MessageDelegate, TimelineModel]:
    model = TimelineModel(bridge)
    model.set_own_user(ME)
    timeline = new_timeline()
    timeline.reset(rows)
    model.show_timeline(SESSION, timeline)
    delegate = MessageDelegate(model)
    font = QFont()
    font.setPointSizeF(point_size)
    delegate.set_font(font)
    delegate.set_width(600)
    return delegate, model


def test_own_messages_sit_on_the_right_and_others_on_the_left(qtbot: QtBot, bridge: StoreBridge) -> None:
    delegate, _ = delegate_for(bridge, [message("a", THEM), message("bb", ME)])
    theirs, mine = delegate.bubble_rect(0), delegate.bubble_rect(1)
    assert theirs.left() < 600 // 3 < mine.left()
    assert 600 - mine.right() < theirs.left()


def test_only_failed_messages_offer_retry_and_discard(qtbot: QtBot, bridge: StoreBridge) -> None:
    rows = [
        message("a", ME),
        message("p", ME, delivery=DeliveryState.PENDING),
        message("f", ME, delivery=DeliveryState.FAILED, error="Nope"),
    ]
    delegate, model = delegate_for(bridge, rows)
    by_state = {model.item(row).delivery: row for row in range(3)}
    assert delegate.action_rect(by_state[DeliveryState.SENT], Action.RETRY) is None
    assert delegate.action_rect(by_state[DeliveryState.PENDING], Action.RETRY) is None
    failed = by_state[DeliveryState.FAILED]
    retry = delegate.action_rect(failed, Action.RETRY)
    discard = delegate.action_rect(failed, Action.DISCARD)
    assert retry is not None and discard is not None and retry.right() < discard.left()
    assert delegate.action_at(failed, retry.center()) is Action.RETRY
    assert delegate.geometry(failed).failure_text == "Not sent: Nope"
    assert delegate.geometry(failed).size.height() > delegate.geometry(by_state[DeliveryState.PENDING]).size.height()


def test_edited_and_deleted_markers(qtbot: QtBot, bridge: StoreBridge) -> None:
    edited = message("e", THEM, edited_at=AT)
    deleted = message("dd", THEM, "gone", deleted_at=AT, edited_at=AT)
    delegate, _ = delegate_for(bridge, [edited, deleted])
    assert delegate.geometry(0).meta_text == f"edited  {clock(AT)}"
    assert delegate.geometry(1).meta_text == clock(AT)  # a deleted message is not "edited"
    assert delegate.geometry(1).layout.text() == "This message was deleted"


def uuid7_at(moment: datetime, tail: int = 0x1234) -> MessageId:
    """A UUIDv7 whose time is ``moment`` (as the sending client makes ids)."""
    millis = int(moment.timestamp() * 1000)
    return MessageId(UUID(int=(millis << 80) | (0x7 << 76) | (0b10 << 62) | tail))


def test_a_message_sent_offline_keeps_the_time_it_was_written(qtbot: QtBot, bridge: StoreBridge) -> None:
    written = AT - timedelta(minutes=40)  # typed on the train; the server stored it 40 minutes later
    queued = message("q", ME).model_copy(update={"id": uuid7_at(written)})
    skewed = message("ss", THEM).model_copy(update={"id": uuid7_at(AT - timedelta(seconds=20))})  # clocks differ
    delegate, model = delegate_for(bridge, [queued, skewed])
    assert delegate.geometry(0).meta_text == clock(written)
    tip = model.index(0, 0).data(Qt.ItemDataRole.ToolTipRole)
    assert tip == f"{full_time(written)}\nSent when the connection was back, at {clock(AT)}"
    assert delegate.geometry(1).meta_text == clock(AT)  # a small disagreement between clocks: the server's time


def test_the_cache_answers_until_the_message_changes(qtbot: QtBot, bridge: StoreBridge) -> None:
    delegate, model = delegate_for(bridge, [message("a", THEM, "short")])
    first = delegate.geometry(0)
    assert delegate.geometry(0) is first
    assert model.live is not None
    model.live.upsert(message("a", THEM, "a much longer text " * 20))
    assert delegate.geometry(0) is not first
    assert delegate.geometry(0).size.height() > first.size.height()


def test_every_size_follows_the_font(qtbot: QtBot, bridge: StoreBridge) -> None:
    rows = [message("a", THEM, "hello there"), message("f", ME, delivery=DeliveryState.FAILED, error="x")]
    small, _small_model = delegate_for(bridge, rows, point_size=10)
    large, _large_model = delegate_for(bridge, rows, point_size=20)
    for row in range(2):
        ratio = large.geometry(row).size.height() / small.geometry(row).size.height()
        assert 1.7 < ratio < 2.3, ratio  # nothing fixed in pixels: twice the font, about twice the height


def test_emoji_in_a_message_are_painted_in_colour(qtbot: QtBot, theme: Theme) -> None:
    """With the app's theme (which picks the installed colour emoji font, fonts-noto-color-emoji), an emoji
    in a bubble comes out in colour, not as an empty box or a monochrome glyph."""
    store, cast = populated_store()
    bridge = StoreBridge(store, server_url="http://127.0.0.1:54321")
    model = TimelineModel(bridge)
    model.set_own_user(cast.alice.id)
    timeline = new_timeline()
    at = datetime(2026, 11, 26, 14, 0, tzinfo=UTC)
    chat = store.chat_id("Team")
    timeline.upsert(
        Message(id=new_message_id(), chat_id=chat, sender_id=cast.bob.id, content="🎉🎉🎉", created_at=at, seq=1, rev=1)
    )
    model.show_timeline(chat, timeline)
    view = TimelineView(model)
    qtbot.addWidget(view)
    view.resize(600, 300)
    view.show()
    qtbot.waitExposed(view)
    rect = view.visualRect(model.index(0, 0))
    geometry = view.message_delegate.geometry(0)
    bubble = geometry.bubble.translated(rect.topLeft().toPointF()).toAlignedRect()
    image = view.viewport().grab(bubble).toImage()
    saturated = sum(
        1
        for x in range(image.width())
        for y in range(image.height())
        if QColor(image.pixel(x, y)).hsvSaturation() > 120 and QColor(image.pixel(x, y)).value() > 80
    )
    assert saturated > 50  # the party poppers' yellows, reds and blues
