"""Replies, reactions and read receipts in the open chat (main window over the fake store)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QToolButton, QWidgetAction
from pytestqt.qtbot import QtBot

from desktop_chat.models import ChatId, DeliveryState, Message
from desktop_chat.ui.bridge import StoreBridge
from desktop_chat.ui.chat_panel import ChatPanel
from desktop_chat.ui.emoji_picker import FREQUENT, EmojiPicker, matching
from desktop_chat.ui.main_window import MainWindow
from desktop_chat.ui.timeline_delegate import Target
from desktop_chat.ui.timeline_model import DELETED_TEXT, Quote, Receipt
from desktop_chat.ui.timeline_view import TimelineView
from tests.gui import test_main_window as main_window_tests
from tests.gui.fakes import Cast, FakeChatStore
from tests.gui.test_main_window import open_chat

# The main window tests' fixtures, under the names these tests use.
switches = main_window_tests.switches
window = main_window_tests.window


@dataclass(frozen=True)
class OpenChat:
    id: ChatId
    panel: ChatPanel


@pytest.fixture
def team(qtbot: QtBot, window: MainWindow, bridge: StoreBridge, store: FakeChatStore) -> OpenChat:
    """The group chat "Team" (Alice, Bob, Carol, a long history), open in the window."""
    chat = store.chat_id("Team")
    open_chat(qtbot, window, bridge, chat)
    return OpenChat(chat, window.chat_panel)


def row_of(window: MainWindow, message: Message) -> int:
    row = window.chat_panel.model.row_of(message.id)
    assert row is not None
    return row


def click_target(qtbot: QtBot, view: TimelineView, row: int, kind: Target, index: int = 0) -> None:
    rect = view.message_delegate.target_rect(row, kind, index)
    assert rect is not None, f"row {row} shows no {kind}"
    view.scrollTo(view.model().index(row, 0))
    top_left = view.visualRect(view.model().index(row, 0)).topLeft()
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=top_left + rect.center())


# --- replies -------------------------------------------------------------------------------------------
def test_reply_from_the_menu_shows_replying_to_and_esc_cancels(
    team: OpenChat, qtbot: QtBot, store: FakeChatStore, cast: Cast
) -> None:
    panel = team.panel
    theirs = store.receive(team.id, cast.bob, "Shall we move the standup to 10?")
    menu = panel.view.menu_for(theirs)
    next(action for action in menu.actions() if action.text() == "Reply").trigger()
    composer = panel.composer
    assert composer.replying_to == theirs.id
    assert composer.reply_banner.isVisible()
    assert composer.reply_label.text().startswith("Replying to Bob Chen: Shall we move")
    qtbot.keyClick(composer.editor, Qt.Key.Key_Escape)
    assert composer.replying_to is None and not composer.reply_banner.isVisible()


def test_a_reply_is_sent_with_its_original_and_the_bubble_quotes_it(
    team: OpenChat, qtbot: QtBot, window: MainWindow, bridge: StoreBridge, store: FakeChatStore, cast: Cast
) -> None:
    panel = team.panel
    theirs = store.receive(team.id, cast.bob, "Shall we move the standup to 10?")
    qtbot.keyClick(panel.composer.editor, Qt.Key.Key_Up, Qt.KeyboardModifier.ControlModifier)
    assert panel.composer.replying_to == theirs.id  # Ctrl+Up: the newest message
    qtbot.keyClicks(panel.composer.editor, "Fine by me")
    with qtbot.waitSignal(bridge.message_queued):
        qtbot.keyClick(panel.composer.editor, Qt.Key.Key_Return)
    [pending] = store.pending()
    assert (pending.content, pending.reply_to) == ("Fine by me", theirs.id)
    assert panel.composer.replying_to is None
    sent = store.deliver(pending.id)
    quote = panel.model.quote_of(sent)
    assert quote == Quote(theirs.id, "Bob Chen", "Shall we move the standup to 10?", theirs.seq)
    row = row_of(window, sent)
    assert panel.view.message_delegate.target_rect(row, Target.QUOTE) is not None


def test_clicking_a_quote_scrolls_to_the_original_and_asks_for_the_jump(
    team: OpenChat, qtbot: QtBot, window: MainWindow, store: FakeChatStore, cast: Cast
) -> None:
    panel = team.panel
    original = panel.model.item(panel.model.rowCount() - 40)  # loaded, far above the screen
    reply = store.receive(team.id, cast.carol, "About that:", reply_to=original.id)
    panel.view.scroll_to_newest()
    assert row_of(window, original) not in panel.view.visible_rows()
    with qtbot.waitSignal(panel.jump_to_message_requested) as jump:
        click_target(qtbot, panel.view, row_of(window, reply), Target.QUOTE)
    assert jump.args == [team.id, original.seq]
    assert row_of(window, original) in panel.view.visible_rows()


def test_a_deleted_original_shows_as_deleted_and_one_not_loaded_is_looked_up(
    team: OpenChat, qtbot: QtBot, bridge: StoreBridge, store: FakeChatStore, cast: Cast
) -> None:
    panel = team.panel
    mine = store.add_message(team.id, cast.alice, "typo here")
    reply = store.receive(team.id, cast.bob, "what typo?", reply_to=mine.id)
    with qtbot.waitSignal(bridge.finished):
        bridge.delete_message(mine.id)
    quote = panel.model.quote_of(reply)
    assert quote is not None and quote.deleted and quote.excerpt == DELETED_TEXT

    seq3 = store._message(store._chats[team.id], 3)  # long before the loaded page
    assert seq3 is not None and panel.model.oldest_loaded_seq() > 3
    answer = store.receive(team.id, cast.carol, "back to the start", reply_to=seq3.id)
    first = panel.model.quote_of(answer)
    assert first is not None and first.missing and first.excerpt == "Loading…"
    qtbot.waitUntil(lambda: not panel.model.quote_of(answer).missing)  # type: ignore[union-attr]
    quote = panel.model.quote_of(answer)
    assert quote is not None
    assert quote.excerpt == seq3.content and quote.seq == 3


def test_clicking_the_quote_of_an_original_long_before_the_loaded_page_opens_the_chat_there(
    team: OpenChat, qtbot: QtBot, window: MainWindow, bridge: StoreBridge, store: FakeChatStore, cast: Cast
) -> None:
    panel = team.panel
    first = store._message(store._chats[team.id], 1)
    assert first is not None and panel.model.oldest_loaded_seq() > 1
    answer = store.receive(team.id, cast.carol, "as the very first message said", reply_to=first.id)
    qtbot.waitUntil(lambda: not panel.model.quote_of(answer).missing)  # type: ignore[union-attr]
    with qtbot.waitSignal(bridge.chat_opened_at):
        click_target(qtbot, panel.view, row_of(window, answer), Target.QUOTE)
    assert panel.model.has_newer()  # a window around the original, not the newest page
    assert panel.view.highlighted == first.id
    assert row_of(window, first) in panel.view.visible_rows()


def test_a_reply_to_a_message_of_another_chat_fails_with_the_reason(
    qtbot: QtBot, window: MainWindow, bridge: StoreBridge, store: FakeChatStore, cast: Cast
) -> None:
    team = store.chat_id("Team")
    elsewhere = store.add_message(store.chat_id("Bob"), cast.bob, "in another chat")
    open_chat(qtbot, window, bridge, team)
    with qtbot.waitSignal(bridge.message_queued) as queued:
        bridge.send_reply(team, "cross-chat", elsewhere.id)
    store._deliver_if_pending(queued.args[1])
    [failed] = store.pending()
    assert failed.delivery is DeliveryState.FAILED
    assert failed.error == "The message you replied to is not in this chat."


# --- reactions -----------------------------------------------------------------------------------------
def test_a_reaction_shows_at_once_goes_out_once_and_toggles_back(
    team: OpenChat, qtbot: QtBot, window: MainWindow, bridge: StoreBridge, store: FakeChatStore, cast: Cast
) -> None:
    panel = team.panel
    theirs = store.receive(team.id, cast.bob, "Release is out!")
    menu = panel.view.menu_for(theirs)
    row = next(a for a in menu.actions() if isinstance(a, QWidgetAction)).defaultWidget()
    buttons = row.findChildren(QToolButton)
    assert [button.text() for button in buttons] == list(FREQUENT)
    with qtbot.waitSignal(bridge.finished):
        qtbot.mouseClick(next(b for b in buttons if b.text() == "🎉"), Qt.MouseButton.LeftButton)
    [shown] = panel.model.reactions_of(theirs.id)  # optimistic: nothing reached the server yet
    assert (shown.emoji, shown.count, shown.mine) == ("🎉", 1, True)
    assert store.reaction_requests == []
    store.react(team.id, theirs.id, cast.carol, "🎉")  # someone else, live
    [shown] = panel.model.reactions_of(theirs.id)
    assert (shown.count, shown.mine) == (2, True)
    store.deliver_reactions()
    assert store.reaction_requests == [("add", theirs.id, "🎉")]
    [shown] = panel.model.reactions_of(theirs.id)
    assert (shown.count, shown.mine, set(shown.names)) == (2, True, {"Alice Martin", "Carol Diaz"})
    row = row_of(window, store.find_last(team.id))
    with qtbot.waitSignal(bridge.finished):
        click_target(qtbot, panel.view, row, Target.REACTION)  # the user's own chip: take it back
    [shown] = panel.model.reactions_of(theirs.id)
    assert (shown.count, shown.mine) == (1, False)
    store.deliver_reactions()
    assert store.reaction_requests == [("add", theirs.id, "🎉"), ("remove", theirs.id, "🎉")]


def test_who_reacted_is_the_chips_tooltip(team: OpenChat, window: MainWindow, store: FakeChatStore, cast: Cast) -> None:
    panel = team.panel
    theirs = store.receive(team.id, cast.bob, "Pizza tonight?")
    store.react(team.id, theirs.id, cast.carol, "👍")
    store.react(team.id, theirs.id, cast.bob, "👍")
    row = row_of(window, store.find_last(team.id))
    rect = panel.view.message_delegate.target_rect(row, Target.REACTION)
    assert rect is not None
    target = panel.view.message_delegate.target_at(row, rect.center())
    assert target is not None
    assert TimelineView.tooltip_for(target[0], target[1]) == "👍 Carol Diaz, Bob Chen"


def test_the_full_picker_searches_by_name_and_reacts(
    team: OpenChat, qtbot: QtBot, bridge: StoreBridge, store: FakeChatStore, cast: Cast
) -> None:
    panel = team.panel
    theirs = store.receive(team.id, cast.bob, "I adopted a cat")
    picker = panel.view.pick_reaction(theirs)
    assert isinstance(picker, EmojiPicker)
    assert picker.grid.item(0).text() == FREQUENT[0]
    assert picker.grid.count() > 1000
    qtbot.keyClicks(picker.search, "cat face")
    assert "🐱" in [picker.grid.item(i).text() for i in range(picker.grid.count())]
    assert set(matching("cat face")) >= {"🐱"}
    with qtbot.waitSignal(bridge.finished):
        items = [picker.grid.item(i) for i in range(picker.grid.count())]
        picker._choose(next(item for item in items if item.text() == "🐱"))
    assert [r.emoji for r in panel.model.reactions_of(theirs.id)] == ["🐱"]


# --- read receipts -------------------------------------------------------------------------------------
def test_one_to_one_a_second_tick_when_the_other_has_read_it(
    qtbot: QtBot, window: MainWindow, bridge: StoreBridge, store: FakeChatStore, cast: Cast
) -> None:
    chat = store.chat_id("Bob")
    mine = store.add_message(chat, cast.alice, "See you at 6")
    open_chat(qtbot, window, bridge, chat)
    panel = window.chat_panel
    receipt = panel.model.receipt_of(mine)
    assert receipt == Receipt(group=False, readers=(), count=0, label=False)
    store.read_up_to(chat, cast.bob, mine.seq or 0)  # live, from bob's device
    receipt = panel.model.receipt_of(mine)
    assert receipt is not None and receipt.read and not receipt.group
    assert panel.view.message_delegate.target_rect(row_of(window, mine), Target.SEEN) is None


def test_in_a_group_seen_by_n_with_the_names_on_hover_moves_live(
    qtbot: QtBot, window: MainWindow, bridge: StoreBridge, store: FakeChatStore, cast: Cast
) -> None:
    team = store.chat_id("Team")
    first = store.add_message(team, cast.alice, "Agenda is in the doc")
    second = store.add_message(team, cast.alice, "Please add your items")
    store.set_read_position(team, cast.bob, first.seq or 0)
    store.set_read_position(team, cast.carol, 0)
    open_chat(qtbot, window, bridge, team)
    panel = window.chat_panel
    assert panel.model.receipt_of(second) == Receipt(group=True, readers=(), count=0, label=False)
    assert panel.model.receipt_of(first) == Receipt(group=True, readers=("Bob Chen",), count=1, label=True)
    store.read_up_to(team, cast.carol, second.seq or 0)
    store.read_up_to(team, cast.bob, second.seq or 0)
    newest = panel.model.receipt_of(second)
    assert newest == Receipt(group=True, readers=("Bob Chen", "Carol Diaz"), count=2, label=True)
    assert panel.model.receipt_of(first) == Receipt(group=True, readers=(), count=2, label=False)
    row = row_of(window, second)
    rect = panel.view.message_delegate.target_rect(row, Target.SEEN)
    assert rect is not None
    target = panel.view.message_delegate.target_at(row, rect.center())
    assert target is not None and TimelineView.tooltip_for(target[0], target[1]) == "Seen by Bob Chen, Carol Diaz"


@pytest.mark.parametrize("unused", [None])
def test_nothing_extra_for_plain_messages(
    team: OpenChat, window: MainWindow, store: FakeChatStore, cast: Cast, unused: None
) -> None:
    panel = team.panel
    theirs = store.receive(team.id, cast.bob, "plain")
    row = row_of(window, theirs)
    assert panel.model.quote_of(theirs) is None and panel.model.reactions_of(theirs.id) == ()
    for kind in Target:
        assert panel.view.message_delegate.target_rect(row, kind) is None
    assert panel.view.message_delegate.target_at(row, QPoint(1, 1)) is None
