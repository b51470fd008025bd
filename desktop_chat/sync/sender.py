"""The one owner of this user's pending messages: the outbox, the delivery queues and their lifecycle.

``send`` writes the message to the durable outbox and queues it; every change of a pending message is
announced as one typed event (``desktop_chat.sync.lifecycle``), so the views and the status only listen.

Each chat has a worker that sends its oldest unsent message, waits for the answer and only then sends
the next, so one client's messages reach the server in the order they were typed. Every attempt uses
the message's own id with ``on conflict (id, session_id) do nothing``: a retry after a lost answer cannot make a
second row. Transient failures keep the message pending and back off (with jitter; a ``nudge`` — the
connection came back — cuts the wait short); refusals mark it failed with a reason, and later messages
of that chat go on without it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Protocol

from desktop_chat.errors import DesktopChatError
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


class SendingBackend(Protocol):
    """What the sender needs from the backend (``SupabaseBackend`` provides it)."""

    async def insert_message(
        self, message_id: MessageId, chat_id: ChatId, content: str, *, reply_to: MessageId | None = None
    ) -> Message | None: ...

    async def fetch_message(self, message_id: MessageId, chat_id: ChatId) -> Message | None:
        """The stored message of that id in that chat (ids are unique per chat)."""
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
    """

    def __init__(
        self,
        outbox: Outbox,
        backend: SendingBackend,
        server: str,
        user_id: UserId,
        clock: Callable[[], float] = time.time,
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
            self._rows[entry.id] = entry.as_message()
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
        """Messages waiting in the outbox (pending and failed)."""
        return sum(1 for row in self._rows.values() if row.delivery is not DeliveryState.SENT)

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
        self._rows[entry.id] = message
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
        self._rows[message_id] = message
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
            del self._rows[message_id]
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
                del self._rows[message.id]
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
            entry = queue.entries[0]
            delay = entry.next_attempt_at - self._clock()
            if delay > 0:
                queue.wake.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await queue.wake.wait()
            finished = await self._attempt(entry, queue)
            if finished and queue.entries and queue.entries[0].id == entry.id:
                queue.entries.popleft()
        queue.worker = None

    async def _attempt(self, entry: OutboxEntry, queue: _ChatQueue) -> bool:
        """Try once. True when the entry is done (sent, failed or discarded), False to try again."""
        if await self._outbox.get(entry.id) is None:
            return True  # discarded meanwhile
        self._emit(Sending(self._rows.get(entry.id) or entry.as_message(), entry.attempts + 1))
        try:
            stored = await self._backend.insert_message(entry.id, entry.chat_id, entry.content, reply_to=entry.reply_to)
            if stored is None:
                # The row exists: an earlier attempt got through and only its answer was lost.
                stored = await self._backend.fetch_message(entry.id, entry.chat_id)
                if stored is None:
                    raise LookupError("stored but not visible")
        except asyncio.CancelledError:
            raise
        except LookupError:
            await self._fail(entry, "The message was stored but is no longer visible to you.")
            return True
        except Exception as error:
            if not isinstance(error, DesktopChatError):
                log.exception("Unexpected error while sending a message")  # a bug: keep the traceback
            decision = decide(error, entry.attempts)
            if isinstance(decision, RefreshAndRetry) and entry.last_error != _REFRESHED:
                updated = await self._outbox.record_attempt(entry, _REFRESHED, self._clock())
                queue.entries[0] = updated
                try:
                    await self._backend.refresh_session()
                    return False  # straight back with the new token
                except asyncio.CancelledError:
                    raise
                except Exception as refresh_error:
                    decision = decide(refresh_error, updated.attempts)
                    entry = updated
            if isinstance(decision, RefreshAndRetry):
                # Refused again right after a refresh: wait before trying once more.
                decision = RetryLater(backoff(entry.attempts), "The server does not accept the session yet.")
            if isinstance(decision, GiveUp):
                await self._fail(entry, decision.reason)
                return True
            updated = await self._outbox.record_attempt(entry, decision.reason, self._clock() + decision.delay)
            queue.entries[0] = updated
            log.info("Send of a message in chat %s will be retried in %.1f s", entry.chat_id, decision.delay)
            return False
        await self._outbox.remove_delivered(entry.id)
        sent = stored.model_copy(update={"delivery": DeliveryState.SENT, "error": None})
        self._rows[sent.id] = sent
        self._emit(Sent(sent))
        if sent.id in self._echoed:
            self._echoed.discard(sent.id)
            del self._rows[sent.id]
            self._emit(Confirmed(sent))
        return True

    async def _fail(self, entry: OutboxEntry, reason: str) -> None:
        failed = (await self._outbox.mark_failed(entry, reason)).as_message()
        log.info("A message in chat %s failed: %s", entry.chat_id, reason)
        if failed.id not in self._rows:
            return  # discarded while its request was out: it stays gone
        self._rows[failed.id] = failed
        self._emit(Failed(failed))
