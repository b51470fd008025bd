"""Reading the legacy store: an inventory of users and rooms, then messages streamed room by room.

Nothing here writes to Redis except :meth:`LegacySource.delete_keys` and the restore in
:mod:`chat_migrate.backup`. Reads go through pipelines (one round trip per few thousand commands) and
``ZRANGE`` by index in chunks, so memory stays bounded by the chunk, not the room.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import redis.asyncio as aredis
from redis import exceptions as redis_errors

from chat_migrate.errors import BadInput, Unavailable
from chat_migrate.legacy import parse_user_id, room_of_key, user_of_key
from chat_migrate.model import Inventory, LegacyRoom, LegacyUser

PIPELINE = 1000  # commands per pipeline round trip
LAYOUT_PATTERNS = ("total_users", "online_users", "username:*", "user:*", "room:*")


def redact(url: str) -> str:
    """``url`` without user name or password, for messages and logs (also when it is malformed)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "localhost"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<a malformed URL>"
    path = parts.path if parts.path not in ("", "/") else ""
    return f"{parts.scheme}://{host}{port}{path}"


def where(url: str, default_port: int) -> str:
    """``host:port`` of a URL already known to parse."""
    parts = urlsplit(url)
    return f"{parts.hostname or 'localhost'}:{parts.port or default_port}"


def check_url(url: str, option: str, schemes: tuple[str, ...]) -> None:
    """:class:`BadInput` unless ``url`` parses, has one of ``schemes`` and a numeric port (if any)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - parsing the port is the check
    except ValueError as error:
        raise BadInput(f"{option} is not a usable URL ({error})") from None
    if parts.scheme not in schemes:
        raise BadInput(f"{option} is not a usable URL (it should start with {' or '.join(s + '://' for s in schemes)})")


def _where(url: str) -> str:
    return where(url, 6379)


def is_layout_key(key: bytes) -> bool:
    """Whether ``key`` belongs to the legacy layout (what backup saves and cleanup deletes)."""
    return key in (b"total_users", b"online_users") or key.startswith((b"username:", b"user:", b"room:"))


@dataclass(frozen=True)
class Chunk:
    """Consecutive members of one room's sorted set, from position ``start`` on (in ``ZRANGE`` order)."""

    room: str
    start: int
    members: list[bytes]
    scores: list[bytes]  # as Redis sent them; legacy.parse_member converts one only when it needs it


