"""The change-type table: broadcasts become change events (malformed ones are dropped, not raised),
reducers turn events into a batch without touching anything, and every event type has its row."""

from __future__ import annotations

import logging
import typing
import uuid

import pytest

from desktop_chat.dal.changes import CHANGE_TYPES, EVENTS, ChangeBatch, parse_change, reduce
from desktop_chat.models import (
    ChangeEvent,
    ChatId,
    ChatMember,
    ChatRemoved,
    ChatSummary,
    ChatUpserted,
    MemberRemoved,
    MemberRole,
    MemberUpserted,
    Message,
    MessageNoticed,
    MessageUpserted,
    ReadMoved,
    UserId,
)
from desktop_chat.realtime.events import Push
from tests.builders import chat_summary, message

CHAT = "c0000000-0000-4000-8000-00000000a0b0"
ALICE = "a11ce000-0000-4000-8000-000000000001"


EVENT_OF = {"chat_messages": "message", "chat_sessions": "chat", "chat_members": "member"}


def body(table: str, kind: str, record: dict[str, object] | None = None, old: dict[str, object] | None = None):
    """What ``realtime.broadcast_changes`` sends: the row change, and the id of its realtime.messages row."""
    return {
        "schema": "public",
        "table": table,
        "operation": kind,
        "record": record,
        "old_record": old,
        "id": str(uuid.uuid4()),
    }


def push(table: str, kind: str, record: dict[str, object] | None = None, old: dict[str, object] | None = None) -> Push:
    return Push(topic=f"chat:{CHAT}", event=EVENT_OF.get(table, table), payload=body(table, kind, record, old))


MESSAGE = {
    "id": str(uuid.uuid4()),
    "session_id": CHAT,
    "sender_id": ALICE,
    "content": "hi",
    "created_at": "2026-11-26T12:00:00.123456+00:00",
    "edited_at": None,
    "deleted_at": None,
    "seq": 7,
    "rev": 9,
}


def test_message_insert_and_update() -> None:
    event = parse_change(push("chat_messages", "INSERT", MESSAGE))
    assert isinstance(event, MessageUpserted)
    assert (event.message.seq, event.message.rev, str(event.message.chat_id)) == (7, 9, CHAT)
    edited = parse_change(push("chat_messages", "UPDATE", {**MESSAGE, "content": "hey", "rev": 10}))
    assert isinstance(edited, MessageUpserted)
    assert edited.message.content == "hey"


def test_chat_and_member_changes() -> None:
    chat = {
        "id": CHAT,
        "title": "Renamed",
        "created_by": ALICE,
        "created_at": "2026-11-01T00:00:00+00:00",
        "updated_at": "2026-11-26T00:00:00+00:00",
        "last_message_at": None,
        "last_seq": 3,
        "last_rev": 4,
        "deleted_at": None,
    }
    assert isinstance(parse_change(push("chat_sessions", "UPDATE", chat)), ChatUpserted)
    member = {"session_id": CHAT, "user_id": ALICE, "role": "owner", "joined_at": "2026-11-01T00:00:00+00:00"}
    assert isinstance(parse_change(push("chat_members", "INSERT", member)), MemberUpserted)
    removed = parse_change(push("chat_members", "DELETE", old={"session_id": CHAT, "user_id": ALICE}))
    assert removed == MemberRemoved(chat_id=uuid.UUID(CHAT), user_id=uuid.UUID(ALICE))
    purged = parse_change(push("chat_sessions", "DELETE", old=chat))
    assert purged == ChatRemoved(chat_id=uuid.UUID(CHAT))


NOTICE = {
    "chat_id": CHAT,
    "message_id": MESSAGE["id"],
    "sender_id": ALICE,
    "seq": 7,
    "rev": 9,
    "created_at": "2026-11-26T12:00:00.123456+00:00",
    "preview": "hi",
    "id": str(uuid.uuid4()),
}


def test_an_activity_notice_is_a_message_announced() -> None:
    event = parse_change(Push(topic=f"user:{ALICE}", event="activity", payload=NOTICE))
    assert isinstance(event, MessageNoticed)
    assert (str(event.message.id), event.message.seq, event.message.rev, event.message.content) == (
        MESSAGE["id"],
        7,
        9,
        "hi",
    )


