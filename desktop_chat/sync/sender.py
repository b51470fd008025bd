"""Deliver the outbox: one FIFO per chat, one request in flight per chat, retried until it lands.

Each chat has a worker that sends its oldest unsent message, waits for the answer and only then sends
the next, so one client's messages reach the server in the order they were typed. Every attempt uses
the message's own id with ``on conflict (id) do nothing``: a retry after a lost answer cannot make a
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
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Protocol

from desktop_chat.errors import DesktopChatError
from desktop_chat.models import ChatId, DeliveryState, Message, MessageId, UserId
from desktop_chat.sync.delivery import GiveUp, RefreshAndRetry, RetryLater, backoff, decide
from desktop_chat.sync.outbox import EntryState, Outbox, OutboxEntry

log = logging.getLogger(__name__)


class SendingBackend(Protocol):
    """What the sender needs from the backend (``SupabaseBackend`` provides it)."""

    async def insert_message(self, message_id: MessageId, chat_id: ChatId, content: str) -> Message | None: ...

    async def fetch_message(self, message_id: MessageId) -> Message | None: ...

    async def refresh_session(self) -> object: ...


_REFRESHED = "The session expired; it was renewed."

DeliveredListener = Callable[[Message], None]  # a pending, sent or failed row to show
DepthListener = Callable[[int], None]


@dataclass
class _ChatQueue:
    entries: deque[OutboxEntry] = field(default_factory=deque)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    worker: asyncio.Task[None] | None = None


class Sender:
    """Drains one user's outbox.

    Args:
        outbox: The durable queue.
        backend: Does the actual insert.
        server, user_id: Whose messages this sender owns.
        on_message: Called with each state change of a message, as the row the views should show.
        on_depth: Called with the number of unsent (pending + failed) messages after each change.
    """

    def __init__(
        self,
        outbox: Outbox,
        backend: SendingBackend,
        server: str,
        user_id: UserId,
        on_message: DeliveredListener,
        on_depth: DepthListener | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._outbox = outbox
        self._backend = backend
        self._server = server
        self._user_id = user_id
        self._on_message = on_message
        self._on_depth = on_depth
        self._clock = clock
        self._queues: dict[ChatId, _ChatQueue] = {}
        self._closed = False
        self._online = asyncio.Event()
        self._online.set()

    # --- lifecycle ---------------------------------------------------------------------------------
    async def start(self) -> list[OutboxEntry]:
        """Resume what a previous run left unsent. Returns the entries (pending and failed) to show."""
        entries = await self._outbox.entries(self._server, self._user_id)
        for entry in entries:
            if entry.state is EntryState.PENDING:
                # A new run is a good moment to try at once, whatever backoff the last run had reached.
                self._enqueue(replace(entry, next_attempt_at=0.0))
        await self._report_depth()
        return entries

    async def close(self) -> None:
        """Stop the workers. Unsent messages stay in the outbox for the next start."""
        self._closed = True
        workers = [queue.worker for queue in self._queues.values() if queue.worker is not None]
        for worker in workers:
            worker.cancel()
        for worker in workers:
            with contextlib.suppress(asyncio.CancelledError):
                await worker

    # --- commands ----------------------------------------------------------------------------------
    async def submit(self, entry: OutboxEntry) -> None:
        """Queue a message that is already in the outbox."""
        self._enqueue(entry)
        await self._report_depth()

    async def retry(self, message_id: MessageId) -> Message | None:
        """Send a failed message again, with the same id. Returns its pending row."""
        entry = await self._outbox.mark_pending(message_id)
        if entry is None:
            return None
        self._enqueue(entry)
        message = entry.as_message()
        self._on_message(message)
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
        await self._report_depth()
        return removed

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
        try:
            stored = await self._backend.insert_message(entry.id, entry.chat_id, entry.content)
            if stored is None:
                # The row exists: an earlier attempt got through and only its answer was lost.
                stored = await self._backend.fetch_message(entry.id)
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
        await self._report_depth()
        self._on_message(stored.model_copy(update={"delivery": DeliveryState.SENT, "error": None}))
        return True

    async def _fail(self, entry: OutboxEntry, reason: str) -> None:
        failed = await self._outbox.mark_failed(entry, reason)
        log.info("A message in chat %s failed: %s", entry.chat_id, reason)
        await self._report_depth()
        self._on_message(failed.as_message())

    async def _report_depth(self) -> None:
        if self._on_depth is not None:
            self._on_depth(await self._outbox.depth(self._server, self._user_id))
