"""The chaos suite's bookkeeping: what was sent, stored and shown, and when it healed. Pure: no I/O, no clock.

Every message the suite sends has a unique text (its *key*). Each client process reports, after every batch
of row operations on an open timeline, how many rows of that timeline carry the key (``copies``) and how
many of those the server has confirmed (``confirmed``: ``seq`` set). A ``ViewRecord`` keeps those
observations for one timeline of one client process; a restarted process gets a new record, since what a
dead process showed is of no use to its user.

A message is **settled** in a view from the first observation after which the view shows it exactly once,
confirmed, until the end of the run. It is **shown once** when it is settled in every view that must show
it (the sender's and every other member's) and stored exactly once in PostgreSQL. It is **lost** when it
is not shown once at the end (missing, still pending, or not stored), and **duplicated** when any view ever
showed it twice or PostgreSQL holds two rows of it (a message resent under a new id).

**Heal time.** Each message is blamed on one fault: the latest that began before it was sent (or up to
``IN_FLIGHT`` after: it was still on its way), else, for a message sent before any fault, the first fault if it
began before the message settled. The message's heal time is ``settled - max(sent, end of that fault)``: how
long after the fault was over (or after it was sent, if that was later) it took to show everywhere. A fault's
heal time is the longest among its messages; a cell's, the longest of its faults'. A message sent after the
fault therefore counts only its own delay, so senders can keep a steady pace through and after a fault; and a
message stuck since an earlier fault is never excused by a later one ending (in the soak, faults follow each
other while the damage of one may last). A message that never settles has no heal time: its fault never
healed within the run. Messages blamed on no fault give the plain latency (``latency_max_s``).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

HEAL_LIMIT = 10.0  # seconds from a fault's end to everything consistent (issue 10's goal)


@dataclass(frozen=True, slots=True)
class Observation:
    """One view's state of one message, right after a batch of row operations was applied."""

    t: float
    copies: int  # rows with the message's text
    confirmed: int  # of which the server confirmed (seq set)

    @property
    def once(self) -> bool:
        return self.copies == 1 and self.confirmed == 1


@dataclass
class ViewRecord:
    """What one open timeline of one client process showed of each message, over time.

    Args:
        name: Whose view, for reports (``"bob"``, ``"alice#2"`` for alice's second process).
        opened: When the view was opened (observations before it are impossible).
    """

    name: str
    opened: float
    history: dict[str, list[Observation]] = field(default_factory=dict)

    def observe(self, key: str, t: float, copies: int, confirmed: int) -> None:
        self.history.setdefault(key, []).append(Observation(t, copies, confirmed))

    def final(self, key: str) -> Observation | None:
        observations = self.history.get(key)
        return observations[-1] if observations else None

    def shown_once_now(self, key: str) -> bool:
        last = self.final(key)
        return last is not None and last.once

    def settled_at(self, key: str) -> float | None:
        """When the view came to show ``key`` once, confirmed, for good; None if it does not at the end."""
        observations = self.history.get(key)
        if not observations or not observations[-1].once:
            return None
        first = len(observations) - 1
        while first > 0 and observations[first - 1].once:
            first -= 1
        return observations[first].t

    def ever_doubled(self, key: str) -> bool:
        return any(o.copies > 1 for o in self.history.get(key, ()))


@dataclass(frozen=True, slots=True)
class SentMessage:
    """A message whose ``send()`` returned (it is in the sender's outbox)."""

    key: str
    sender: str
    chat: str
    t: float


@dataclass(frozen=True, slots=True)
class FaultWindow:
    """One injected fault: what, when it began, and when it was over (the network, process or server back)."""

    kind: str
    started: float
    ended: float


@dataclass
class Tally:
    """The accounting of one cell (or of the whole soak)."""

    sent: int = 0
    extra: int = 0  # stored but never reported sent (a send() cut short by SIGKILL after the outbox took it)
    stored: int = 0
    shown_once: int = 0
    lost: int = 0
    duplicated: int = 0
    heal_s: float | None = 0.0  # None: something never healed
    fault_heal_s: list[float | None] = field(default_factory=list)  # per fault, in fault order
    missing_by_view: dict[str, int] = field(default_factory=dict)
    unconfirmed_by_view: dict[str, int] = field(default_factory=dict)
    doubled_by_view: dict[str, int] = field(default_factory=dict)
    not_stored: int = 0
    stored_twice: int = 0
    lost_by_sender: dict[str, int] = field(default_factory=dict)
    lost_sent_after_fault_end: int = 0  # of the lost ones, how many were sent after the (last) fault ended
    latency_max_s: float = 0.0  # the slowest message that settled before any fault ended (no fault to blame)
    worst_message: str | None = None  # the key that healed last (or one that never did)

    def ok(self, limit: float = HEAL_LIMIT) -> bool:
        return self.lost == 0 and self.duplicated == 0 and self.heal_s is not None and self.heal_s <= limit

    def as_dict(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "extra": self.extra,
            "stored": self.stored,
            "shown_once": self.shown_once,
            "lost": self.lost,
            "duplicated": self.duplicated,
            "heal_s": None if self.heal_s is None else round(self.heal_s, 3),
            "fault_heal_s": [None if h is None else round(h, 3) for h in self.fault_heal_s],
            "missing_by_view": self.missing_by_view,
            "unconfirmed_by_view": self.unconfirmed_by_view,
            "doubled_by_view": self.doubled_by_view,
            "not_stored": self.not_stored,
            "stored_twice": self.stored_twice,
            "lost_by_sender": self.lost_by_sender,
            "lost_sent_after_fault_end": self.lost_sent_after_fault_end,
            "worst_message": self.worst_message,
            "latency_max_s": round(self.latency_max_s, 3),
        }