def test_a_read_notice_is_a_read_position_moved_and_changes_no_view(caplog: pytest.LogCaptureFixture) -> None:
    payload = {"chat_id": CHAT, "user_id": ALICE, "last_read_seq": 12}
    event = parse_change(Push(topic=f"chat:{CHAT}", event="read", payload=payload))
    assert isinstance(event, ReadMoved)
    assert event == ReadMoved(chat_id=ChatId(uuid.UUID(CHAT)), user_id=UserId(uuid.UUID(ALICE)), last_read_seq=12)
    # Only the receipts use it: this user's own position comes as its member row on user:<me>.
    done = reduce([event], batch(Views({}, {})))
    assert not (done.messages or done.rows or done.forget_details or done.drop or done.reload_list or done.notify)
    with caplog.at_level(logging.WARNING):
        assert parse_change(Push(f"chat:{CHAT}", "read", {**payload, "last_read_seq": None})) is None
    assert caplog.text.count("malformed") == 1


def test_irrelevant_and_malformed_pushes_are_dropped(caplog: pytest.LogCaptureFixture) -> None:
    assert parse_change(push("other_table", "INSERT", {"x": 1})) is None
    assert parse_change(Push(f"chat:{CHAT}", "message", {**body("chat_messages", "INSERT"), "schema": "x"})) is None
    assert parse_change(Push(f"chat:{CHAT}", "chat", body("chat_messages", "INSERT", MESSAGE))) is None
    with caplog.at_level(logging.WARNING):
        assert parse_change(push("chat_messages", "INSERT", {**MESSAGE, "seq": "not a number"})) is None
        assert parse_change(Push(f"user:{ALICE}", "activity", {**NOTICE, "seq": None})) is None
        assert parse_change(Push(f"user:{ALICE}", "activity", {"preview": "secret"})) is None
    assert caplog.text.count("malformed") == 3
    assert "hi" not in caplog.text and "secret" not in caplog.text  # never log message text
    assert ALICE not in caplog.text  # nor whose topic it was


# --- the table ---------------------------------------------------------------------------------------
def test_every_change_event_has_one_row_and_realtime_listens_to_its_events() -> None:
    events = typing.get_args(ChangeEvent)
    assert sorted(row.event.__name__ for row in CHANGE_TYPES) == sorted(event.__name__ for event in events)
    assert EVENTS == ("message", "activity", "chat", "member", "read")
    assert all(row.parse is not None for row in CHANGE_TYPES if row.broadcast is not None)


# --- reducers: the batch an event makes, without touching views or cache -----------------------------
ME = UserId(uuid.UUID(ALICE))
CHAT_ID = ChatId(uuid.UUID(CHAT))


class Views:
    """The views as a reducer sees them (read only)."""

    def __init__(self, rows: dict[ChatId, ChatSummary], open_chats: dict[ChatId, list[Message]]) -> None:
        self.rows = rows
        self.timelines = open_chats

    def row(self, chat_id: ChatId) -> ChatSummary | None:
        return self.rows.get(chat_id)

    def open_chats(self) -> list[ChatId]:
        return list(self.timelines)

    def loaded(self, chat_id: ChatId) -> tuple[list[Message], int | None] | None:
        rows = self.timelines.get(chat_id)
        return None if rows is None else (rows, rows[0].seq if rows else None)


def summary(last_seq: int = 5, read: int = 2) -> ChatSummary:
    return chat_summary(CHAT_ID, last_seq=last_seq).model_copy(update={"last_read_seq": read, "unread_count": 3})


def batch(views: Views) -> ChangeBatch:
    return ChangeBatch(ME, views, {})


