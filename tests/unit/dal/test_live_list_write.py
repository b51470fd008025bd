"""LiveSync writes the chat list through to the cache only once it has been loaded in this session: a
change that arrives first (a push, a back-fill, a send's answer) must not replace the saved list with the
few rows it brought, or the next start, offline, would find the saved list gone."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Iterable, Sequence
from typing import Any, cast

from desktop_chat.cache.codec import Codec
from desktop_chat.cache.memory import MemoryCacheStore
from desktop_chat.cache.policy import CachePolicy
from desktop_chat.cache.secret import CacheSecret
from desktop_chat.cache.tiered import TieredCache
from desktop_chat.dal.live import LiveSync
from desktop_chat.models import ChatId, ChatSummary, Message, MessageUpserted, UserId
from desktop_chat.telemetry.metrics import MetricsRegistry
from tests.builders import chat_summary, message, new_chat_id


class Spawner:
    def __init__(self) -> None:
        self.tasks: list[asyncio.Task[Any]] = []

    def spawn(self, coroutine: Awaitable[Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coroutine)
        self.tasks.append(task)
        return task

    async def settle(self) -> None:
        while pending := [task for task in self.tasks if not task.done()]:
            await asyncio.gather(*pending)


class CachedReads:
    """The one read the list needs: the chat list, as the cache holds it."""

    def __init__(self, cache: TieredCache, me: UserId) -> None:
        self._cache, self._me = cache, me

    async def recent_chats(self) -> list[ChatSummary]:
        cached = await self._cache.get_recent(self._me)
        assert cached is not None
        return list(cached.value)


class NothingPending:
    def unsent(self, chat_id: ChatId) -> Sequence[Message]:
        return ()

    def confirm(self, messages: Iterable[Message]) -> None:
        pass


async def test_a_change_before_the_list_is_loaded_leaves_the_saved_list_whole() -> None:
    me = UserId(uuid.uuid4())
    policy = CachePolicy(ttl_recent=100, ttl_chat=100, ttl_messages=100, stale_grace=5, max_messages_per_chat=6)
    cache = TieredCache(
        codec=Codec(CacheSecret.generate()), policy=policy, metrics=MetricsRegistry(), memory=MemoryCacheStore(policy)
    )
    saved = [chat_summary(new_chat_id(), title=f"chat {n}", last_seq=10 - n) for n in range(3)]
    await cache.set_recent(me, saved)
    tasks = Spawner()
    live = LiveSync(
        me,
        cache=cache,
        reads=cast(Any, CachedReads(cache, me)),
        tasks=tasks,
        pending=NothingPending(),
        on_incoming=lambda _message: None,
    )
    # A message pushed into the newest chat arrives before anything read the list (the start is under way).
    chat = saved[0].chat.id
    await live.apply_now([MessageUpserted(message=message(chat, 11))])
    await tasks.settle()
    await live.refresh_chats()
    assert [row.chat.id for row in live.chat_list.rows] == [row.chat.id for row in saved]
    await tasks.settle()
    # Written once the list was loaded: the whole list.
    cached = await cache.get_recent(me)
    assert cached is not None and [row.chat.id for row in cached.value] == [row.chat.id for row in saved]
    await live.stop()
    await cache.close()
