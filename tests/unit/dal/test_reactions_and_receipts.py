"""The pure folds behind what a bubble shows: reactions (counts, who, own toggles) and read positions."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from desktop_chat.dal.reactions import needs_who, seq_windows
from desktop_chat.models import (
    ChatId,
    Message,
    MessageId,
    MessageReactions,
    ReactionCount,
    ReactionDetail,
    Reactor,
    ReadPosition,
    ReadPositions,
    ReadState,
    UserId,
    reactions_after_toggle,
    shown_reactions,
)

CHAT = ChatId(uuid.uuid4())
MSG = MessageId(uuid.uuid4())
ME = Reactor(user_id=UserId(uuid.uuid4()), display_name="Alice")
BOB = Reactor(user_id=UserId(uuid.uuid4()), display_name="Bob")
CAROL = UserId(uuid.uuid4())


def detail(rev: int, *items: tuple[str, int, bool, tuple[Reactor, ...]]) -> MessageReactions:
    return MessageReactions(
        message_id=MSG,
        rev=rev,
        items=tuple(
            ReactionDetail(message_id=MSG, seq=7, emoji=e, count=c, mine=m, users=users) for e, c, m, users in items
        ),
    )


def message(rev: int, *counts: tuple[str, int], deleted: bool = False) -> Message:
    return Message(
        id=MSG,
        chat_id=CHAT,
        sender_id=BOB.user_id,
        content="hi",
        created_at=datetime.now(UTC),
        seq=7,
        rev=rev,
        reactions=tuple(ReactionCount(emoji=e, count=c) for e, c in counts),
        deleted_at=datetime.now(UTC) if deleted else None,
    )


def test_counts_from_the_row_when_nobody_is_known() -> None:
    shown = shown_reactions([("👍", 2), ("🎉", 1)], 5, None, {}, "Alice")
    assert [(r.emoji, r.count, r.mine, r.names) for r in shown] == [("👍", 2, False, ()), ("🎉", 1, False, ())]


def test_who_and_mine_come_from_the_loaded_detail() -> None:
    loaded = detail(5, ("👍", 2, True, (ME, BOB)))
    [shown] = shown_reactions([("👍", 2)], 5, loaded, {}, "Alice")
    assert (shown.count, shown.mine, shown.names) == (2, True, ("Alice", "Bob"))


def test_a_newer_row_wins_the_counts_but_keeps_who() -> None:
    loaded = detail(5, ("👍", 1, False, (BOB,)))
    shown = shown_reactions([("👍", 2), ("😂", 1)], 6, loaded, {}, "Alice")  # carol reacted since
    assert [(r.emoji, r.count, r.names) for r in shown] == [("👍", 2, ("Bob",)), ("😂", 1, ())]


def test_a_pending_add_and_remove_are_shown_on_top() -> None:
    loaded = detail(5, ("👍", 2, True, (ME, BOB)), ("🎉", 1, False, (BOB,)))
    shown = shown_reactions([("👍", 2), ("🎉", 1)], 5, loaded, {"👍": False, "🎉": True, "❤️": True}, "Alice")
    assert [(r.emoji, r.count, r.mine, r.names) for r in shown] == [
        ("👍", 1, False, ("Bob",)),
        ("🎉", 2, True, ("Alice", "Bob")),
        ("❤️", 1, True, ("Alice",)),
    ]


def test_a_pending_wish_equal_to_the_server_changes_nothing() -> None:
    loaded = detail(5, ("👍", 1, True, (ME,)))
    [shown] = shown_reactions([("👍", 1)], 5, loaded, {"👍": True}, "Alice")
    assert (shown.count, shown.mine) == (1, True)
    assert shown_reactions([("👍", 1)], 5, loaded, {"👍": False}, "Alice") == ()


def test_a_delivered_toggle_moves_the_detail_by_one() -> None:
    loaded = detail(5, ("👍", 1, False, (BOB,)))
    added = reactions_after_toggle(loaded, "👍", True, ME, 5, 7)
    assert added is not None
    [item] = added.items
    assert (item.count, item.mine, [u.display_name for u in item.users]) == (2, True, ["Alice", "Bob"])
    removed = reactions_after_toggle(added, "👍", False, ME, 5, 7)
    assert removed is not None and [(i.count, i.mine) for i in removed.items] == [(1, False)]
    new = reactions_after_toggle(loaded, "🎉", True, ME, 6, 7)
    assert new is not None and [(i.emoji, i.count) for i in new.items] == [("👍", 1), ("🎉", 1)] and new.rev == 6
    gone = reactions_after_toggle(detail(5, ("🎉", 1, True, (ME,))), "🎉", False, ME, 5, 7)
    assert gone is not None and gone.items == ()
    assert reactions_after_toggle(None, "👍", True, ME, 5, 7) is None


def test_who_is_loaded_only_when_the_row_says_something_changed() -> None:
    assert needs_who(message(3, ("👍", 1)), None)
    assert not needs_who(message(3), None)  # no reactions: nobody to name
    loaded = detail(3, ("👍", 1, False, (BOB,)))
    assert not needs_who(message(3, ("👍", 1)), loaded)
    assert not needs_who(message(4, ("👍", 1)), loaded)  # an edit: the counts are the same
    assert needs_who(message(4, ("👍", 2)), loaded)
    assert not needs_who(message(4, ("👍", 2), deleted=True), loaded)


def test_seq_windows_cover_every_seq_within_the_call_limit() -> None:
    assert seq_windows([]) == []
    assert seq_windows([5, 1, 3]) == [(1, 5)]
    assert seq_windows([1, 500, 501, 1200], span=500) == [(1, 500), (501, 501), (1200, 1200)]


def test_read_state_moves_forward_only_and_names_the_readers() -> None:
    read = ReadPositions(
        chat_id=CHAT,
        positions=(ReadPosition(user_id=BOB.user_id, last_read_seq=9), ReadPosition(user_id=CAROL, last_read_seq=4)),
        member_count=3,
    )
    state = ReadState.of(read, 100)
    assert state.complete and not state.one_to_one
    assert state.readers(5, ME.user_id) == [BOB.user_id]
    assert state.readers(9, BOB.user_id) == []  # the sender never counts for their own message
    assert state.moved(CAROL, 3) is state  # backwards: ignored
    moved = state.moved(CAROL, 6)
    assert sorted(map(str, moved.readers(5, ME.user_id))) == sorted([str(BOB.user_id), str(CAROL)])
    assert state.readers(5, ME.user_id) == [BOB.user_id]  # the old state is untouched
    partial = ReadState.of(read, 2)
    assert not partial.complete