def test_a_chat_row_change_updates_the_row_and_forgets_details_only_when_they_changed() -> None:
    row = summary()
    counters = reduce(
        [ChatUpserted(chat=row.chat.model_copy(update={"last_seq": 6, "last_rev": 6}))],
        batch(Views({CHAT_ID: row}, {})),
    )
    assert counters.rows[CHAT_ID].chat.last_seq == 6 and not counters.forget_details
    renamed = reduce(
        [ChatUpserted(chat=row.chat.model_copy(update={"title": "New"}))], batch(Views({CHAT_ID: row}, {}))
    )
    assert renamed.rows[CHAT_ID].chat.title == "New" and renamed.forget_details == {CHAT_ID}
    unknown = reduce([ChatUpserted(chat=row.chat)], batch(Views({}, {})))
    assert unknown.reload_list and not unknown.rows
    deleted = row.chat.model_copy(update={"deleted_at": row.chat.created_at})
    assert reduce([ChatUpserted(chat=deleted)], batch(Views({CHAT_ID: row}, {}))).drop == {CHAT_ID}


def test_our_membership_moves_the_read_position_or_asks_for_a_reload() -> None:
    row = summary(last_seq=5, read=2)
    read_here = row.chat.created_at
    member = ChatMember(chat_id=CHAT_ID, user_id=ME, role=row.role, joined_at=read_here, last_read_seq=4)
    timeline = [message(CHAT_ID, seq) for seq in range(1, 6)]
    seen = reduce([MemberUpserted(member=member)], batch(Views({CHAT_ID: row}, {CHAT_ID: timeline})))
    assert (seen.rows[CHAT_ID].last_read_seq, seen.rows[CHAT_ID].unread_count) == (4, 1)
    assert seen.forget_details == set()  # a read position is not in the details: the cached entry stays
    owner = member.model_copy(update={"role": MemberRole.OWNER, "last_read_seq": 2})
    promoted = reduce([MemberUpserted(member=owner)], batch(Views({CHAT_ID: row}, {CHAT_ID: timeline})))
    assert promoted.rows[CHAT_ID].role is MemberRole.OWNER and promoted.forget_details == {CHAT_ID}
    # Not open here: only the server can count what is unread.
    assert reduce([MemberUpserted(member=member)], batch(Views({CHAT_ID: row}, {}))).reload_list
    removed = reduce([MemberRemoved(chat_id=CHAT_ID, user_id=ME)], batch(Views({CHAT_ID: row}, {})))
    assert removed.drop == {CHAT_ID}
    other = reduce([MemberRemoved(chat_id=CHAT_ID, user_id=UserId(uuid.uuid4()))], batch(Views({CHAT_ID: row}, {})))
    assert other.forget_details == {CHAT_ID} and not other.drop


def test_messages_are_collected_per_chat() -> None:
    first, second = message(CHAT_ID, 1), message(CHAT_ID, 2)
    result = reduce([MessageUpserted(message=second), MessageUpserted(message=first)], batch(Views({}, {CHAT_ID: []})))
    assert result.messages == {CHAT_ID: [second, first]}
    assert not result.rows and not result.notify


def test_a_notice_moves_the_row_counts_it_unread_and_notifies_once() -> None:
    row = summary(last_seq=5, read=2)
    row = row.model_copy(update={"last_message": message(CHAT_ID, 5)})
    other = UserId(uuid.uuid4())
    new = message(CHAT_ID, 6, sender=other, rev=6, content="preview")
    noticed = reduce([MessageNoticed(message=new)], batch(Views({CHAT_ID: row}, {})))
    assert noticed.rows[CHAT_ID].last_message == new and noticed.rows[CHAT_ID].unread_count == row.unread_count + 1
    assert noticed.rows[CHAT_ID].chat.last_seq == 6 and noticed.notify == [new]
    assert not noticed.messages  # the message itself (and the cache) waits for the chat's topic or a back-fill
    # The chat's own topic brought it first: the notice adds nothing.
    shown = row.model_copy(update={"last_message": new})
    again = reduce([MessageNoticed(message=new)], batch(Views({CHAT_ID: shown}, {})))
    assert not again.rows and not again.notify
    # One's own message (from another device) moves the row but is neither unread nor notified.
    mine = message(CHAT_ID, 6, sender=ME, rev=6)
    own = reduce([MessageNoticed(message=mine)], batch(Views({CHAT_ID: row}, {})))
    assert own.rows[CHAT_ID].unread_count == row.unread_count and not own.notify
    # A chat not listed yet: only the server can say what it is.
    assert reduce([MessageNoticed(message=new)], batch(Views({}, {}))).reload_list
