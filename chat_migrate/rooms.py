"""What a legacy room becomes: its chat's title and its members with their roles (pure: no I/O).

- A named room keeps its name (``room:0:name`` = ``General``); a room without a name that is not a
  private room is called ``Room {id}``.
- A private room ``"{a}:{b}"`` is titled with its two members' names, ``"alice & bob"``; a member whose
  user hash is gone appears as ``deleted user {id}``.
- Members are the users whose ``user:{id}:rooms`` set lists the room, plus everyone who sent a message
  in it without being listed, restricted to users that have an account. Legacy rooms have no owners,
  but someone must be able to rename the chat and add people: both members of a private room are
  owners, and in a named room the member with the lowest legacy id is.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping

from chat_migrate.legacy import private_parties
from chat_migrate.model import LegacyRoom, LegacyUser

MAX_TITLE = 200  # chat_sessions_title_length


def _name(uid: int, users: Mapping[int, LegacyUser]) -> str:
    user = users.get(uid)
    if user is None:
        return f"deleted user {uid}"
    name = (user.username or "").strip()
    return name or f"user {uid}"


def chat_title(room: LegacyRoom, users: Mapping[int, LegacyUser]) -> str:
    """The chat's title (1..200 characters, never only whitespace)."""
    if room.name is not None and room.name.strip():
        title = room.name.strip()
    else:
        parties = private_parties(room.id)
        title = f"Room {room.id}" if parties is None else f"{_name(parties[0], users)} & {_name(parties[1], users)}"
    if len(title) > MAX_TITLE:
        title = title[: MAX_TITLE - 1] + "…"
    return title


def chat_members(
    room: LegacyRoom,
    listed: Iterable[int],
    senders: Iterable[int],
    accounts: Mapping[int, uuid.UUID],
) -> list[tuple[int, uuid.UUID, str]]:
    """``(legacy id, account, role)`` for every member who has an account, in legacy id order."""
    legacy = sorted({uid for uid in [*listed, *senders] if uid in accounts})
    parties = private_parties(room.id)
    members: list[tuple[int, uuid.UUID, str]] = []
    seen: set[uuid.UUID] = set()
    for uid in legacy:
        account = accounts[uid]
        if account in seen:  # two legacy users linked to one account (never, as addresses are unique)
            continue
        seen.add(account)
        if parties is not None:
            role = "owner" if uid in parties else "member"
        else:
            role = "owner" if not members else "member"
        members.append((uid, account, role))
    if members and not any(role == "owner" for _, _, role in members):
        uid, account, _ = members[0]
        members[0] = (uid, account, "owner")
    return members
