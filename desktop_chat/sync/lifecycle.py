"""The life of a pending message, as typed events. Pure: no I/O.

Every message this user sends goes through one lifecycle, owned by the ``Sender`` (which holds the outbox
and the delivery queues) and announced to whoever listens (live sync shows the rows, the status counts
what waits)::

    Submitted ──► Sending ──► Sent ──► Confirmed
                   ▲   │                   (the change stream brought the server's row: done)
                   └───┤ (a transient failure: the next attempt is Sending again)
                       ▼
                    Failed ──► Retried ──► Sending ...
                       └─────► Discarded

- ``Submitted``: on disk in the outbox, shown at once as pending (no ``seq`` yet).
- ``Sending``: an attempt is on its way to the server (``attempt`` counts from 1).
- ``Sent``: the server stored it and answered with its row (``seq``, ``rev``, server time).
- ``Confirmed``: the same row came back through the ordered change stream (the realtime echo or a
  back-fill), so the cache has it; the sender forgets the message. When the echo overtakes the answer,
  ``Confirmed`` follows ``Sent`` at once.
- ``Failed``: refused for good, with a reason in plain words; it waits for the user.
- ``Retried``: the user asked again; same id, same place in its chat's queue.
- ``Discarded``: the user dropped it; it will never be sent. A discard that loses the race with its own
  request in flight can still be followed by ``Sent``: the server has the message, so it is shown.

A message restored from the outbox at start-up continues from ``Submitted`` (pending) or ``Failed``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from desktop_chat.models import Message


@dataclass(frozen=True, slots=True)
class Submitted:
    message: Message  # the pending row


@dataclass(frozen=True, slots=True)
class Sending:
    message: Message  # the pending row
    attempt: int


@dataclass(frozen=True, slots=True)
class Sent:
    message: Message  # the server's row, delivery SENT


@dataclass(frozen=True, slots=True)
class Confirmed:
    message: Message  # the row as the change stream brought it


@dataclass(frozen=True, slots=True)
class Failed:
    message: Message  # delivery FAILED, ``error`` says why


@dataclass(frozen=True, slots=True)
class Retried:
    message: Message  # pending again


@dataclass(frozen=True, slots=True)
class Discarded:
    message: Message  # the row as it was last shown


PendingEvent = Submitted | Sending | Sent | Confirmed | Failed | Retried | Discarded
PendingListener = Callable[[PendingEvent], None]

# Which event may follow which; None is "nothing yet". ``Sending`` follows itself after a transient failure.
NEXT: dict[type[PendingEvent] | None, frozenset[type[PendingEvent]]] = {
    None: frozenset({Submitted}),
    Submitted: frozenset({Sending, Discarded}),
    Sending: frozenset({Sending, Sent, Failed, Discarded}),
    Sent: frozenset({Confirmed}),
    Confirmed: frozenset(),
    Failed: frozenset({Retried, Discarded}),
    Retried: frozenset({Sending, Discarded}),
    Discarded: frozenset({Sent}),
}


def follows(previous: PendingEvent | None, event: PendingEvent) -> bool:
    """Whether ``event`` may come after ``previous`` in one message's lifecycle."""
    return type(event) in NEXT[type(previous) if previous is not None else None]
