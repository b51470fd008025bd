"""Reducers: idempotent, newest-rev-wins, and the recent-chats row follows its messages."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from desktop_chat.dal.reducers import (
    details_changed,
    max_rev,
    merge_messages,
    newer_message,
    summary_from_server,
    summary_read_up_to,
    summary_with_chat,
    summary_with_message,
    unread_after,
)
from desktop_chat.models import (
    Chat,
    ChatId,
    ChatSummary,
    DeliveryState,
    MemberRole,
    Message,
    MessageId,
    UserId,
)

ME = UserId(uuid.uuid4())
THEM = UserId(uuid.uuid4())
CHAT = ChatId(uuid.uuid4())
T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def message(
    seq: int | None, rev: int | None = None, *, sender: UserId = THEM, ident: MessageId | None = None, **extra: object
) -> Message:
    return Message(
        id=ident or MessageId(uuid.UUID(int=seq or 0x10000 + uuid.uuid4().int % 1000)),
        chat_id=CHAT,
        sender_id=sender,
        content=str(extra.pop("content", f"m{seq}")),
        created_at=T0 + timedelta(seconds=seq or 0),
        seq=seq,
        rev=rev if rev is not None else seq,
        **extra,  # type: ignore[arg-type]
    )


def summary(last_seq: int = 3, read: int = 3, unread: int = 0) -> ChatSummary:
    session = Chat(
        id=CHAT, title="t", created_at=T0, updated_at=T0, last_message_at=T0, last_seq=last_seq, last_rev=last_seq
    )
    return ChatSummary(chat=session, role=MemberRole.MEMBER, last_read_seq=read, unread_count=unread)


def test_confirmed_beats_pending_and_higher_rev_wins() -> None:
    ident = MessageId(uuid.uuid4())
    pending = Message(id=ident, chat_id=CHAT, sender_id=ME, content="x", created_at=T0, delivery=DeliveryState.PENDING)
    confirmed = message(5, 5, ident=ident, sender=ME, content="x")
    edited = message(5, 9, ident=ident, sender=ME, content="y")
    assert newer_message(pending, confirmed) == confirmed
    assert newer_message(confirmed, pending) is None  # a late local echo never hides the server's row
    assert newer_message(confirmed, edited) == edited
    assert newer_message(edited, confirmed) is None  # a stale push does not undo an edit
    assert newer_message(edited, edited) is None


def test_merge_keeps_the_newest_n_confirmed_in_seq_order() -> None:
    current = [message(n) for n in range(1, 6)]
    incoming = [message(7), message(6), message(3, 9, content="edited"), message(None, None, sender=ME)]
    merged = merge_messages(current, incoming, cap=4)
    assert [m.seq for m in merged] == [4, 5, 6, 7]
    assert max_rev(merged) == 7
    full = merge_messages(current, incoming, cap=100)
    assert next(m for m in full if m.seq == 3).content == "edited"


@given(st.lists(st.tuples(st.integers(1, 20), st.integers(0, 5)), max_size=40), st.integers(1, 25))
def test_merge_is_idempotent_and_order_independent(events: list[tuple[int, int]], cap: int) -> None:
    msgs = [
        message(seq, seq * 10 + bump, ident=MessageId(uuid.UUID(int=seq)), content=f"{seq}.{bump}")
        for seq, bump in events
    ]
    once = merge_messages([], msgs, cap)
    twice = merge_messages(once, msgs, cap)
    reversed_order = merge_messages([], list(reversed(msgs)), cap)
    assert once == twice
    assert once == reversed_order
    assert [m.seq for m in once] == sorted({seq for seq, _ in events})[-cap:]


def test_a_new_message_from_someone_else_counts_as_unread_once() -> None:
    row = summary(last_seq=3, read=3)
    after = summary_with_message(row, message(4), ME)
    again = summary_with_message(after, message(4), ME)
    assert (after.unread_count, after.chat.last_seq, after.last_message and after.last_message.seq) == (1, 4, 4)
    assert again == after
    mine = summary_with_message(after, message(5, sender=ME), ME)
    assert mine.unread_count == 1
    assert mine.last_message is not None and mine.last_message.seq == 5


def test_an_edit_of_the_last_message_updates_the_preview_but_not_the_count() -> None:
    row = summary_with_message(summary(), message(4), ME)
    edited = summary_with_message(
        row, message(4, 8, ident=row.last_message.id if row.last_message else None, content="new"), ME
    )
    assert edited.last_message is not None and edited.last_message.content == "new"
    assert edited.unread_count == 1
    assert edited.chat.last_rev == 8


def test_session_updates_never_move_counters_backwards() -> None:
    row = summary_with_message(summary(), message(10), ME)
    stale = Chat(id=CHAT, title="renamed", created_at=T0, updated_at=T0, last_seq=4, last_rev=4)
    after = summary_with_chat(row, stale)
    assert after.chat.title == "renamed"
    assert (after.chat.last_seq, after.chat.last_rev) == (10, 10)
    assert details_changed(row.chat, after.chat)
    assert not details_changed(row.chat, row.chat.model_copy(update={"last_seq": 99}))


def test_reading_lowers_the_count() -> None:
    msgs = [message(n) for n in range(1, 6)] + [message(6, sender=ME), message(7, deleted_at=T0)]
    assert unread_after(msgs, 2, ME) == 4  # 3, 4, 5 and the deleted 7 (as the server counts); not one's own 6
    row = summary(last_seq=7, read=0, unread=5)
    assert summary_read_up_to(row, 5, unread_after(msgs, 5, ME)).unread_count == 1  # the deleted 7
    assert summary_read_up_to(row, 0, 99) == row


def test_a_message_after_its_chat_row_update_still_counts_as_unread() -> None:
    # The chat row's update (its counters) is pushed before the message that moved them.
    row = summary(last_seq=3, read=3)
    bumped = summary_with_chat(row, row.chat.model_copy(update={"last_seq": 4, "last_rev": 4}))
    after = summary_with_message(bumped, message(4), ME)
    assert after.unread_count == 1


def test_a_fresh_read_of_the_chat_list_wins_unless_the_view_moved_on_meanwhile() -> None:
    shown = summary_with_message(summary(last_seq=3, read=3), message(4), ME)
    # The server knows more (a push was lost): its row is shown.
    server = summary_with_message(shown, message(5), ME).model_copy(update={"unread_count": 2})
    assert summary_from_server(shown, server) == server
    assert summary_from_server(None, server) == server  # a chat the view did not list
    assert summary_from_server(server, server) is None  # nothing to change
    # A push applied while the read was on its way: the view's row is newer.
    assert summary_from_server(server, shown) is None
    # Renamed after the read began: same messages, the view keeps the newer title.
    renamed = server.model_copy(
        update={"chat": server.chat.model_copy(update={"title": "new", "updated_at": T0 + timedelta(hours=1)})}
    )
    assert summary_from_server(renamed, server) is None
    # Read here after the read began: the read position never moves back.
    read_here = server.model_copy(update={"last_read_seq": 5, "unread_count": 0})
    assert summary_from_server(read_here, server) is None
    newer = summary_with_message(server, message(6), ME)
    merged = summary_from_server(read_here, newer)
    assert merged is not None and merged.chat.last_rev == 6
    assert (merged.last_read_seq, merged.unread_count) == (5, 0)
