"""``BackendCalls``: every request the data layer makes to Supabase, timed and counted in one place.

Reads, writes, back-fill and sends all go through ``call``: its latency lands in
``supabase.latency_seconds`` (label ``op``), a failure in ``errors`` (``supabase.<op>``), and whether the
server answered in the status (``backend_reachable``, with the reason when it did not).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from desktop_chat.backend.client import SupabaseBackend
from desktop_chat.dal.live_list import Unsubscribe
from desktop_chat.dal.status import StatusBoard
from desktop_chat.errors import BackendUnavailable
from desktop_chat.models import ChatId, Message, MessageId
from desktop_chat.telemetry.metrics import ERRORS, SUPABASE_LATENCY, MetricsRegistry

T = TypeVar("T")


class BackendCalls:
    """Times calls to Supabase and follows whether the server can be reached.

    Args:
        metrics: Where latencies and errors go.
        status: Where reachability goes.
    """

    def __init__(self, metrics: MetricsRegistry, status: StatusBoard) -> None:
        self._metrics = metrics
        self._status = status
        self._reached: list[Callable[[], None]] = []

    async def call(self, operation: str, run: Callable[[], Awaitable[T]]) -> T:
        """Await ``run()``, recording its latency under ``operation`` and the server's reachability."""
        started = time.perf_counter()
        try:
            result = await run()
        except BackendUnavailable as error:
            self._observe(operation, started, ok=False)
            self.reached(False, error.message)
            raise
        except Exception:
            self._observe(operation, started, ok=False)
            raise
        self._observe(operation, started, ok=True)
        self.reached(True)
        return result

    def reached(self, ok: bool, detail: str = "") -> None:
        """The server answered (or could not be reached, and ``detail`` says why)."""
        self._status.update(backend_reachable=ok, detail="" if ok else detail)
        if ok:
            for listener in list(self._reached):
                listener()

    def subscribe_reached(self, listener: Callable[[], None]) -> Unsubscribe:
        """Call ``listener`` whenever the server answered (the realtime link uses it to cut a backoff short)."""
        self._reached.append(listener)
        return lambda: self._reached.remove(listener) if listener in self._reached else None

    def _observe(self, operation: str, started: float, *, ok: bool) -> None:
        self._metrics.histogram(SUPABASE_LATENCY, op=operation).observe(time.perf_counter() - started)
        if not ok:
            self._metrics.counter(ERRORS, kind=f"supabase.{operation}").inc()


class TimedSending:
    """What the sender needs from the backend (``sync.sender.SendingBackend``), through ``BackendCalls``."""

    def __init__(self, backend: SupabaseBackend, calls: BackendCalls) -> None:
        self._backend = backend
        self._calls = calls

    async def insert_message(
        self, message_id: MessageId, chat_id: ChatId, content: str, *, reply_to: MessageId | None = None
    ) -> Message | None:
        return await self._calls.call(
            "insert_message", lambda: self._backend.insert_message(message_id, chat_id, content, reply_to=reply_to)
        )

    async def fetch_message(self, message_id: MessageId, chat_id: ChatId) -> Message | None:
        return await self._calls.call("message", lambda: self._backend.fetch_message(message_id, chat_id))

    async def refresh_session(self) -> object:
        return await self._backend.refresh_session()


class TimedReacting:
    """What the reaction sender needs from the backend (``sync.reactions.ReactingBackend``), timed."""

    def __init__(self, backend: SupabaseBackend, calls: BackendCalls) -> None:
        self._backend = backend
        self._calls = calls

    async def add_reaction(self, chat_id: ChatId, message_id: MessageId, emoji: str) -> bool:
        return await self._calls.call("add_reaction", lambda: self._backend.add_reaction(chat_id, message_id, emoji))

    async def remove_reaction(self, chat_id: ChatId, message_id: MessageId, emoji: str) -> bool:
        return await self._calls.call(
            "remove_reaction", lambda: self._backend.remove_reaction(chat_id, message_id, emoji)
        )

    async def refresh_session(self) -> object:
        return await self._backend.refresh_session()
