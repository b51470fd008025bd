"""The one owner of this user's pending messages: the outbox, the delivery queues and their lifecycle.

``send`` writes the message to the durable outbox and queues it; every change of a pending message is
announced as one typed event (``desktop_chat.sync.lifecycle``), so the views and the status only listen.

Each chat has a worker that sends its oldest unsent messages, waits for the answer and only then sends
the next, so one client's messages reach the server in the order they were typed. A backlog goes out in
batches: one insert of up to ``BATCH`` rows of the chat, in send order (the server numbers them in the
order of the body). Every row carries the message's own id with ``on conflict (id, session_id) do
nothing``: a retry after a lost answer cannot make a second row, and the rows a retry skipped are read
back. Transient failures keep the messages pending and back off (with jitter; a ``nudge`` — the link came
back, or any request was answered after the server had been away — cuts the wait short); a refusal of a
batch splits it in halves until the refused message is alone, so only it is marked failed (with a reason)
and later messages of that chat go on without it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from desktop_chat.errors import DesktopChatError, EnvironmentFailure
from desktop_chat.models import ChatId, DeliveryState, Message, MessageId, UserId, new_message_id, validate_message_text
from desktop_chat.sync.delivery import GiveUp, RefreshAndRetry, RetryLater, backoff, decide
from desktop_chat.sync.lifecycle import (
    Confirmed,
    Discarded,
    Failed,
    PendingEvent,
    PendingListener,
    Retried,
    Sending,
    Sent,
    Submitted,
)
from desktop_chat.sync.outbox import Outbox, OutboxEntry

log = logging.getLogger(__name__)


# Messages of one chat per insert: a backlog after an outage goes out in a few requests, and one request
# stays small (50 rows of at most a few KiB each) for the gateway's 1 MiB body limit and its timeout.
BATCH = 50


class SendingBackend(Protocol):
    """What the sender needs from the backend (``SupabaseBackend`` provides it)."""

    async def insert_messages(
        self, chat_id: ChatId, messages: Sequence[tuple[MessageId, str, MessageId | None]]
    ) -> list[Message]:
        """Insert ``(id, content, reply_to)`` rows in order, skipping ids already stored; the rows it stored."""
        ...

    async def fetch_messages_by_id(self, chat_id: ChatId, message_ids: Sequence[MessageId]) -> list[Message]:
        """The stored messages of those ids in that chat (ids are unique per chat)."""
        ...

    async def refresh_session(self) -> object: ...


_REFRESHED = "The session expired; it was renewed."


@dataclass
class _ChatQueue:
    entries: deque[OutboxEntry] = field(default_factory=deque)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    worker: asyncio.Task[None] | None = None


class Sender:
    """Owns one user's pending messages, from ``send`` until the server's row comes back.

    Args:
        outbox: The durable queue.
        backend: Does the actual insert (through the data layer's timed calls).
        server, user_id: Whose messages this sender owns.
        clock: Epoch seconds, for backoff deadlines.
        batch: Messages of one chat per insert.
    """

    def __init__(
        self,
        outbox: Outbox,
        backend: SendingBackend,
        server: str,
        user_id: UserId,
        clock: Callable[[], float] = time.time,
        batch: int = BATCH,
    ) -> None:
        self._outbox = outbox
        self._backend = backend
        self._server = server
        self._user_id = user_id
        self._clock = clock
        self._queues: dict[ChatId, _ChatQueue] = {}
        # The row of every message not yet confirmed: pending and failed ones (the outbox's), and sent ones
        # whose echo has not come back yet.
        self._rows: dict[MessageId, Message] = {}
        self._unsent = 0  # rows of ``_rows`` not SENT, kept as they change: ``depth`` is read on every event
        self._batch = max(1, batch)
        self._server_away = False  # an attempt found the server unreachable; the next answer nudges all
        self._echoed: set[MessageId] = set()  # confirmed by the change stream before the server's answer came
        self._listeners: list[PendingListener] = []
        self._closed = False
        self._online = asyncio.Event()
        self._online.set()

    # --- lifecycle ---------------------------------------------------------------------------------
    async def start(self) -> list[Message]:
        """Resume what a previous run left unsent. Returns their rows (pending and failed)."""
        entries = await self._outbox.entries(self._server, self._user_id)
        for entry in entries:
            self._put(entry.as_message())
            if entry.state is DeliveryState.PENDING:
                # A new run is a good moment to try at once, whatever backoff the last run had reached.
                self._enqueue(replace(entry, next_attempt_at=0.0))
        return [self._rows[entry.id] for entry in entries]

    async def close(self) -> None:
        """Stop the workers. Unsent messages stay in the outbox for the next start."""
        self._closed = True
        workers = [queue.worker for queue in self._queues.values() if queue.worker is not None]
        for worker in workers:
            worker.cancel()
        for worker in workers:
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        self._listeners.clear()

    def subscribe(self, listener: PendingListener) -> Callable[[], None]:
        """Hear every lifecycle event of every message of this user's, as it happens."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    # --- what is pending ---------------------------------------------------------------------------
    @property
    def depth(self) -> int:
        """Messages waiting in the outbox (pending and failed), counted as they come and go."""
        return self._unsent

    def unsent(self, chat_id: ChatId) -> list[Message]:
        """The pending and failed rows of a chat, in send order (a timeline shows them after the rest)."""
        return [
            row
            for row in self._rows.values()
            if row.chat_id == chat_id and row.delivery is not DeliveryState.SENT and row.id not in self._echoed
        ]

    def get(self, message_id: MessageId) -> Message | None:
        """The row of a message that is not confirmed yet, or None."""
        return self._rows.get(message_id)

    # --- commands ----------------------------------------------------------------------------------
    async def send(self, chat_id: ChatId, text: str, reply_to: MessageId | None = None) -> MessageId:
        """Check the text, put the message in the outbox (on disk when this returns) and queue it.

        ``reply_to`` (the message of the same chat it answers) travels in the outbox row, so a reply
        written offline goes out as a reply, once, whenever the server is back.
        """
        validate_message_text(text)
        entry = await self._outbox.add(new_message_id(), self._server, self._user_id, chat_id, text, reply_to)
        message = entry.as_message()
        self._put(message)
        self._emit(Submitted(message))
        self._enqueue(entry)
        return entry.id

    async def retry(self, message_id: MessageId) -> Message | None:
        """Send a failed message again, with the same id. Returns its pending row (None: not waiting)."""
        current = self._rows.get(message_id)
        if current is not None and current.delivery is DeliveryState.PENDING:
            return current  # already on its way
        entry = await self._outbox.mark_pending(message_id)
        if entry is None:
            return None
        message = entry.as_message()
        self._put(message)
        self._emit(Retried(message))
        self._enqueue(entry)
        return message

    async def discard(self, message_id: MessageId) -> bool:
        """Drop an unsent message for good (it is removed from its chat's queue too)."""
        for queue in self._queues.values():
            # The head may be on the wire right now: it stays, and its worker sees it is gone from the
            # outbox before the next attempt. Wake the worker in case it is waiting out a backoff.
            head = queue.entries[0] if queue.entries else None
            queue.entries = deque(entry for entry in queue.entries if entry.id != message_id or entry is head)
            queue.wake.set()
        removed = await self._outbox.remove(message_id)
        row = self._rows.get(message_id)
        if row is not None and row.delivery is not DeliveryState.SENT:
            self._drop(message_id)
            self._echoed.discard(message_id)
            self._emit(Discarded(row))
        return removed

    def confirm(self, messages: Iterable[Message]) -> None:
        """Rows that came through the ordered change stream (realtime, back-fill): ours are confirmed."""
        for message in messages:
            row = self._rows.get(message.id)
            if row is None:
                continue
            if row.delivery is DeliveryState.SENT:
                self._drop(message.id)
                self._emit(Confirmed(message))
            elif row.delivery is DeliveryState.PENDING:
                # The echo overtook the server's answer: Confirmed follows Sent when the answer comes.
                self._echoed.add(message.id)

    def pause(self) -> None:
        """Hold every attempt (signed in offline: a request now would go out without a session)."""
        self._online.clear()

    def resume(self) -> None:
        """The session is confirmed: send what waits, now."""
        self._online.set()
        self.nudge()

    def nudge(self) -> None:
        """The server may be reachable again: end every backoff wait now."""
        for queue in self._queues.values():
            queue.wake.set()

    def server_answered(self) -> None:
        """Some request was answered: if a send had found the server away, send what waits now.

        Only once per outage (the first answer after an attempt failed as unreachable), so a chat whose
        sends fail for a reason of its own is not retried on every other request's answer.
        """
        if self._server_away:
            self._server_away = False
            self.nudge()

    def _put(self, row: Message) -> None:
        previous = self._rows.get(row.id)
        self._unsent += (row.delivery is not DeliveryState.SENT) - (
            previous is not None and previous.delivery is not DeliveryState.SENT
        )
        self._rows[row.id] = row

    def _drop(self, message_id: MessageId) -> None:
        row = self._rows.pop(message_id, None)
        if row is not None and row.delivery is not DeliveryState.SENT:
            self._unsent -= 1

    def _emit(self, event: PendingEvent) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:  # a view's bug must not stop delivery
                log.exception("pending-message listener failed")

    # --- the per-chat worker -----------------------------------------------------------------------
    def _enqueue(self, entry: OutboxEntry) -> None:
        queue = self._queues.setdefault(entry.chat_id, _ChatQueue())
        if any(existing.id == entry.id for existing in queue.entries):
            return
        # No wake-up here: a new message queues behind a head that is backing off; only ``nudge`` (the
        # server is back) or a discard ends a backoff early. Otherwise every keystroke-and-send during an
        # outage would be one more retry, and the backoff would climb to its cap within seconds.
        queue.entries.append(entry)
        if (queue.worker is None or queue.worker.done()) and not self._closed:
            queue.worker = asyncio.get_running_loop().create_task(
                self._drain(entry.chat_id, queue), name=f"sender-{entry.chat_id}"
            )

    async def _drain(self, chat_id: ChatId, queue: _ChatQueue) -> None:
        while queue.entries and not self._closed:
            await self._online.wait()
            delay = queue.entries[0].next_attempt_at - self._clock()
            if delay > 0:
                queue.wake.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await queue.wake.wait()
            if not queue.entries:
                break
            # The head's backoff is the batch's: what queued behind it goes with it.
            batch = list(itertools.islice(queue.entries, self._batch))
            present = await self._outbox.present([entry.id for entry in batch])
            done = {entry.id for entry in batch if entry.id not in present}  # discarded meanwhile
            live = [entry for entry in batch if entry.id in present]
            if live:
                delivered, _ = await self._attempt(live, queue)
                done |= delivered
            if done:
                # By id: a discard may have rebuilt the queue while the batch was on the wire.
                queue.entries = deque(entry for entry in queue.entries if entry.id not in done)
        queue.worker = None

    async def _attempt(self, batch: list[OutboxEntry], queue: _ChatQueue) -> tuple[set[MessageId], bool]:
        """Try ``batch`` (the front of a chat's queue) once.

        Returns the ids it is done with (sent or failed), and whether it stopped early: a transient
        failure leaves the batch's first message waiting out a backoff, and everything after it waits too.
        """
        head = batch[0]
        for entry in batch:
            self._emit(Sending(self._rows.get(entry.id) or entry.as_message(), entry.attempts + 1))
        try:
            stored = await self._store(batch)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            if not isinstance(error, DesktopChatError):
                log.exception("Unexpected error while sending messages")  # a bug: keep the traceback
            decision = decide(error, head.attempts)
            if isinstance(decision, GiveUp) and len(batch) > 1:
                # One row refused refuses the whole insert: halve until the refused one is alone.
                half = len(batch) // 2
                first, stalled = await self._attempt(batch[:half], queue)
                if stalled:
                    return first, True
                rest, stalled = await self._attempt(batch[half:], queue)
                return first | rest, stalled
            if isinstance(decision, RefreshAndRetry) and head.last_error != _REFRESHED:
                updated = await self._outbox.record_attempt(head, _REFRESHED, self._clock())
                self._replace(queue, updated)
                try:
                    await self._backend.refresh_session()
                    return set(), True  # straight back with the new token
                except asyncio.CancelledError:
                    raise
                except Exception as refresh_error:
                    error = refresh_error
                    decision = decide(refresh_error, updated.attempts)
                    head = updated
            if isinstance(decision, RefreshAndRetry):
                # Refused again right after a refresh: wait before trying once more.
                decision = RetryLater(backoff(head.attempts), "The server does not accept the session yet.")
            if isinstance(decision, GiveUp):
                await self._fail(head, decision.reason)
                return {head.id}, False
            if isinstance(error, EnvironmentFailure):
                self._server_away = True
            updated = await self._outbox.record_attempt(head, decision.reason, self._clock() + decision.delay)
            self._replace(queue, updated)
            log.info(
                "Send of %d message(s) in chat %s will be retried in %.1f s", len(batch), head.chat_id, decision.delay
            )
            return set(), True
        done: set[MessageId] = set()
        for entry in batch:
            if entry.id not in stored:
                # Stored (an insert skipped it) but the read finds nothing: RLS hides it now.
                await self._fail(entry, "The message was stored but is no longer visible to you.")
                done.add(entry.id)
        await self._outbox.remove_delivered_many([entry.id for entry in batch if entry.id in stored])
        for entry in batch:
            row = stored.get(entry.id)
            if row is None:
                continue
            sent = row.model_copy(update={"delivery": DeliveryState.SENT, "error": None})
            self._put(sent)
            self._emit(Sent(sent))
            if sent.id in self._echoed:
                self._echoed.discard(sent.id)
                self._drop(sent.id)
                self._emit(Confirmed(sent))
            done.add(entry.id)
        self.server_answered()
        return done, False

    async def _store(self, batch: list[OutboxEntry]) -> dict[MessageId, Message]:
        """Insert the batch; the stored row of each message, those an earlier attempt stored included."""
        chat_id = batch[0].chat_id
        rows = [(entry.id, entry.content, entry.reply_to) for entry in batch]
        inserted = await self._backend.insert_messages(chat_id, rows)
        stored = {row.id: row for row in inserted}
        missing = [entry.id for entry in batch if entry.id not in stored]
        if missing:
            # An earlier attempt got through and only its answer was lost.
            stored.update((row.id, row) for row in await self._backend.fetch_messages_by_id(chat_id, missing))
        return stored

    @staticmethod
    def _replace(queue: _ChatQueue, updated: OutboxEntry) -> None:
        for index, entry in enumerate(queue.entries):
            if entry.id == updated.id:
                queue.entries[index] = updated
                return

    async def _fail(self, entry: OutboxEntry, reason: str) -> None:
        failed = (await self._outbox.mark_failed(entry, reason)).as_message()
        log.info("A message in chat %s failed: %s", entry.chat_id, reason)
        if failed.id not in self._rows:
            return  # discarded while its request was out: it stays gone
        self._put(failed)
        self._emit(Failed(failed))
