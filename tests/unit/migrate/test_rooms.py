"""Chat titles and members with roles (chat_migrate/rooms.py)."""

from __future__ import annotations

import uuid

from chat_migrate.model import LegacyRoom, LegacyUser
from chat_migrate.rooms import MAX_TITLE, chat_members, chat_title

USERS = {1: LegacyUser(1, "alice", None), 2: LegacyUser(2, "bob", None), 3: LegacyUser(3, "  ", None)}
ACCOUNTS = {uid: uuid.UUID(int=uid) for uid in (1, 2, 3, 4)}


def test_titles() -> None:
    assert chat_title(LegacyRoom("0", "General", 0), USERS) == "General"
    assert chat_title(LegacyRoom("1:2", None, 0), USERS) == "alice & bob"
    assert chat_title(LegacyRoom("1:9", None, 0), USERS) == "alice & deleted user 9"
    assert chat_title(LegacyRoom("2:3", None, 0), USERS) == "bob & user 3"
    assert chat_title(LegacyRoom("42", None, 0), USERS) == "Room 42"
    assert chat_title(LegacyRoom("42", "   ", 0), USERS) == "Room 42"
    long = chat_title(LegacyRoom("7", "n" * 300, 0), USERS)
    assert len(long) == MAX_TITLE and long.endswith("…")


def test_private_rooms_have_two_owners_and_senders_become_members() -> None:
    members = chat_members(LegacyRoom("1:2", None, 0), [1], [2, 4], ACCOUNTS)
    assert members == [(1, ACCOUNTS[1], "owner"), (2, ACCOUNTS[2], "owner"), (4, ACCOUNTS[4], "member")]


def test_named_rooms_have_the_lowest_id_as_owner_and_skip_users_without_accounts() -> None:
    members = chat_members(LegacyRoom("0", "General", 0), [4, 2, 99], [3], ACCOUNTS)
    assert members == [(2, ACCOUNTS[2], "owner"), (3, ACCOUNTS[3], "member"), (4, ACCOUNTS[4], "member")]
    assert chat_members(LegacyRoom("0", "General", 0), [99], [98], ACCOUNTS) == []


def test_a_private_room_whose_parties_are_gone_still_gets_an_owner() -> None:
    members = chat_members(LegacyRoom("8:9", None, 0), [], [1], ACCOUNTS)
    assert members == [(1, ACCOUNTS[1], "owner")]
