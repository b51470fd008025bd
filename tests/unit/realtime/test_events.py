"""postgres_changes pushes become change events; malformed ones are dropped, not raised."""

from __future__ import annotations

import logging
import uuid

import pytest

from desktop_chat.models import ChatUpserted, MemberRemoved, MemberUpserted, MessageUpserted, ProfileUpserted
from desktop_chat.realtime.events import parse_change

CHAT = "c0000000-0000-4000-8000-00000000a0b0"
ALICE = "a11ce000-0000-4000-8000-000000000001"


def push(table: str, kind: str, record: dict[str, object] | None = None, old: dict[str, object] | None = None):
    data: dict[str, object] = {
        "schema": "public",
        "table": table,
        "type": kind,
        "commit_timestamp": "2026-11-26T12:00:00.000Z",
        "columns": [],
        "errors": None,
    }
    if record is not None:
        data["record"] = record
    if old is not None:
        data["old_record"] = old
    return {"data": data, "ids": [1]}


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


def test_chat_member_and_profile_changes() -> None:
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
    profile = parse_change(push("profiles", "UPDATE", {"id": ALICE, "display_name": "Al"}))
    assert isinstance(profile, ProfileUpserted)


def test_irrelevant_and_malformed_pushes_are_dropped(caplog: pytest.LogCaptureFixture) -> None:
    assert parse_change(push("other_table", "INSERT", {"x": 1})) is None
    assert parse_change({"data": {"schema": "private", "table": "chat_messages"}}) is None
    with caplog.at_level(logging.WARNING):
        assert parse_change(push("chat_messages", "INSERT", {**MESSAGE, "seq": "not a number"})) is None
    assert "malformed" in caplog.text
    assert "hi" not in caplog.text  # never log message text


def test_commit_time_reads_the_push_timestamp() -> None:
    from desktop_chat.realtime.events import commit_time

    assert commit_time(push("chat_messages", "INSERT", MESSAGE)) == 1795694400.0  # 2026-11-26T12:00:00Z
    assert commit_time({"data": {"commit_timestamp": "yesterday"}}) is None
    assert commit_time({"data": {}}) is None


def test_the_clients_own_event_type_enum_is_understood() -> None:
    from realtime import RealtimePostgresChangesListenEvent

    payload = push("chat_messages", "INSERT", MESSAGE)
    payload["data"]["type"] = RealtimePostgresChangesListenEvent.Insert  # what the official client passes
    assert isinstance(parse_change(payload), MessageUpserted)
