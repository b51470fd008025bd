"""Broadcasts are unpacked into row changes, with the time a new message was written."""

from __future__ import annotations

from desktop_chat.realtime.events import Push, RowChange, change_time, push_from, row_change
from desktop_chat.realtime.topics import chat_of, chat_topic, topic_kind, typing_topic, user_topic
from tests.unit.dal.test_changes import CHAT, MESSAGE, NOTICE, body


def test_a_broadcast_is_unpacked_into_its_row_change() -> None:
    assert row_change(body("chat_messages", "INSERT", MESSAGE)) == RowChange("chat_messages", "INSERT", MESSAGE, None)
    old = {"session_id": "c", "user_id": "u"}
    assert row_change(body("chat_members", "delete", old=old)) == RowChange("chat_members", "DELETE", None, old)
    assert row_change({**body("chat_messages", "INSERT", MESSAGE), "schema": "private"}) is None
    assert row_change({"schema": "public", "table": "chat_messages"}) is None  # no operation
    assert row_change(NOTICE) is None


def test_what_the_client_hands_over_becomes_a_push() -> None:
    message = {"event": "message", "payload": body("chat_messages", "INSERT", MESSAGE), "type": "broadcast"}
    assert push_from("chat:x", message) == Push("chat:x", "message", message["payload"])  # type: ignore[arg-type]
    assert push_from("chat:x", {"event": "message", "payload": "text"}) is None
    assert push_from("chat:x", {"payload": {}}) is None


def test_the_time_a_new_message_was_written() -> None:
    inserted = Push("chat:x", "message", body("chat_messages", "INSERT", MESSAGE))
    assert change_time(inserted) == 1795694400.123456  # 2026-11-26T12:00:00.123456Z
    assert change_time(Push("user:x", "activity", NOTICE)) == 1795694400.123456
    edited = Push("chat:x", "message", body("chat_messages", "UPDATE", MESSAGE))
    assert change_time(edited) is None  # an edit's delay is not measured from the message's creation
    assert change_time(Push("user:x", "activity", {**NOTICE, "created_at": "yesterday"})) is None
    assert change_time(Push("user:x", "member", {})) is None


def test_topic_names() -> None:
    import uuid

    from desktop_chat.models import ChatId, UserId

    chat, user = ChatId(uuid.UUID(CHAT)), UserId(uuid.uuid4())
    assert (chat_topic(chat), typing_topic(chat), user_topic(user)) == (
        f"chat:{CHAT}",
        f"chat:{CHAT}:typing",
        f"user:{user}",
    )
    assert chat_of(f"realtime:chat:{CHAT}:typing") == chat_of(f"chat:{CHAT}") == chat
    assert chat_of(f"user:{user}") is None and chat_of("chat:nonsense") is None
    assert [topic_kind(t) for t in (chat_topic(chat), typing_topic(chat), f"realtime:{user_topic(user)}")] == [
        "chat",
        "typing",
        "user",
    ]
