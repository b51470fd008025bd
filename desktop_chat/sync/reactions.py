"""``ReactionSender``: delivers the user's reaction toggles from the outbox, each final wish once.

A toggle is written to the outbox's ``reaction_ops`` first (on disk when ``toggle`` returns), keyed by
(chat, message, emoji) with what the user wants now; toggling again replaces the wish and bumps its
version, so while offline "add, remove, add" leaves one op, "add", and one request goes out. Both
requests are idempotent on the server (add is ``insert … on conflict do nothing``, remove a delete by
the whole key), so an op sent again after a lost answer changes nothing. A delivered op leaves the outbox
only when its version is still the one sent; a toggle made while it was on the wire is sent next.

One worker for all of a user's reactions (they are small and rare next to messages), oldest first; a
transient failure backs off like a message (``delivery.decide``) and ``nudge`` cuts the wait short; a
refusal (not a member any more, the message deleted: RLS ``42501``, a check) drops the op and tells the
listeners, who undo what they showed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol

from desktop_chat.errors import DesktopChatError
from desktop_chat.models import ChatId, MessageId, UserId, validate_emoji
from desktop_chat.sync.delivery import GiveUp, RefreshAndRetry, RetryLater, backoff, decide
from desktop_chat.sync.outbox import Outbox, ReactionOp

log = logging.getLogger(__name__)


class ReactingBackend(Protocol):
    """What the reaction sender needs from the backend (``SupabaseBackend`` has it)."""

    async def add_reaction(self, chat_id: ChatId, message_id: MessageId, emoji: str) -> bool: ...

    async def remove_reaction(self, chat_id: ChatId, message_id: MessageId, emoji: str) -> bool: ...

    async def refresh_session(self) -> object: ...


@dataclass(frozen=True, slots=True)
class ReactionQueued:
    op: ReactionOp  # the wish as stored: shown at once


@dataclass(frozen=True, slots=True)
class ReactionDelivered:
    op: ReactionOp  # the server has it (a newer toggle may still be waiting)
    superseded: bool  # a newer toggle of the same (message, emoji) waits: the op stays in the outbox


@dataclass(frozen=True, slots=True)
class ReactionRefused:
    op: ReactionOp
    reason: str  # in plain words


ReactionEvent = ReactionQueued | ReactionDelivered | ReactionRefused
ReactionListener = Callable[[ReactionEvent], None]


class ReactionSender:
    """Owns one user's reaction toggles until the server has them.

    Args:
        outbox: Where the wishes wait (the same SQLite file as unsent messages).
        backend: Adds and removes reactions (through the data layer's timed calls).
        server, user_id: Whose reactions these are.
        clock: Epoch seconds, for backoff deadlines.
    """

    def __init__(
        self,
        outbox: Outbox,
        backend: ReactingBackend,
        server: str,
        user_id: UserId,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._outbox = outbox
        self._backend = backend
        self._server = server
        self._user_id = user_id
        self._clock = clock
        self._ops: dict[tuple[ChatId, MessageId, str], ReactionOp] = {}
        self._listeners: list[ReactionListener] = []
        self._wake = asyncio.Event()
        self._online = asyncio.Event()
        self._online.set()
        self._worker: asyncio.Task[None] | None = None
        self._closed = False

    # --- lifecycle ---------------------------------------------------------------------------------
    async def start(self) -> list[ReactionOp]:
        """Resume the wishes a previous run left; returns them (already shown as wanted)."""
        for op in await self._outbox.reaction_ops(self._server, self._user_id):
            self._ops[op.key] = op
        self._kick()
        return list(self._ops.values())

    async def close(self) -> None:
        self._closed = True
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        self._listeners.clear()

    def subscribe(self, listener: ReactionListener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def pause(self) -> None:
        """Hold every attempt (signed in offline: no session yet)."""
        self._online.clear()

    def resume(self) -> None:
        self._online.set()
        self.nudge()

    def nudge(self) -> None:
        """The server may be reachable again: end every backoff wait now."""
        self._ops = {key: replace(op, next_attempt_at=0.0) for key, op in self._ops.items()}
        self._wake.set()

    # --- what waits --------------------------------------------------------------------------------
    def pending(self, chat_id: ChatId) -> dict[MessageId, dict[str, bool]]:
        """The chat's undelivered wishes: message → emoji → wanted."""
        wishes: dict[MessageId, dict[str, bool]] = {}
        for op in self._ops.values():
            if op.chat_id == chat_id:
                wishes.setdefault(op.message_id, {})[op.emoji] = op.wanted
        return wishes

    @property
    def depth(self) -> int:
        return len(self._ops)

    # --- commands ----------------------------------------------------------------------------------
    async def set(self, chat_id: ChatId, message_id: MessageId, emoji: str, wanted: bool) -> ReactionOp:
        """Want ``emoji`` on (``wanted``) or off ``message_id``: on disk when this returns, sent when it can."""
        validate_emoji(emoji)
        op = await self._outbox.set_reaction(self._server, self._user_id, chat_id, message_id, emoji, wanted)
        self._ops[op.key] = op
        self._emit(ReactionQueued(op))
        self._wake.set()  # a new wish goes now; those backing off keep their deadlines
        self._kick()
        return op

    # --- the worker --------------------------------------------------------------------------------
    def _kick(self) -> None:
        if self._closed or not self._ops:
            return
        if self._worker is None or self._worker.done():
            self._worker = asyncio.get_running_loop().create_task(self._drain(), name="reaction-sender")

    def _emit(self, event: ReactionEvent) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:  # a view's bug must not stop delivery
                log.exception("reaction listener failed")

    async def _drain(self) -> None:
        while self._ops and not self._closed:
            await self._online.wait()
            op = min(self._ops.values(), key=lambda o: (o.next_attempt_at, o.created_at))
            delay = op.next_attempt_at - self._clock()
            if delay > 0:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._wake.wait()
                continue  # woken (a new wish, or back online) or due: choose again
            await self._attempt(op)

    async def _attempt(self, op: ReactionOp) -> None:
        try:
            if op.wanted:
                await self._backend.add_reaction(op.chat_id, op.message_id, op.emoji)
            else:
                await self._backend.remove_reaction(op.chat_id, op.message_id, op.emoji)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            if not isinstance(error, DesktopChatError):
                log.exception("Unexpected error while sending a reaction")
            decision = decide(error, op.attempts)
            if isinstance(decision, RefreshAndRetry) and op.attempts == 0:
                with contextlib.suppress(DesktopChatError):
                    await self._backend.refresh_session()
                decision = RetryLater(0.0, "The session expired; it was renewed.")
            elif isinstance(decision, RefreshAndRetry):
                decision = RetryLater(backoff(op.attempts), "The server does not accept the session yet.")
            if isinstance(decision, GiveUp):
                await self._outbox.reaction_delivered(op)  # refused for good: it must not be sent again
                if self._is_current(op):
                    del self._ops[op.key]
                log.info("A reaction in chat %s was refused: %s", op.chat_id, decision.reason)
                self._emit(ReactionRefused(op, decision.reason))
                return
            updated = await self._outbox.reaction_attempt(op, decision.reason, self._clock() + decision.delay)
            if self._is_current(op):
                self._ops[op.key] = updated
            return
        await self._outbox.reaction_delivered(op)
        superseded = not self._is_current(op)
        if not superseded:
            del self._ops[op.key]
        self._emit(ReactionDelivered(op, superseded))

    def _is_current(self, op: ReactionOp) -> bool:
        """Whether ``op`` is still the user's last wish for its (message, emoji)."""
        current = self._ops.get(op.key)
        return current is not None and current.version == op.version
