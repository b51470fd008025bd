"""Jumping to any message over the real stack: a window 50,000 messages back in a chat of 100,000.

The window is read from Supabase and is never the newest: the cache keeps the newest window, the rev
cursor stays at the chat's newest change, live messages go to the cache and the chat list (not into the
window, which would get a hole) and the window joins the live end by paging down or by Ctrl+End
(``open_chat``), with every message exactly once.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

import pytest

from desktop_chat.dal.factory import DataLayer
from desktop_chat.models import ChatId, Message, UserId
from tests.conftest import StackHandle
from tests.history import write_history
from tests.integration.dal.conftest import PASSWORD, LayerFactory, eventually

pytestmark = pytest.mark.integration

HISTORY = 100_000
TARGET = 50_000
SHORT = 1_000  # enough for a window older than the cached newest 200
CONTEXT = 25  # LiveSync.JUMP_CONTEXT


def seqs(rows: Sequence[Message]) -> list[int]:
    return [m.seq for m in rows if m.seq is not None]


async def cached_tail(layer: DataLayer, me: UserId, chat: ChatId, count: int) -> list[int]:
    """The last ``count`` seqs of the cached window once its newest is the cursor's message: the cursor
    moves as a batch is reduced, and the cache is written just after."""
    async with asyncio.timeout(10):
        while True:
            cached = await layer.cache.get_messages(me, chat)
            tail = seqs(cached.value)[-count:] if cached is not None else []
            if tail and tail[-1] == layer.store.signed_in.live.cursor_of(chat):
                return tail
            await asyncio.sleep(0.02)


async def _people(
    make_layer: LayerFactory, stack: StackHandle, history: int = HISTORY
) -> tuple[DataLayer, DataLayer, ChatId]:
    """Two new people and their chat of ``HISTORY`` messages; the reader's app is opened only after the
    history is written (realtime would push all of it otherwise), the speaker's has no realtime link."""
    tag = uuid.uuid4().hex[:8]
    speaker = await make_layer("speaker", realtime=False)
    await speaker.store.sign_up(f"speaker-{tag}@example.com", PASSWORD, "Speaker")
    setup = await make_layer("setup", realtime=False)
    reader_profile = await setup.store.sign_up(f"reader-{tag}@example.com", PASSWORD, "Reader")
    await setup.store.sign_out()
    assert speaker.store.current_user is not None
    chat = await speaker.store.create_chat("a long history", [f"reader-{tag}@example.com"])
    await write_history(stack.db_url, chat, [speaker.store.current_user.id, reader_profile.id], history)
    reader = await make_layer("reader")
    await reader.store.sign_in(f"reader-{tag}@example.com", PASSWORD)
    await reader.store.refresh_chats()
    return reader, speaker, chat


async def test_a_message_50000_back_in_a_chat_of_100000(make_layer: LayerFactory, stack: StackHandle) -> None:
    reader, speaker, chat = await _people(make_layer, stack)
    store, live = reader.store, reader.store.signed_in.live
    me = UserId(store.current_user.id) if store.current_user else None
    assert me is not None

    timeline = await store.open_at(chat, TARGET)

    # The window: the message and its neighbours, contiguous, detached from the live end.
    assert seqs(timeline.rows) == list(range(TARGET - CONTEXT, TARGET + CONTEXT + 1))
    assert store.has_newer(chat) and store.has_older(chat)
    # The newest window is what the cache holds and where the cursor starts; the jump's window is neither.
    cached = await reader.cache.get_messages(me, chat)
    assert cached is not None
    assert seqs(cached.value) == list(range(HISTORY - 199, HISTORY + 1))
    assert live.cursor_of(chat) == HISTORY

    # Live messages while the window is shown: not lost (cache, chat list, cursor), not in the window.
    for n in range(3):
        await speaker.store.send(chat, f"live {n}")
    await eventually(lambda: live.cursor_of(chat) == HISTORY + 3, what="the live messages reached the reader")
    assert await cached_tail(reader, me, chat, 3) == [HISTORY + 1, HISTORY + 2, HISTORY + 3]
    row = store.chat_list().get(chat)
    assert row is not None and row.last_message is not None and row.last_message.content == "live 2"
    assert max(seqs(timeline.rows)) == TARGET + CONTEXT

    # Older and newer pages around it.
    assert await store.load_older(chat) == 50
    assert await store.load_newer(chat) == 50
    assert seqs(timeline.rows) == list(range(TARGET - CONTEXT - 50, TARGET + CONTEXT + 51))
    assert store.has_newer(chat)

    # Ctrl+End: the newest page, live messages included, each once; live again.
    await store.open_chat(chat)
    assert not store.has_newer(chat)
    assert seqs(timeline.rows) == list(range(HISTORY + 3 - 49, HISTORY + 4))
    await speaker.store.send(chat, "after the join")
    await eventually(lambda: timeline.rows[-1].content == "after the join", what="live into the joined window")
    assert seqs(timeline.rows)[-1] == HISTORY + 4
    assert live.cursor_of(chat) == HISTORY + 4


async def test_a_window_joins_the_live_end_by_paging_down(make_layer: LayerFactory, stack: StackHandle) -> None:
    reader, speaker, chat = await _people(make_layer, stack, SHORT)
    store, live = reader.store, reader.store.signed_in.live
    target = SHORT - 300  # older than the cached newest 200: a detached window

    timeline = await store.open_at(chat, target)
    assert store.has_newer(chat)
    await speaker.store.send(chat, "while detached")
    await eventually(lambda: live.cursor_of(chat) == SHORT + 1, what="the live message reached the reader")
    assert all(m.content != "while detached" for m in timeline.rows)

    pages = 0
    while store.has_newer(chat):
        pages += 1
        await store.load_newer(chat)
        assert pages < 10
    # Contiguous from the window's first message to the newest, the live one included, each once.
    assert seqs(timeline.rows) == list(range(target - CONTEXT, SHORT + 2))
    assert timeline.rows[-1].content == "while detached"
    await speaker.store.send(chat, "after the join")
    await eventually(lambda: timeline.rows[-1].content == "after the join", what="live into the joined window")
    assert seqs(timeline.rows)[-1] == SHORT + 2


async def test_a_jump_near_the_newest_message_is_the_live_end(make_layer: LayerFactory, stack: StackHandle) -> None:
    reader, speaker, chat = await _people(make_layer, stack, SHORT)
    store = reader.store
    timeline = await store.open_at(chat, SHORT - 100)  # inside the cached newest window
    assert not store.has_newer(chat)
    assert seqs(timeline.rows) == list(range(SHORT - 100 - CONTEXT, SHORT + 1))
    await speaker.store.send(chat, "live")
    await eventually(lambda: timeline.rows[-1].content == "live", what="live into the window")
