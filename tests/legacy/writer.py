"""Writes the legacy layout exactly as the legacy chat server does.

The server (a Flask + Socket.IO app keeping everything in Redis) registers a user with ``INCR
total_users``, ``SET username:{name} user:{id}``, ``HSET user:{id} username … password <bcrypt $2b$,
cost 10>`` and ``SADD user:{id}:rooms 0``; it opens a private room by adding ``"{min}:{max}"`` to both
users' room sets; and it stores a message by escaping its text (``&`` first, then ``" ' < >``), dumping
the message object with ``json.dumps`` and ``ZADD room:{id} {member: int(date)}``. :func:`member` and
:func:`escape` reproduce those bytes; :class:`LegacyServer` performs the writes one by one, as the server
would, and :mod:`tests.legacy.generate` writes the same bytes in bulk.
"""

from __future__ import annotations

import json
from typing import Any

import bcrypt
import redis


def escape(text: str) -> str:
    """The server's HTML escaping: ``&`` first so that the other escapes are not escaped again."""
    text = text.replace("&", "&amp;")
    for char, entity in (('"', "&quot;"), ("'", "&#39;"), ("<", "&lt;"), (">", "&gt;")):
        text = text.replace(char, entity)
    return text


def member(sender: int | str, date: int | float, text: str, room: str, *, escaped: bool = False) -> bytes:
    """The sorted-set member the server stores for one message (``json.dumps`` of the message object)."""
    message = {"from": sender, "date": date, "message": text if escaped else escape(text), "roomId": room}
    return json.dumps(message).encode()


def hash_password(password: str) -> bytes:
    """What the server stores as ``password``: ``bcrypt.hashpw(password, gensalt(10))``, a ``$2b$`` hash."""
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(10))


def private_room_id(a: int, b: int) -> str:
    return f"{min(a, b)}:{max(a, b)}"


class LegacyServer:
    """The legacy server's writes, one command at a time, on a synchronous Redis client."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client

    def init(self) -> None:
        """What the server does on its first start: the user counter and the shared room's name."""
        if not self.redis.exists("total_users"):
            self.redis.set("total_users", 0)
            self.redis.set("room:0:name", "General")

    def create_user(self, username: str, password: str | None = None, *, hashed: bytes | None = None) -> int:
        """Register ``username``; pass ``hashed`` to reuse a hash (bcrypt at cost 10 is slow on purpose)."""
        password_hash = hashed if hashed is not None else hash_password(password or "password")
        user_id = int(self.redis.incr("total_users"))
        self.redis.set(f"username:{username}", f"user:{user_id}")
        self.redis.hset(f"user:{user_id}", mapping={"username": username, "password": password_hash})
        self.redis.sadd(f"user:{user_id}:rooms", "0")
        return user_id

    def create_private_room(self, a: int, b: int) -> str:
        room = private_room_id(a, b)
        self.redis.sadd(f"user:{a}:rooms", room)
        self.redis.sadd(f"user:{b}:rooms", room)
        return room

    def name_room(self, room: str, name: str) -> None:
        self.redis.set(f"room:{room}:name", name)

    def send(self, room: str, sender: int | str, text: str, date: int | float) -> bytes:
        """Store a message as the server's socket handler does; returns the member written."""
        raw = member(sender, date, text, room)
        self.redis.zadd(f"room:{room}", {raw: int(date)})
        return raw

    def send_raw(self, room: str, raw: bytes, score: float) -> None:
        """Store a member as it is (dirt that no current server code writes, but old data has)."""
        self.redis.zadd(f"room:{room}", {raw: score})

    def online(self, user_id: int) -> None:
        self.redis.sadd("online_users", user_id)

    def message_object(self, raw: bytes) -> dict[str, Any]:
        return dict(json.loads(raw))
