"""How the app uses Realtime's budget: which chat topics it holds, when it joins them, how it notices a dead
link and when it comes back. Pure: no I/O, no clock (delays are drawn from the ``random.Random`` given).

The numbers that decided it (Supabase's published quotas; docs/architecture.md section 5 measures them):

- 100 channels per connection; channel joins per second per *project*: 100 (Free), 500 (Pro), 2,500
  (Team); concurrent connections 200 (Free), 500 (Pro), 10,000 (Team).
- A client holds ``user:<me>`` (1 join) and, for each of at most ``HOT_CHATS`` chats, ``chat:<id>`` and
  ``chat:<id>:typing`` (2 joins): 1 + 2 × 3 = 7 joins, far below 100 channels.
- When the server or a proxy drops every socket at once, every client comes back at once. 500 clients (a
  full Pro project) × 7 joins in the same second would be 3,500 joins/s, seven times Pro's limit (the
  excess is refused with ``ClientJoinRateLimitReached`` and retried by the client 30 s later). So a lost
  link is rebuilt after a random ``0 .. RECONNECT_SPREAD`` s; then ``user:<me>`` and the open chat's two
  topics come first (3 joins: 500 × 3 / 5 s = 300 joins/s), and the other hot chats only after another
  ``DEFERRED_AFTER .. DEFERRED_AFTER + DEFERRED_SPREAD`` s (500 × 4 / 10 s = 200 joins/s, once the first
  wave is over): at most 300 joins/s, 60 % of Pro's limit.
- Nothing a user reads depends on this timing: every reconnect back-fills by ``rev``, and the periodic
  consistency probe (``desktop_chat.dal.probe``) repairs what a push lost within ``PROBE_INTERVAL``.
- A dead link is noticed by a Phoenix heartbeat that must be answered within ``HEARTBEAT_TIMEOUT``; one is
  sent every ``HEARTBEAT_INTERVAL``: a deaf or black-holed socket is given up 2-4 s after it went quiet
  (the official client sends one every 25 s and never checks the reply). 500 clients send 250
  heartbeats a second, which Realtime answers in the socket's own process, without the database.
- So a link that went deaf is back within 4 + 5 s plus a join, and what it missed is shown by then.
- A slow server must not be taken for a dead one: a heartbeat timeout that fires on an overloaded server
  makes every client reconnect, which is more load (7 joins and a back-fill each), which makes more
  heartbeats late. So the timeout follows the replies' round trips (TCP's estimate: smoothed time plus
  four deviations, never under ``heartbeat_timeout``) and doubles, up to 8 s, each time a link in a row was
  given up for silence (``Watchdog``); a link that answers for a minute resets it.
- Presence is the costly part: every track reaches every subscriber of the topic (a chat of 500 where all
  track is 500 × 500 deliveries, and each client's presence state is rebuilt with every one of them), a
  client may send 5 presence updates per 30 s (the sixth gets its channel closed:
  ``ClientPresenceRateLimitReached``) and a project 20 (Free) / 50 (Pro) / 1,000 (Team) presence messages
  a second. So a client tracks at most ``TRACKS_PER_WINDOW`` times per ``TRACK_WINDOW``, not at all in a chat
  where ``PRESENCE_CROWD`` others are already online (a crowd shows as online anyway; the tracks of a big
  chat stay bounded), and after a reconnect spreads its tracks over ``presence_spread`` (500 clients × 3
  tracks over 30 s: 50 a second).
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from desktop_chat.models import ChatId

HOT_CHATS = 3  # chats whose own topics (messages, presence, typing) are held: the open one(s) first
PRESENCE_CROWD = 25  # others online in a chat above which this client does not add itself
TRACKS_PER_WINDOW = 4  # presence updates a client sends per TRACK_WINDOW (Supabase closes a channel at 5)
TRACK_WINDOW = 30.0


@dataclass(frozen=True, slots=True)
class LinkTiming:
    """The realtime link's timing, in seconds (tests may shorten it; the defaults are the product's).

    Attributes:
        heartbeat_interval: How often a heartbeat goes out while the link is up.
        heartbeat_timeout: How long its reply may take before the link counts as dead.
        reconnect_spread: A lost link is rebuilt after a random delay up to this.
        deferred_after, deferred_spread: After a reconnect, hot chats other than the open ones are
            joined this much later, spread over ``deferred_spread``.
        max_backoff: The longest wait between failed attempts to connect.
        subscribe_timeout: How long a join may take.
        chat_retry: How long a chat topic whose join failed (for a reason other than rights) waits.
        presence_spread: After a reconnect, each chat's presence track waits a random delay up to this.
    """

    heartbeat_interval: float = 2.0
    heartbeat_timeout: float = 2.0
    reconnect_spread: float = 5.0
    deferred_after: float = 5.0
    deferred_spread: float = 10.0
    max_backoff: float = 30.0
    subscribe_timeout: float = 10.0
    chat_retry: float = 5.0
    presence_spread: float = 30.0


def reconnect_delay(failures: int, timing: LinkTiming, rng: random.Random) -> float:
    """How long to wait before the next attempt to connect.

    ``failures`` is the number of attempts that failed since the link was last up (0: it just broke).
    Full jitter (a uniform draw from zero to the ceiling), so that clients which lost their link at the
    same moment do not come back at the same moment; the ceiling doubles with each failure.
    """
    ceiling = min(timing.max_backoff, timing.reconnect_spread * 2.0 ** min(failures, 16))
    return rng.uniform(0.0, ceiling)


def deferred_delay(timing: LinkTiming, rng: random.Random) -> float:
    """After a reconnect, how long the hot chats that are not open wait before they are joined."""
    return timing.deferred_after + rng.uniform(0.0, timing.deferred_spread)


def choose_hot_chats(
    open_chats: Sequence[ChatId],
    recently_opened: Iterable[ChatId],
    listed: Callable[[ChatId], bool],
    limit: int = HOT_CHATS,
) -> tuple[tuple[ChatId, ...], tuple[ChatId, ...]]:
    """The chats whose topics to hold: ``(open, others)``.

    Every open chat is held (its view needs the pushes and typing); the rest of the ``limit`` go to the
    chats opened most recently (switching back is instant, and the chat list shows their presence and
    typing). The set changes only when the user opens a chat, never because another chat got a message:
    a held set that followed the list's order would leave and join topics with every message. Only listed
    chats qualify: a chat the user left or was removed from is never joined again.
    """
    opened = tuple(chat for chat in dict.fromkeys(open_chats) if listed(chat))
    others: list[ChatId] = []
    for chat in recently_opened:
        if len(opened) + len(others) >= limit:
            break
        if chat not in opened and chat not in others and listed(chat):
            others.append(chat)
    return opened, tuple(others)


@dataclass
class TrackBudget:
    """At most ``limit`` presence updates in any ``window`` seconds (times are the caller's clock)."""

    limit: int = TRACKS_PER_WINDOW
    window: float = TRACK_WINDOW
    _sent: deque[float] = field(default_factory=deque)

    def wait(self, now: float) -> float:
        """Seconds from ``now`` until one more update fits (0: now)."""
        while self._sent and self._sent[0] <= now - self.window:
            self._sent.popleft()
        if len(self._sent) < self.limit:
            return 0.0
        return self._sent[0] + self.window - now

    def spend(self, now: float) -> None:
        """One update goes at ``now`` (after ``wait`` said it fits)."""
        self._sent.append(now)


@dataclass
class Watchdog:
    """How long a heartbeat's reply may take, learnt from the replies (RFC 6298's estimator) and from the
    links given up for silence in a row. Lives as long as the manager, across sockets.

    Attributes:
        floor: The shortest timeout (``LinkTiming.heartbeat_timeout``).
        cap: The longest.
        srtt, rttvar: The smoothed round trip and its deviation, seconds (None: no reply seen yet).
        strikes: Links in a row given up for a missing reply.
        answered_in_a_row: Replies since the last miss (``HEALTHY_REPLIES`` of them clear the strikes).
    """

    floor: float = 2.0
    cap: float = 10.0
    srtt: float | None = None
    rttvar: float = 0.0
    strikes: int = 0
    answered_in_a_row: int = 0

    HEALTHY_REPLIES = 30  # a minute of replies at one every 2 s

    def timeout(self) -> float:
        patience = self.floor * 2.0 ** min(self.strikes, 2)
        if self.srtt is not None:
            patience = max(patience, self.srtt + 4.0 * self.rttvar)
        return min(self.cap, patience)

    def answered(self, rtt: float) -> None:
        if self.srtt is None:
            self.srtt, self.rttvar = rtt, rtt / 2.0
        else:
            self.rttvar = 0.75 * self.rttvar + 0.25 * abs(self.srtt - rtt)
            self.srtt = 0.875 * self.srtt + 0.125 * rtt
        self.answered_in_a_row += 1
        if self.answered_in_a_row >= self.HEALTHY_REPLIES:
            self.strikes = 0

    def silent(self) -> None:
        """A reply did not come in time: the link is given up."""
        self.strikes += 1
        self.answered_in_a_row = 0
