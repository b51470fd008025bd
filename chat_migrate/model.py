"""What the legacy store holds, as read by :mod:`chat_migrate.source` (plain data, no I/O)."""

from __future__ import annotations

from dataclasses import dataclass, field

from chat_migrate.legacy import private_parties


@dataclass(frozen=True)
class LegacyUser:
    """A ``user:{id}`` hash, with the rooms its ``user:{id}:rooms`` set lists."""

    id: int
    username: str | None
    password_hash: str | None
    rooms: frozenset[str] = frozenset()


@dataclass(frozen=True)
class LegacyRoom:
    """A room: a ``room:{id}`` sorted set, a ``room:{id}:name``, or an id in some user's room set."""

    id: str
    name: str | None
    size: int  # ZCARD: members of the sorted set, messages and dirt alike

    @property
    def parties(self) -> tuple[int, int] | None:
        return private_parties(self.id)


@dataclass
class Inventory:
    """Everything about the store except the messages themselves (those are streamed)."""

    users: dict[int, LegacyUser] = field(default_factory=dict)
    rooms: dict[str, LegacyRoom] = field(default_factory=dict)
    # room -> ids of the users whose ``user:{id}:rooms`` set lists it (whether or not their hash still exists)
    listed: dict[str, set[int]] = field(default_factory=dict)
    total_users: int | None = None
    keys: int = 0  # keys of the legacy layout

    @property
    def messages(self) -> int:
        return sum(room.size for room in self.rooms.values())
