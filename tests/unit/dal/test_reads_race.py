"""A push that lands while a chat's window loads must not leave the chat out of the cache.

The push finds no cached window (nothing is written) but changes the key, so the load's write is refused
(it may predate the push). Found as the offline search missing a chat that had just been opened.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, cast

from desktop_chat.cache.codec import Codec
from desktop_chat.cache.memory import MemoryCacheStore
from desktop_chat.cache.policy import CachePolicy
from desktop_chat.cache.secret import CacheSecret
from desktop_chat.cache.store import AppendResult
from desktop_chat.cache.tiered import TieredCache
from desktop_chat.config import Settings
from desktop_chat.dal.calls import BackendCalls
from desktop_chat.dal.reads import Reads
from desktop_chat.dal.status import StatusBoard
from desktop_chat.dal.tasks import TaskGroup
from desktop_chat.models import ChatId, Message, MessagePage, UserId
from desktop_chat.telemetry.metrics import MetricsRegistry
from tests.builders import messages, new_chat_id

POLICY = CachePolicy(ttl_recent=100, ttl_chat=100, ttl_messages=100, stale_grace=5, max_messages_per_chat=50)


class Server:
    """The chat's messages as the server has them; a fetch answers what it holds when its answer leaves.

    ``answer`` runs between the query and its answer (the window of the race), once per fetch.
    """

    def __init__(self, rows: list[Message]) -> None:
        self.rows = rows
        self.fetches = 0
        self.answer: list[Callable[[], Awaitable[None]]] = []

    def release_client(self) -> None:
        """A miss lets a held server client go (``Reads._read_through``); nothing is held here."""

    async def fetch_messages(self, chat_id: ChatId, before_seq: int | None = None, limit: int = 50) -> MessagePage:
        self.fetches += 1
        page = MessagePage(chat_id=chat_id, messages=tuple(self.rows[-limit:]), has_more=len(self.rows) > limit)
        if self.answer:
            await self.answer.pop(0)()
        return page


def _reads(tmp_path: Path, server: Server) -> tuple[Reads, TieredCache, UserId]:
    me = UserId(uuid.uuid4())
    metrics = MetricsRegistry()
    cache = TieredCache(
        codec=Codec(CacheSecret.generate()), policy=POLICY, metrics=metrics, memory=MemoryCacheStore(POLICY)
    )
    calls = BackendCalls(metrics, StatusBoard(cache, metrics))
    settings = Settings(config_dir=tmp_path, cache_max_messages_per_chat=50)
    return Reads(me, settings, cast(Any, server), cache, calls, TaskGroup()), cache, me


async def test_a_push_during_the_window_load_still_leaves_the_window_cached(tmp_path: Path) -> None:
    chat = new_chat_id()
    rows = messages(chat, 1, 5)
    server = Server(rows[:4])
    reads, cache, me = _reads(tmp_path, server)

    async def push_arrives() -> None:
        # Message 5 is posted after the query read the table, and its push is applied before the answer.
        server.rows = rows
        assert await cache.append_messages(me, chat, [rows[4]]) is AppendResult.NOT_CACHED

    server.answer.append(push_arrives)
    await reads.message_window(chat)
    cached = await cache.get_messages(me, chat)
    assert cached is not None, "the chat's window was left out of the cache"
    # Never a window without the pushed message: it was loaded again, after the push.
    assert [m.seq for m in cached.value] == [1, 2, 3, 4, 5]
    await cache.close()


async def test_a_chat_that_keeps_changing_is_loaded_a_bounded_number_of_times(tmp_path: Path) -> None:
    chat = new_chat_id()
    rows = messages(chat, 1, 20)
    server = Server(rows[:1])

    def push(seq: int) -> Callable[[], Awaitable[None]]:
        async def arrives() -> None:
            server.rows = rows[:seq]
            await cache.append_messages(me, chat, [rows[seq - 1]])

        return arrives

    reads, cache, me = _reads(tmp_path, server)
    server.answer.extend(push(seq) for seq in range(2, 21))
    window = await reads.message_window(chat)
    assert window  # the caller still gets what was loaded
    assert server.fetches <= 3
    await asyncio.sleep(0)
    await cache.close()
