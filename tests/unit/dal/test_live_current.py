"""When LiveSync knows a chat complete (no back-fill on open), and which chats a probe round back-fills."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, cast

from desktop_chat.dal.live import LiveSync
from desktop_chat.models import Chat, ChatChanges, ChatId, ChatSummary, MemberRole, Message, MessageId, UserId

ME = UserId(uuid.uuid4())
THEM = UserId(uuid.uuid4())
T0 = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def chat_id() -> ChatId:
    return ChatId(uuid.uuid4())


def message(chat: ChatId, rev: int) -> Message:
    return Message(
        id=MessageId(uuid.uuid4()), chat_id=chat, sender_id=THEM, content=f"m{rev}", created_at=T0, seq=rev, rev=rev
    )


def row(chat: ChatId, last_rev: int) -> ChatSummary:
    session = Chat(
        id=chat, title="t", created_at=T0, updated_at=T0, last_message_at=T0, last_seq=last_rev, last_rev=last_rev
    )
    return ChatSummary(chat=session, role=MemberRole.MEMBER, last_read_seq=last_rev)


class Reads:
    """The server, as far as these tests ask it: windows, the chat list's first page, back-fills."""

    def __init__(self) -> None:
        self.windows: dict[ChatId, tuple[Message, ...]] = {}
        self.page: list[ChatSummary] = []
        self.back_fills: list[dict[ChatId, int]] = []

    async def message_window(self, chat: ChatId, newest: int | None = None) -> tuple[Message, ...]:
        return self.windows.get(chat, ())

    async def load_chat_list(self, limit: int = 100, after: object = None) -> list[ChatSummary]:
        return self.page[:limit]

    async def changes_since_many(self, cursors: Mapping[ChatId, int], limit: int) -> list[ChatChanges]:
        self.back_fills.append(dict(cursors))
        return []


class Cache:
    """Where the chat list is written through (nothing here reads it back)."""

    async def set_recent(self, user: UserId, rows: Sequence[ChatSummary]) -> None:
        return None


class Pending:
    def unsent(self, chat: ChatId) -> Sequence[Message]:
        return ()

    def confirm(self, messages: Iterable[Message]) -> None:
        return None


class Spawner:
    def __init__(self) -> None:
        self.tasks: list[asyncio.Task[Any]] = []

    def spawn(self, coroutine: Awaitable[Any], name: str) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.ensure_future(coroutine)
        self.tasks.append(task)
        return task

    async def settle(self) -> None:
        while pending := [task for task in self.tasks if not task.done()]:
            await asyncio.gather(*pending)


def live_sync(held: set[ChatId], *, chat_page: int = 100) -> tuple[LiveSync, Reads, Spawner]:
    reads, tasks = Reads(), Spawner()
    live = LiveSync(
        ME,
        cache=cast(Any, Cache()),
        reads=cast(Any, reads),
        tasks=tasks,
        pending=Pending(),
        on_incoming=lambda _message: None,
        holds_chat=lambda chat: chat in held,
        chat_page=chat_page,
    )
    return live, reads, tasks


async def opened(live: LiveSync, reads: Reads, tasks: Spawner, chat: ChatId) -> int:
    """Open and close the chat; how many back-fill calls the open made."""
    before = len(reads.back_fills)
    await live.open_timeline(chat)
    await tasks.settle()
    live.close_timeline(chat)
    return len(reads.back_fills) - before


async def test_a_chat_back_filled_on_the_live_link_with_its_topic_held_opens_without_a_back_fill() -> None:
    chat = chat_id()
    live, reads, tasks = live_sync({chat})
    reads.windows[chat] = (message(chat, 3),)
    live.chat_list.upsert(row(chat, 3))
    assert await opened(live, reads, tasks, chat) == 1  # not live yet: the page may be old
    live.link_changed(True)
    assert not live.is_current(chat)  # that back-fill ran before this link was up
    await live.backfill_chats([chat])
    assert live.is_current(chat)
    assert await opened(live, reads, tasks, chat) == 0


async def test_what_voids_a_chat_being_known_complete() -> None:
    chat = chat_id()
    held = {chat}
    live, reads, tasks = live_sync(held)
    reads.windows[chat] = (message(chat, 3),)
    live.chat_list.upsert(row(chat, 3))
    live.link_changed(True)
    await opened(live, reads, tasks, chat)
    assert live.is_current(chat)

    live.chat_list.upsert(row(chat, 4))  # a notice: a message the chat's topic did not bring
    assert not live.is_current(chat)
    assert await opened(live, reads, tasks, chat) == 1
    live.chat_list.upsert(row(chat, 3))

    held.clear()  # the chat's topic is not held: its changes are not pushed
    assert not live.is_current(chat)
    held.add(chat)
    assert live.is_current(chat)

    live.link_changed(False)  # the link went down, and came back: nothing is known complete
    live.link_changed(True)
    assert not live.is_current(chat)
    assert await opened(live, reads, tasks, chat) == 1
    assert live.is_current(chat)


async def test_a_probe_round_back_fills_the_chats_behind_and_those_off_the_first_page_in_one_call() -> None:
    current, behind, off_page = chat_id(), chat_id(), chat_id()
    live, reads, tasks = live_sync(set(), chat_page=2)
    for chat in (current, behind, off_page):
        reads.windows[chat] = (message(chat, 5),)
        live.chat_list.upsert(row(chat, 5))
        await opened(live, reads, tasks, chat)
    reads.back_fills.clear()

    reads.page = [row(current, 5), row(behind, 6)]  # a full page: the list may go on below it
    await live.check_consistency()
    assert reads.back_fills == [{behind: 5, off_page: 5}]

    reads.page = [row(current, 5)]  # the whole list: the others are gone, nothing is behind
    live.chat_list.remove(behind)
    live.chat_list.remove(off_page)
    reads.back_fills.clear()
    await live.check_consistency()
    assert reads.back_fills == []