IN_FLIGHT = 1.0  # seconds: a message sent this long before a fault began was likely still on its way


def fault_before(t: float, times: Sequence[float]) -> int | None:
    """Index of the last of ``times`` (sorted) at or before ``t``; None when all are later."""
    index = bisect.bisect_right(times, t) - 1
    return index if index >= 0 else None


def account(
    sent: Iterable[SentMessage],
    stored: Mapping[str, int],
    views: Mapping[str, Sequence[ViewRecord]],
    faults: Sequence[FaultWindow],
) -> Tally:
    """Tally a run (see the module docstring for the definitions).

    Args:
        sent: Every message whose ``send()`` returned.
        stored: Rows in PostgreSQL per key (the suite's keys only).
        views: Per chat, the views that must show each of its messages (the final process of each member).
        faults: The faults injected.
    """
    by_key = {message.key: message for message in sent}
    tally = Tally(sent=len(by_key))
    chat_of = {key: message.chat for key, message in by_key.items()}
    extra = [key for key, rows in stored.items() if rows > 0 and key not in by_key]
    tally.extra = len(extra)
    for key in extra:
        # A stored message nobody reported sent belongs to the chat whose views show it.
        chat_of[key] = next((chat for chat, records in views.items() if any(key in v.history for v in records)), "")
    by_start = sorted(range(len(faults)), key=lambda i: faults[i].started)
    starts = [faults[i].started for i in by_start]
    last_end = max((f.ended for f in faults), default=-math.inf)
    fault_heal: list[float | None] = [0.0] * len(faults)
    worst_heal = -math.inf

    def blamed(message: SentMessage | None, settled: float) -> int | None:
        """The fault a message is blamed on (an index into ``faults``), or None."""
        index = fault_before(message.t + IN_FLIGHT, starts) if message is not None else None
        if index is None:
            index = 0 if starts and starts[0] <= settled else None
            if message is None and starts:
                index = fault_before(settled, starts)
        return by_start[index] if index is not None else None

    for key in list(by_key) + extra:
        message = by_key.get(key)
        records = views.get(chat_of[key], ())
        rows = stored.get(key, 0)
        tally.stored += rows > 0
        tally.not_stored += rows == 0
        tally.stored_twice += rows > 1
        doubled = rows > 1
        settled: list[float] = []
        missing = not records or rows == 0
        for view in records:
            if view.ever_doubled(key):
                doubled = True
                tally.doubled_by_view[view.name] = tally.doubled_by_view.get(view.name, 0) + 1
            at = view.settled_at(key)
            if at is None:
                missing = True
                last = view.final(key)
                bucket = tally.unconfirmed_by_view if last is not None and last.copies else tally.missing_by_view
                bucket[view.name] = bucket.get(view.name, 0) + 1
            else:
                settled.append(at)
        tally.duplicated += doubled
        if missing:
            tally.lost += 1
            sender = message.sender if message is not None else "?"
            tally.lost_by_sender[sender] = tally.lost_by_sender.get(sender, 0) + 1
            if message is not None and message.t > last_end:
                tally.lost_sent_after_fault_end += 1
            fault = blamed(message, math.inf)
            if fault is not None:
                fault_heal[fault] = None
            tally.worst_message = key
            continue
        if doubled:
            continue
        tally.shown_once += 1
        when = max(settled)
        fault = blamed(message, when)
        if fault is None:
            if message is not None:
                tally.latency_max_s = max(tally.latency_max_s, when - message.t)
            continue
        start = faults[fault].ended if message is None else max(message.t, faults[fault].ended)
        heal = max(0.0, when - start)
        current = fault_heal[fault]
        if current is not None:
            fault_heal[fault] = max(current, heal)
        if heal > worst_heal and tally.lost == 0:
            worst_heal = heal
            tally.worst_message = key
    tally.fault_heal_s = fault_heal
    if tally.lost or any(h is None for h in fault_heal):
        tally.heal_s = None
    else:
        tally.heal_s = max((h for h in fault_heal if h is not None), default=0.0)
    return tally
