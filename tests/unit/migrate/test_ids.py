"""Deterministic ids (chat_migrate/ids.py)."""

from __future__ import annotations

import uuid

from chat_migrate import ids


def test_ids_are_name_based_uuids_under_the_tools_namespace() -> None:
    assert ids.user_id(7) == uuid.uuid5(ids.NAMESPACE, "user:7")
    assert ids.chat_id("3:17") == uuid.uuid5(ids.NAMESPACE, "room:3:17")
    raw = b'{"from": 1, "date": 1, "message": "hi", "roomId": "0"}'
    assert ids.message_id("0", raw) == uuid.uuid5(ids.NAMESPACE, "message:0:" + raw.decode())
    assert ids.message_id("0", raw).version == 5


def test_the_same_member_in_another_room_is_another_message() -> None:
    raw = b"same bytes"
    assert ids.message_id("0", raw) != ids.message_id("1", raw)
    assert ids.MessageIds("0")(raw) == ids.MessageIds("0")(raw) == ids.message_id("0", raw)


def test_non_utf8_members_still_get_an_id() -> None:
    assert isinstance(ids.message_id("0", b"\xff\xfe"), uuid.UUID)
