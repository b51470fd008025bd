"""The Redis tier: redis.asyncio (hiredis parser), short timeouts, no retries, one round trip per call.

Layout (see ``keys``): plain values are strings with ``PX`` TTLs; a message list is a sorted set scored
by ``seq`` whose member at score 0 is the head marker (scores of real messages start at 1); the
per-user index is a sorted set of chat ids scored by last use. Writes that touch several keys run as
Lua scripts, so a list append, its trim, its TTL and the index update happen atomically in one round
trip; reads are short pipelines.

Retries are off on purpose: a failed call is reported at once to the circuit breaker, which moves the
cache to the memory tier, instead of stalling the caller through redis-py's default backoff.

Under ``allkeys-lru`` Redis may evict a user's index before the chat entries it lists; those entries are
then missed by ``purge_user`` and the chat cap, and simply expire with their TTL (they stay unreadable to
anyone else: values are bound to their user's key). Reads and writes touch the index, which keeps it
among the most recently used keys, so this is rare.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import WatchError

from desktop_chat.cache.keys import (
    META_KEY_ID,
    NAMESPACE,
    NAMESPACE_PATTERN,
    PROBE_KEY,
    CacheKey,
    KeyKind,
    chat_key,
    chats_index_key,
    msgs_key,
    recent_key,
)
from desktop_chat.cache.policy import CachePolicy
from desktop_chat.cache.store import (
    AppendResult,
    CacheStore,
    ListItem,
    StoredList,
    StoredValue,
    require_list,
    require_plain,
)
from desktop_chat.models import ChatId, UserId

__all__ = ["RedisCacheStore", "redis_client"]

# Shared by the write scripts: mark `session` as just used in `index` and evict the user's least recently
# used chats beyond `cap` from the index; their data keys are returned for the caller to unlink (a script
# should only touch the keys it declares).
_TOUCH = """
local function touch(index, score, session, cap, index_ttl)
  redis.call('ZADD', index, score, session)
  redis.call('PEXPIRE', index, index_ttl)
  local excess = redis.call('ZCARD', index) - cap
  local victims = {}
  if excess > 0 then
    for _, candidate in ipairs(redis.call('ZRANGE', index, 0, excess)) do
      if #victims == excess then break end
      if candidate ~= session then victims[#victims + 1] = candidate end
    end
    if #victims > 0 then redis.call('ZREM', index, unpack(victims)) end
  end
  return victims
end
"""

# KEYS: value, index. ARGV: data, ttl ms, score, session, cap, index ttl ms.
_SET_VALUE = (
    _TOUCH
    + """
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return touch(KEYS[2], ARGV[3], ARGV[4], tonumber(ARGV[5]), ARGV[6])
"""
)

# Redis decides whether a script may run out of memory at its first write only (and then lets it finish,
# so that it is never half applied). Each script's first write is therefore one that Redis refuses under
# maxmemory (SET, ZADD), not DEL or ZREM*, which it always allows: a full Redis then answers OOM.

# KEYS: list, index. ARGV: ttl ms, score, session, cap, index ttl ms, head, then seq/blob pairs.
_SET_LIST = (
    _TOUCH
    + """
redis.call('ZADD', KEYS[1], 0, ARGV[6])  -- the first write (see above); the DEL drops it again
redis.call('DEL', KEYS[1])
redis.call('ZADD', KEYS[1], 0, ARGV[6])
local batch = {}
for i = 7, #ARGV, 2 do
  batch[#batch + 1] = ARGV[i]
  batch[#batch + 1] = ARGV[i + 1]
  if #batch >= 512 then
    redis.call('ZADD', KEYS[1], unpack(batch))
    batch = {}
  end
end
if #batch > 0 then redis.call('ZADD', KEYS[1], unpack(batch)) end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return touch(KEYS[2], ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5])
"""
)

# KEYS: list, index. ARGV: ttl ms, score, session, cap, index ttl ms, max items, then seq/blob pairs
# in ascending seq. Returns {status, victim...}.
_APPEND_LIST = (
    _TOUCH
    + """
if redis.call('EXISTS', KEYS[1]) == 0 then return {'not-cached'} end
local floor = nil
local top = 0
if redis.call('ZCARD', KEYS[1]) > 1 then
  floor = tonumber(redis.call('ZRANGE', KEYS[1], 1, 1, 'WITHSCORES')[2])
  top = tonumber(redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')[2])
end
for i = 7, #ARGV, 2 do
  local seq = tonumber(ARGV[i])
  if floor == nil or seq >= floor then
    if seq > top + 1 then
      redis.call('DEL', KEYS[1])
      return {'gap'}
    end
    -- Add first, then remove what the item replaces (ZADD must be the first write, see above).
    local replaced = redis.call('ZRANGEBYSCORE', KEYS[1], seq, seq)
    redis.call('ZADD', KEYS[1], seq, ARGV[i + 1])
    for _, old in ipairs(replaced) do
      if old ~= ARGV[i + 1] then redis.call('ZREM', KEYS[1], old) end
    end
    if seq > top then top = seq end
  end
end
redis.call('ZREMRANGEBYRANK', KEYS[1], 1, -(tonumber(ARGV[6]) + 1))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
local result = touch(KEYS[2], ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5])
table.insert(result, 1, 'applied')
return result
"""
)

_UNLINK_BATCH = 500
_META_PREFIX = f"{NAMESPACE}:meta:".encode()
_PURGE_ATTEMPTS = 5


def redis_client(
    *,
    url: str | None = None,
    unix_socket: str | None = None,
    password: str | None = None,
    connect_timeout: float = 0.5,
    socket_timeout: float = 0.25,
) -> aioredis.Redis:
    """An async Redis client for the cache: bytes replies, short timeouts, no retries.

    Give either ``url`` (``redis://``, ``rediss://`` or ``unix://``) or ``unix_socket`` and ``password``.
    """
    options: dict[str, Any] = {
        "socket_connect_timeout": connect_timeout,
        "socket_timeout": socket_timeout,
        "retry": Retry(NoBackoff(), 0),
        "retry_on_error": [],
        "decode_responses": False,
        "client_name": "desktop-chat-cache",
    }
    if url is not None:
        return aioredis.Redis.from_url(url, **options)
    if unix_socket is None:
        raise ValueError("redis_client needs a url or a unix socket")
    return aioredis.Redis(unix_socket_path=unix_socket, password=password, **options)


def _ms(seconds: float) -> int:
    return max(1, math.ceil(seconds * 1000))


def _ttl(pttl: int) -> float | None:
    return pttl / 1000 if pttl >= 0 else None


class RedisCacheStore(CacheStore):
    """Cache entries in Redis.

    Args:
        client: From ``redis_client``; the store closes it in ``close``.
        policy: TTLs and caps.
        clock: Wall-clock seconds for the chat index's last-use scores; tests pass their own.
    """

    tier = "redis"

    def __init__(self, client: aioredis.Redis, policy: CachePolicy, *, clock: Callable[[], float] = time.time) -> None:
        super().__init__(policy)
        self.client = client
        self._clock = clock
        self._last_score = 0.0
        self._set_value = client.register_script(_SET_VALUE)
        self._set_list = client.register_script(_SET_LIST)
        self._append_list = client.register_script(_APPEND_LIST)

    def _score(self) -> str:
        # Strictly increasing within this process, so two uses in the same clock tick keep their order.
        self._last_score = max(self._clock(), self._last_score + 1e-6)
        return repr(self._last_score)

    def _index_args(self, key: CacheKey) -> list[str | int]:
        assert key.chat_id is not None
        return [
            self._score(),
            str(key.chat_id),
            self.policy.max_chats_per_user,
            _ms(self.policy.index_ttl),
        ]

    async def _evict(self, user: UserId, victims: Sequence[bytes]) -> None:
        """Unlink the data keys of chats the index just evicted."""
        if not victims:
            return
        names: list[str] = []
        for raw in victims:
            chat_id = _chat_id(raw)
            names += [chat_key(user, chat_id).redis_key, msgs_key(user, chat_id).redis_key]
        await self.client.unlink(*names)

    # --- plain values ------------------------------------------------------------------------------
    async def get(self, key: CacheKey) -> StoredValue | None:
        require_plain(key)
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.get(key.redis_key)
            pipe.pttl(key.redis_key)
            if key.chat_id is not None:
                pipe.zadd(chats_index_key(key.user), {str(key.chat_id): self._score()}, xx=True)
            replies = await pipe.execute()
        data, pttl = replies[0], replies[1]
        if data is None:
            return None
        return StoredValue(bytes(data), _ttl(int(pttl)))

    async def set(self, key: CacheKey, data: bytes) -> None:
        require_plain(key)
        ttl = _ms(self.policy.store_ttl(key.kind))
        if key.chat_id is None:
            await self.client.set(key.redis_key, data, px=ttl)
            return
        victims = await self._set_value(
            keys=[key.redis_key, chats_index_key(key.user)], args=[data, ttl, *self._index_args(key)]
        )
        await self._evict(key.user, victims)

    # --- message lists -----------------------------------------------------------------------------
    async def get_list(self, key: CacheKey, limit: int) -> StoredList | None:
        require_list(key)
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.zrange(key.redis_key, 0, 0)
            pipe.zrange(key.redis_key, -max(limit, 1), -1, withscores=True)
            pipe.pttl(key.redis_key)
            pipe.zadd(chats_index_key(key.user), {str(key.chat_id): self._score()}, xx=True)
            head, newest, pttl, _ = await pipe.execute()
        if not head:
            return None
        items = tuple((int(score), bytes(member)) for member, score in newest if score > 0) if limit > 0 else ()
        return StoredList(bytes(head[0]), items, _ttl(int(pttl)))

    async def set_list(self, key: CacheKey, head: bytes, items: Sequence[ListItem]) -> None:
        require_list(key)
        kept = self.policy.trim_messages(items, seq=lambda item: item[0])
        flat: list[bytes | int] = []
        for seq, blob in kept:
            if seq < 1:
                raise ValueError("list items need a seq of 1 or more")
            flat += [seq, blob]
        victims = await self._set_list(
            keys=[key.redis_key, chats_index_key(key.user)],
            args=[_ms(self.policy.store_ttl(KeyKind.MSGS)), *self._index_args(key), head, *flat],
        )
        await self._evict(key.user, victims)

    async def append_list(self, key: CacheKey, items: Sequence[ListItem]) -> AppendResult:
        require_list(key)
        flat: list[bytes | int] = []
        for seq, blob in sorted(items, key=lambda item: item[0]):
            if seq < 1:
                raise ValueError("list items need a seq of 1 or more")
            flat += [seq, blob]
        reply = await self._append_list(
            keys=[key.redis_key, chats_index_key(key.user)],
            args=[
                _ms(self.policy.store_ttl(KeyKind.MSGS)),
                *self._index_args(key),
                self.policy.max_messages_per_chat,
                *flat,
            ],
        )
        result = AppendResult(bytes(reply[0]).decode())
        await self._evict(key.user, reply[1:])
        return result

    # --- removal -----------------------------------------------------------------------------------
    async def delete(self, *keys: CacheKey) -> None:
        if keys:
            await self.client.unlink(*(key.redis_key for key in keys))

    async def delete_chat(self, user: UserId, chat_id: ChatId) -> None:
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.unlink(chat_key(user, chat_id).redis_key, msgs_key(user, chat_id).redis_key)
            pipe.zrem(chats_index_key(user), str(chat_id))
            await pipe.execute()

    async def purge_user(self, user: UserId) -> None:
        index = chats_index_key(user)
        async with self.client.pipeline(transaction=True) as pipe:
            for _ in range(_PURGE_ATTEMPTS):
                try:
                    # WATCH: a chat cached between reading the index and unlinking would be missed.
                    await pipe.watch(index)
                    chat_ids = [_chat_id(raw) for raw in await pipe.zrange(index, 0, -1)]
                    names = [recent_key(user).redis_key, index]
                    for chat_id in chat_ids:
                        names += [chat_key(user, chat_id).redis_key, msgs_key(user, chat_id).redis_key]
                    pipe.multi()  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
                    for start in range(0, len(names), _UNLINK_BATCH):
                        pipe.unlink(*names[start : start + _UNLINK_BATCH])
                    await pipe.execute()
                    return
                except WatchError:
                    continue
        raise WatchError("the chat index kept changing during the purge")

    async def wipe(self) -> None:
        batch: list[bytes] = []
        async for name in self.client.scan_iter(match=NAMESPACE_PATTERN, count=1000):
            raw = name if isinstance(name, bytes) else str(name).encode()
            if raw.startswith(_META_PREFIX):
                continue
            batch.append(raw)
            if len(batch) >= _UNLINK_BATCH:
                await self.client.unlink(*batch)
                batch = []
        if batch:
            await self.client.unlink(*batch)

    async def ensure_key_id(self, key_id: str) -> bool:
        # The marker has no TTL but allkeys-lru may still evict it; then the namespace is wiped once more,
        # which a disposable cache can afford.
        current = await self.client.get(META_KEY_ID)
        if current == key_id.encode():
            return False
        await self.wipe()
        await self.client.set(META_KEY_ID, key_id)
        return True

    # --- inspection --------------------------------------------------------------------------------
    async def ttl(self, key: CacheKey) -> float | None:
        return _ttl(int(await self.client.pttl(key.redis_key)))

    async def cached_chats(self, user: UserId) -> list[ChatId]:
        return [_chat_id(raw) for raw in await self.client.zrange(chats_index_key(user), 0, -1)]

    async def used_memory(self) -> int:
        info = await self.client.info("memory")
        return int(info["used_memory"])

    async def probe(self) -> None:
        await self.client.ping()
        # PING answers even when maxmemory is reached; a write tells whether the cache can work.
        await self.client.set(PROBE_KEY, b"1", px=10_000)

    async def close(self) -> None:
        await self.client.aclose()


def _chat_id(raw: object) -> ChatId:
    return ChatId(UUID(raw.decode() if isinstance(raw, bytes) else str(raw)))
