"""The reaction sender: toggles wait in the outbox, the last one wins and goes out once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from desktop_chat.errors import BackendUnavailable, Rejected
from desktop_chat.models import ChatId, MessageId, UserId, new_message_id
from desktop_chat.sync.outbox import Outbox
from desktop_chat.sync.reactions import (
    ReactionDelivered,
    ReactionEvent,
    ReactionQueued,
    ReactionRefused,
    ReactionSender,
)

SERVER = "http://127.0.0.1:54321"
ALICE = UserId(uuid.uuid4())
CHAT = ChatId(uuid.uuid4())


class Server:
    """Keeps reactions as the database does (a set of keys); ``down`` refuses to answer."""

    def __init__(self) -> None:
        self.reactions: set[tuple[MessageId, str]] = set()
        self.calls: list[tuple[str, MessageId, str]] = []
        self.down = False
        self.refuse: Exception | None = None
        self.called = asyncio.Event()

    async def _call(self, kind: str, message_id: MessageId, emoji: str) -> None:
        self.calls.append((kind, message_id, emoji))
        self.called.set()
        await asyncio.sleep(0)
        if self.refuse is not None:
            raise self.refuse
        if self.down:
            raise BackendUnavailable("down")

    async def add_reaction(self, chat_id: ChatId, message_id: MessageId, emoji: str) -> bool:
        await self._call("add", message_id, emoji)
        added = (message_id, emoji) not in self.reactions
        self.reactions.add((message_id, emoji))
        return added

    async def remove_reaction(self, chat_id: ChatId, message_id: MessageId, emoji: str) -> bool:
        await self._call("remove", message_id, emoji)
        removed = (message_id, emoji) in self.reactions
        self.reactions.discard((message_id, emoji))
        return removed

    async def refresh_session(self) -> object:
        return object()


class Harness:
    def __init__(self, outbox: Outbox, server: Server) -> None:
        self.outbox = outbox
        self.server = server
        self.events: list[ReactionEvent] = []
        self.changed = asyncio.Event()
        self.sender = self.make_sender()

    def make_sender(self) -> ReactionSender:
        sender = ReactionSender(self.outbox, self.server, SERVER, ALICE)
        sender.subscribe(self.on_event)
        return sender

    def on_event(self, event: ReactionEvent) -> None:
        self.events.append(event)
        self.changed.set()

    async def settled(self) -> None:
        async with asyncio.timeout(10):
            while self.sender.depth:
                self.changed.clear()
                await self.changed.wait()


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    outbox = await Outbox.open(tmp_path / "outbox.sqlite3")
    h = Harness(outbox, Server())
    try:
        yield h
    finally:
        await h.sender.close()
        await outbox.close()


async def test_toggles_made_offline_collapse_into_the_last_and_go_out_once(harness: Harness) -> None:
    message = new_message_id()
    harness.sender.pause()  # signed in offline: nothing may go yet
    for wanted in (True, False, True):
        await harness.sender.set(CHAT, message, "👍", wanted)
    await harness.sender.set(CHAT, message, "🎉", True)
    await harness.sender.set(CHAT, message, "🎉", False)
    assert harness.sender.pending(CHAT) == {message: {"👍": True, "🎉": False}}
    harness.sender.resume()
    await harness.settled()
    assert sorted(harness.server.calls) == [("add", message, "👍"), ("remove", message, "🎉")]
    assert harness.server.reactions == {(message, "👍")}
    assert await harness.outbox.reaction_ops(SERVER, ALICE) == []


async def test_a_restart_resumes_the_wishes_and_delivers_each_once(harness: Harness) -> None:
    message = new_message_id()
    harness.sender.pause()
    await harness.sender.set(CHAT, message, "❤️", True)
    await harness.sender.close()
    harness.sender = harness.make_sender()  # a new process, the same outbox
    resumed = await harness.sender.start()
    assert [(op.message_id, op.emoji, op.wanted) for op in resumed] == [(message, "❤️", True)]
    await harness.settled()
    assert harness.server.calls == [("add", message, "❤️")]


async def test_a_transient_failure_keeps_the_wish_and_retries_when_nudged(harness: Harness) -> None:
    message = new_message_id()
    harness.server.down = True
    await harness.sender.set(CHAT, message, "👍", True)
    async with asyncio.timeout(5):
        await harness.server.called.wait()
    [kept] = await harness.outbox.reaction_ops(SERVER, ALICE)  # the failure keeps the wish on disk
    assert (kept.message_id, kept.wanted) == (message, True)
    assert harness.server.reactions == set()
    harness.server.down = False
    harness.sender.nudge()
    await harness.settled()
    assert harness.server.reactions == {(message, "👍")}
    assert any(isinstance(event, ReactionDelivered) for event in harness.events)


async def test_a_refusal_drops_the_wish_and_says_why(harness: Harness) -> None:
    message = new_message_id()
    harness.server.refuse = Rejected("not a member", code="42501")
    await harness.sender.set(CHAT, message, "👍", True)
    await harness.settled()
    refused = [event for event in harness.events if isinstance(event, ReactionRefused)]
    assert len(refused) == 1 and refused[0].reason
    assert harness.server.calls == [("add", message, "👍")]
    assert await harness.outbox.reaction_ops(SERVER, ALICE) == []
    assert isinstance(harness.events[0], ReactionQueued)


async def test_a_toggle_while_the_first_is_on_the_wire_goes_out_after_it(harness: Harness) -> None:
    message = new_message_id()
    gate = asyncio.Event()
    original = harness.server._call

    async def slow(kind: str, message_id: MessageId, emoji: str) -> None:
        await original(kind, message_id, emoji)
        if len(harness.server.calls) == 1:
            await gate.wait()

    harness.server._call = slow  # type: ignore[method-assign]
    await harness.sender.set(CHAT, message, "👍", True)
    async with asyncio.timeout(5):
        await harness.server.called.wait()
    await harness.sender.set(CHAT, message, "👍", False)  # the user changed their mind meanwhile
    gate.set()
    await harness.settled()
    assert harness.server.calls == [("add", message, "👍"), ("remove", message, "👍")]
    assert harness.server.reactions == set()
    delivered = [event for event in harness.events if isinstance(event, ReactionDelivered)]
    assert [event.superseded for event in delivered] == [True, False]


async def test_something_that_is_not_an_emoji_is_refused_before_the_outbox(harness: Harness) -> None:
    from desktop_chat.errors import InvalidInput

    with pytest.raises(InvalidInput):
        await harness.sender.set(CHAT, new_message_id(), "ok", True)
    assert await harness.outbox.reaction_ops(SERVER, ALICE) == []