class LegacySource:
    """A connection to the legacy Redis."""

    def __init__(self, url: str, client: aredis.Redis) -> None:
        self.url = url
        self.redis = client

    @classmethod
    async def open(cls, url: str, *, connect_timeout: float = 15.0) -> LegacySource:
        """Connect and check that Redis answers (and accepts the password); else :class:`Unavailable`."""
        check_url(url, "--redis", ("redis", "rediss", "unix"))
        try:
            client = aredis.from_url(
                url, socket_connect_timeout=connect_timeout, socket_timeout=connect_timeout * 4, protocol=2
            )
        except ValueError as error:
            raise Unavailable(f"cannot use Redis URL {redact(url)}: {error}") from None
        # ZRANGE … WITHSCORES as Redis sends it: a flat list, scores as bytes (redis-py would build a pair
        # and a float for each of a million members, which costs more than the parsing that follows).
        client.set_response_callback("ZRANGE", lambda response, **options: response)
        source = cls(url, client)
        await source.call(client.ping())
        return source

    async def close(self) -> None:
        await self.redis.aclose()

    async def call(self, awaitable: Any) -> Any:
        """Await a Redis call, turning connection and password failures into one clear sentence."""
        try:
            return await awaitable
        except redis_errors.AuthenticationError:
            raise Unavailable(f"Redis at {_where(self.url)} refused the password (check --redis)") from None
        except (redis_errors.ConnectionError, redis_errors.TimeoutError, OSError) as error:
            reason = str(error).split("\n")[0] or type(error).__name__
            raise Unavailable(f"cannot reach Redis at {_where(self.url)}: {reason}") from None
        except redis_errors.ResponseError as error:
            if "NOAUTH" in str(error) or "WRONGPASS" in str(error):
                raise Unavailable(f"Redis at {_where(self.url)} refused the password (check --redis)") from None
            raise

    async def pipeline(self, commands: Iterable[tuple[Any, ...]]) -> list[Any]:
        """Run ``(method, *args)`` commands in pipelines of :data:`PIPELINE`, results in order."""
        results: list[Any] = []
        pipe = self.redis.pipeline(transaction=False)
        pending = 0
        for name, *args in commands:
            getattr(pipe, name)(*args)
            pending += 1
            if pending >= PIPELINE:
                results.extend(await self.call(pipe.execute()))
                pending = 0
        if pending:
            results.extend(await self.call(pipe.execute()))
        return results

    async def layout_keys(self) -> list[bytes]:
        """Every key of the legacy layout (one ``SCAN`` over the keyspace)."""
        keys: list[bytes] = []
        cursor: int = 0
        while True:
            cursor, batch = await self.call(self.redis.scan(cursor, count=5000))
            keys.extend(key for key in batch if is_layout_key(key))
            if cursor == 0:
                return sorted(set(keys))

    async def inventory(self) -> Inventory:
        """Users (hash, room set) and rooms (name, size), read without touching the messages."""
        keys = await self.layout_keys()
        types = await self.pipeline(("type", key) for key in keys)
        kinds = {
            key: (kind.decode() if isinstance(kind, bytes) else str(kind))
            for key, kind in zip(keys, types, strict=True)
        }
        inventory = Inventory(keys=len(keys))

        user_keys = [key for key in keys if kinds[key] == "hash" and user_of_key(key) is not None]
        hashes = await self.pipeline(("hgetall", key) for key in user_keys)
        set_keys = [key for key in keys if kinds[key] == "set" and key.startswith(b"user:") and key.endswith(b":rooms")]
        sets = await self.pipeline(("smembers", key) for key in set_keys)
        listed: dict[int, frozenset[str]] = {}
        for key, members in zip(set_keys, sets, strict=True):
            uid = parse_user_id(key[len(b"user:") : -len(b":rooms")])
            if uid is not None:
                listed[uid] = frozenset(_text(member) for member in members)
        for key, fields in zip(user_keys, hashes, strict=True):
            uid = user_of_key(key)
            assert uid is not None
            username = fields.get(b"username")
            password = fields.get(b"password")
            inventory.users[uid] = LegacyUser(
                id=uid,
                username=None if username is None else _text(username),
                password_hash=None if password is None else _text(password),
                rooms=listed.get(uid, frozenset()),
            )
        for uid, rooms in listed.items():
            for room in rooms:
                inventory.listed.setdefault(room, set()).add(uid)

        room_keys = [key for key in keys if kinds[key] == "zset" and room_of_key(key) is not None]
        sizes = await self.pipeline(("zcard", key) for key in room_keys)
        name_keys = [
            key for key in keys if kinds[key] == "string" and key.startswith(b"room:") and key.endswith(b":name")
        ]
        names_raw = await self.pipeline(("get", key) for key in name_keys)
        names = {
            _text(key[len(b"room:") : -len(b":name")]): _text(value)
            for key, value in zip(name_keys, names_raw, strict=True)
            if value
        }
        size_of: dict[str, int] = {}
        for key, size in zip(room_keys, sizes, strict=True):
            room_id = room_of_key(key)
            if room_id is not None:
                size_of[room_id] = int(size)
        for room in set(size_of) | set(names) | set(inventory.listed):
            inventory.rooms[room] = LegacyRoom(room, names.get(room), size_of.get(room, 0))
        if b"total_users" in kinds:
            inventory.total_users = parse_user_id(await self.call(self.redis.get("total_users")))
        return inventory

    async def room_sizes(self, rooms: Sequence[str]) -> dict[str, int]:
        sizes = await self.pipeline(("zcard", f"room:{room}") for room in rooms)
        return {room: int(size) for room, size in zip(rooms, sizes, strict=True)}

    async def chunks(self, rooms: Sequence[tuple[str, int]], chunk: int) -> AsyncIterator[Chunk]:
        """The members of ``rooms`` (id, size) in ``ZRANGE`` order, ``chunk`` at a time, with their scores.

        Small rooms share a pipeline; a large room comes in several chunks, so neither the pipeline nor a
        big room ever holds more than about ``chunk`` members in memory.
        """
        plan: list[tuple[str, int, int]] = []
        planned = 0
        for room, size in rooms:
            for start in range(0, max(size, 1), chunk):
                plan.append((room, start, min(start + chunk, size) - 1))
                planned += min(chunk, size - start)
                if planned >= chunk:
                    for item in await self._fetch(plan):
                        yield item
                    plan, planned = [], 0
        if plan:
            for item in await self._fetch(plan):
                yield item

    async def _fetch(self, plan: list[tuple[str, int, int]]) -> list[Chunk]:
        # Raw ZRANGE … WITHSCORES (no client-side score conversion): scores stay bytes until one is needed.
        replies = await self.pipeline(
            ("zrange", f"room:{room}", start, stop, False, True) for room, start, stop in plan if stop >= start
        )
        out: list[Chunk] = []
        it = iter(replies)
        for room, start, stop in plan:
            if stop < start:
                out.append(Chunk(room, start, [], []))
                continue
            flat = next(it)
            out.append(Chunk(room, start, flat[0::2], flat[1::2]))
        return out

    async def delete_keys(self, keys: Sequence[bytes]) -> int:
        removed = await self.pipeline(("unlink", *keys[i : i + 500]) for i in range(0, len(keys), 500))
        return sum(int(n) for n in removed)


def _text(value: bytes | str) -> str:
    return value if isinstance(value, str) else value.decode("utf-8", "replace")
