"""Pushes are unpacked into row changes, with the time they were committed."""

from __future__ import annotations

from desktop_chat.realtime.events import RowChange, commit_time, row_change
from tests.unit.dal.test_changes import MESSAGE, push


def test_a_push_is_unpacked_into_its_row_change() -> None:
    assert row_change(push("chat_messages", "INSERT", MESSAGE)) == RowChange("chat_messages", "INSERT", MESSAGE, None)
    old = {"session_id": "c", "user_id": "u"}
    assert row_change(push("chat_members", "delete", old=old)) == RowChange("chat_members", "DELETE", None, old)
    assert row_change({"data": {"schema": "private", "table": "chat_messages"}}) is None
    assert row_change({"data": "nonsense"}) is None


def test_commit_time_reads_the_push_timestamp() -> None:
    assert commit_time(push("chat_messages", "INSERT", MESSAGE)) == 1795694400.0  # 2026-11-26T12:00:00Z
    assert commit_time({"data": {"commit_timestamp": "yesterday"}}) is None
    assert commit_time({"data": {}}) is None
