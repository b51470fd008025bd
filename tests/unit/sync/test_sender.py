"""The sender's state machine over a scripted backend (the real one is exercised in integration tests)."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from desktop_chat.errors import BackendUnavailable, Rejected, Unauthorized
from desktop_chat.models import ChatId, DeliveryState, Message, MessageId, UserId
from desktop_chat.sync.lifecycle import Confirmed, Discarded, PendingEvent, Sending, Sent, Submitted, follows
from desktop_chat.sync.outbox import Outbox
from desktop_chat.sync.sender import Sender

SERVER = "http://127.0.0.1:54321"
ALICE = UserId(uuid.uuid4())
CHAT_A = ChatId(uuid.uuid4())
CHAT_B = ChatId(uuid.uuid4())


class ScriptedBackend:
    """Stores messages like the server would; ``failures`` scripts errors for the next attempts."""

    def __init__(self) -> None:
        self.stored: dict[MessageId, Message] = {}
        self.order: list[MessageId] = []
        self.failures: list[BaseException] = []
        self.lose_answer = False
        self.attempts: list[MessageId] = []
        self.refreshes = 0
        self.in_flight: dict[ChatId, int] = defaultdict(int)
        self.max_in_flight: dict[ChatId, int] = defaultdict(int)
        self.gate: asyncio.Event | None = None
        self.answered = asyncio.Event()
        self._seq: dict[ChatId, int] = defaultdict(int)

    async def insert_message(
        self, message_id: MessageId, chat_id: ChatId, content: str, *, reply_to: MessageId | None = None
    ) -> Message | None:
        self.attempts.append(message_id)
        self.in_flight[chat_id] += 1
        self.max_in_flight[chat_id] = max(self.max_in_flight[chat_id], self.in_flight[chat_id])
        try:
            await asyncio.sleep(0)
            if self.gate is not None:
                await self.gate.wait()
            if self.failures:
                raise self.failures.pop(0)
            if message_id in self.stored:
                return None
            self._seq[chat_id] += 1
            seq = self._seq[chat_id]
            message = Message(
                id=message_id,
                chat_id=chat_id,
                sender_id=ALICE,
                content=content,
                created_at=datetime.now(UTC),
                seq=seq,
                rev=seq,
                reply_to=reply_to,
            )
            self.stored[message_id] = message
            self.order.append(message_id)
            if self.lose_answer:
                self.lose_answer = False
                raise BackendUnavailable("connection dropped before the answer")
            return message
        finally:
            self.in_flight[chat_id] -= 1
            self.answered.set()

    async def fetch_message(self, message_id: MessageId, chat_id: ChatId) -> Message | None:
        message = self.stored.get(message_id)
        return message if message is not None and message.chat_id == chat_id else None

    async def refresh_session(self) -> object:
        self.refreshes += 1
        return object()

    async def wait_attempts(self, count: int) -> None:
        """Wait until ``count`` attempts were made and none is still waiting for its answer."""
        async with asyncio.timeout(5):
            while len(self.attempts) < count or any(self.in_flight.values()):
                self.answered.clear()
                await self.answered.wait()


class Harness:
    def __init__(self, outbox: Outbox, backend: ScriptedBackend) -> None:
        self.outbox = outbox
        self.backend = backend
        self.rows: dict[MessageId, Message] = {}
        self.history: list[tuple[MessageId, DeliveryState]] = []
        self.events: dict[MessageId, list[PendingEvent]] = defaultdict(list)
        self.depth = -1
        self.changed = asyncio.Event()
        self.sender = self.make_sender()

    def make_sender(self) -> Sender:
        sender = Sender(self.outbox, self.backend, SERVER, ALICE)
        sender.subscribe(self.on_event)
        return sender

    def on_event(self, event: PendingEvent) -> None:
        message = event.message
        self.events[message.id].append(event)
        self.rows[message.id] = message
        self.history.append((message.id, message.delivery))
        self.depth = self.sender.depth
        self.changed.set()

    def assert_lifecycles(self) -> None:
        """Every message went through the lifecycle in an allowed order."""
        for events in self.events.values():
            previous: PendingEvent | None = None
            for event in events:
                assert follows(previous, event), (type(previous).__name__, type(event).__name__)
                previous = event

    async def send(self, chat: ChatId, text: str) -> MessageId:
        return await self.sender.send(chat, text)

    async def wait_for(self, message_id: MessageId, state: DeliveryState) -> Message:
        async with asyncio.timeout(10):
            while (row := self.rows.get(message_id)) is None or row.delivery is not state:
                self.changed.clear()
                await self.changed.wait()
        return row


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    outbox = await Outbox.open(tmp_path / "outbox.sqlite3")
    h = Harness(outbox, ScriptedBackend())
    try:
        yield h
        h.assert_lifecycles()
    finally:
        await h.sender.close()
        await outbox.close()


async def test_messages_of_a_chat_go_one_at_a_time_in_order(harness: Harness) -> None:
    ids_a = [await harness.send(CHAT_A, f"a{n}") for n in range(5)]
    ids_b = [await harness.send(CHAT_B, f"b{n}") for n in range(3)]
    for message_id in ids_a + ids_b:
        await harness.wait_for(message_id, DeliveryState.SENT)
    assert [m for m in harness.backend.order if m in ids_a] == ids_a
    assert [m for m in harness.backend.order if m in ids_b] == ids_b
    assert harness.backend.max_in_flight[CHAT_A] == 1
    assert [harness.rows[m].seq for m in ids_a] == [1, 2, 3, 4, 5]
    assert await harness.outbox.depth(SERVER, ALICE) == 0
    assert harness.depth == 0


async def test_transient_failures_keep_the_message_pending_and_retry_with_the_same_id(harness: Harness) -> None:
    harness.backend.failures = [BackendUnavailable("down"), BackendUnavailable("still down")]
    message_id = await harness.send(CHAT_A, "hello")
    for attempt in (1, 2):
        await harness.backend.wait_attempts(attempt)
        stored = await harness.outbox.get(message_id)
        assert stored is not None
        harness.sender.nudge()  # connectivity is back: no need to sit out the backoff
    sent = await harness.wait_for(message_id, DeliveryState.SENT)
    assert set(harness.backend.attempts) == {message_id}
    assert len(harness.backend.attempts) == 3
    assert sent.seq == 1
    assert len(harness.backend.stored) == 1
    assert await harness.outbox.get(message_id) is None


async def test_a_lost_answer_does_not_duplicate_the_message(harness: Harness) -> None:
    harness.backend.lose_answer = True
    message_id = await harness.send(CHAT_A, "only once")
    await harness.backend.wait_attempts(1)
    harness.sender.nudge()
    sent = await harness.wait_for(message_id, DeliveryState.SENT)
    assert len(harness.backend.stored) == 1
    assert sent.seq == 1


async def test_a_refusal_fails_with_a_reason_and_later_messages_still_go(harness: Harness) -> None:
    harness.backend.failures = [Rejected("denied", code="42501")]
    first = await harness.send(CHAT_A, "refused")
    second = await harness.send(CHAT_A, "fine")
    failed = await harness.wait_for(first, DeliveryState.FAILED)
    assert failed.error == "You can no longer post in this chat."
    await harness.wait_for(second, DeliveryState.SENT)
    assert harness.depth == 1  # the failed one waits for the user

    retried = await harness.sender.retry(first)
    assert retried is not None and retried.delivery is DeliveryState.PENDING
    sent = await harness.wait_for(first, DeliveryState.SENT)
    assert sent.id == first
    assert harness.depth == 0


async def test_an_expired_session_is_refreshed_and_the_send_retried(harness: Harness) -> None:
    harness.backend.failures = [Unauthorized("expired", code="PGRST303")]
    message_id = await harness.send(CHAT_A, "after refresh")
    await harness.wait_for(message_id, DeliveryState.SENT)
    assert harness.backend.refreshes == 1


async def test_a_restart_resumes_the_outbox(harness: Harness) -> None:
    harness.backend.gate = asyncio.Event()  # the server hangs: nothing gets through
    ids = [await harness.send(CHAT_A, f"m{n}") for n in range(3)]
    await harness.sender.close()
    # A new process: the same outbox, a new sender.
    harness.backend.gate = None
    harness.sender = harness.make_sender()
    resumed = await harness.sender.start()
    assert [entry.id for entry in resumed] == ids
    for message_id in ids:
        await harness.wait_for(message_id, DeliveryState.SENT)
    assert list(harness.backend.order) == ids


async def test_discard_drops_a_waiting_message(harness: Harness) -> None:
    harness.backend.failures = [BackendUnavailable("down")]
    first = await harness.send(CHAT_A, "will be discarded")
    await harness.backend.wait_attempts(1)
    assert await harness.sender.discard(first)
    second = await harness.send(CHAT_A, "goes")
    await harness.wait_for(second, DeliveryState.SENT)
    assert first not in harness.backend.stored
    assert await harness.outbox.depth(SERVER, ALICE) == 0


async def test_new_sends_during_an_outage_do_not_cut_the_backoff_short(harness: Harness) -> None:
    harness.backend.failures = [BackendUnavailable("down")] * 50
    first = await harness.send(CHAT_A, "first")
    await harness.backend.wait_attempts(1)
    for n in range(10):
        await harness.send(CHAT_A, f"typed during the outage {n}")
    await asyncio.sleep(0.1)  # well inside the first backoff (0.25 s or more)
    assert len(harness.backend.attempts) == 1
    harness.backend.failures = []
    harness.sender.nudge()  # the server is back
    await harness.wait_for(first, DeliveryState.SENT)


def kinds(events: list[PendingEvent]) -> list[type]:
    return [type(event) for event in events]


async def test_a_message_goes_submitted_sending_sent_and_the_echo_confirms_it(harness: Harness) -> None:
    message_id = await harness.send(CHAT_A, "hello")
    sent = await harness.wait_for(message_id, DeliveryState.SENT)
    assert kinds(harness.events[message_id]) == [Submitted, Sending, Sent]
    assert harness.sender.get(message_id) == sent  # kept until the change stream brings it back
    harness.sender.confirm([sent])
    assert kinds(harness.events[message_id]) == [Submitted, Sending, Sent, Confirmed]
    assert harness.sender.get(message_id) is None
    assert harness.sender.depth == await harness.outbox.depth(SERVER, ALICE) == 0


async def test_an_echo_that_overtakes_the_answer_confirms_right_after_it(harness: Harness) -> None:
    harness.backend.gate = asyncio.Event()
    message_id = await harness.send(CHAT_A, "fast echo")
    async with asyncio.timeout(5):
        while Sending not in kinds(harness.events[message_id]):  # the attempt is on its way
            harness.changed.clear()
            await harness.changed.wait()
    echo = harness.rows[message_id].model_copy(update={"seq": 1, "rev": 1, "delivery": DeliveryState.SENT})
    harness.sender.confirm([echo])
    assert harness.sender.unsent(CHAT_A) == []  # the echo is shown: no pending row for a reopened view
    assert harness.sender.depth == 1  # still in the outbox until the answer
    harness.backend.gate.set()
    await harness.wait_for(message_id, DeliveryState.SENT)
    assert kinds(harness.events[message_id]) == [Submitted, Sending, Sent, Confirmed]
    assert harness.sender.get(message_id) is None and harness.sender.depth == 0


async def test_unsent_rows_and_depth_follow_the_outbox(harness: Harness) -> None:
    harness.backend.failures = [Rejected("denied", code="42501"), BackendUnavailable("down")]
    failed = await harness.send(CHAT_A, "refused")
    await harness.wait_for(failed, DeliveryState.FAILED)
    waiting = await harness.send(CHAT_A, "waits")
    await harness.backend.wait_attempts(2)
    assert [row.id for row in harness.sender.unsent(CHAT_A)] == [failed, waiting]
    assert harness.sender.depth == await harness.outbox.depth(SERVER, ALICE) == 2
    assert await harness.sender.discard(failed)
    assert kinds(harness.events[failed])[-1] is Discarded
    assert [row.id for row in harness.sender.unsent(CHAT_A)] == [waiting]
    assert harness.sender.depth == await harness.outbox.depth(SERVER, ALICE) == 1
    harness.sender.nudge()
    await harness.wait_for(waiting, DeliveryState.SENT)
    assert harness.sender.unsent(CHAT_A) == [] and harness.sender.depth == 0


async def test_a_reply_keeps_its_original_through_the_outbox_and_a_restart(harness: Harness) -> None:
    original = await harness.send(CHAT_A, "the question")
    await harness.wait_for(original, DeliveryState.SENT)
    harness.backend.gate = asyncio.Event()  # offline: the reply waits in the outbox
    reply = await harness.sender.send(CHAT_A, "the answer", reply_to=original)
    assert harness.rows[reply].reply_to == original  # the pending row already quotes it
    await harness.sender.close()
    harness.backend.gate = None
    harness.sender = harness.make_sender()
    resumed = await harness.sender.start()
    assert [(row.id, row.reply_to) for row in resumed] == [(reply, original)]
    sent = await harness.wait_for(reply, DeliveryState.SENT)
    assert sent.reply_to == original
    assert harness.backend.stored[reply].reply_to == original
    assert harness.backend.order.count(reply) == 1
