"""The chat list's place of a row (``ChatListKey``) and a chat's member total."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from desktop_chat.models import ChatDetails, ChatId, ChatListKey, ChatSummary
from tests.builders import chat_row, chat_summary

T0 = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)


def key(seconds: int, chat: str) -> ChatListKey:
    return ChatListKey(activity_at=T0 + timedelta(seconds=seconds), chat_id=ChatId(uuid.UUID(chat)))


def test_a_place_is_later_in_the_list_when_its_activity_is_older_and_ties_go_by_id_as_in_the_database() -> None:
    low, high = "00000000-0000-4000-8000-000000000001", "f0000000-0000-4000-8000-000000000001"
    assert key(1, high) < key(2, low)  # older activity: further down, whatever the id
    assert key(1, low) < key(1, high)  # same activity: the smaller uuid further down (desc, desc)
    assert not key(1, high) < key(1, high)
    assert min([key(5, low), key(1, high), key(3, low)]) == key(1, high)


def test_a_summary_has_a_place_only_when_the_server_listed_it() -> None:
    chat = ChatId(uuid.uuid4())
    row = chat_summary(chat)
    assert row.list_key is None
    placed = row.model_copy(update={"activity_at": T0})
    assert placed.list_key == ChatListKey(activity_at=T0, chat_id=chat)
    again = ChatSummary.model_validate_json(placed.model_dump_json())
    assert again.list_key == placed.list_key  # survives the cache's round trip


def test_the_member_total_counts_everyone_even_when_only_some_are_named() -> None:
    chat = chat_row(ChatId(uuid.uuid4()))
    assert ChatDetails(chat=chat, members=(), member_count=5000).members_total == 5000
    assert ChatDetails(chat=chat, members=()).members_total == 0  # an entry cached before the count existed
