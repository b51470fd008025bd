"""The signed-in user's realtime link, on private topics, supervised, with a watchdog.

The link is one socket of the official client holding private channels (``config.private = true``,
authorized once per join by the schema's policies on ``realtime.messages``, see ``topics``):

- ``user:<me>``, always: the user's memberships, their chats' renames and deletes, and an ``activity``
  notice per new message, which keep the chat list and unread counts live. The link is *live* once this
  topic is joined.
- ``chat:<id>`` and ``chat:<id>:typing`` for the few chats the data layer names (``watch_chats``: the open
  chat first, then recent ones): full messages, edits and deletes, membership changes, presence (tracked
  here under the user's id) and typing. Joined and left as the user moves; a refused join or a channel the
  server closes for lack of rights is left and reported (``on_chat_lost``).

This manager owns the connection (the client's own reconnect gives up after a few tries and comes back
all at once): it builds a new socket for each attempt, and on any error, close or silence it drops the
socket and builds another after a random delay (``plan``), for as long as the user is signed in. A
heartbeat (``liveness``) must be answered within a few seconds, else the socket counts as dead: a socket
that a proxy black-holes or a server stops writing to would otherwise look live forever. Realtime does
not replay what was missed, so after **every** successful join of ``user:<me>`` the data layer
back-fills (by ``rev``); what a push loses while the link looks fine, its consistency probe repairs.

Pushes are taken off the socket before the library parses them (``frames.FrameTap``, offered to
``_broadcast_taker``) and handled in slices by ``inbox.PushInbox``, so a burst never holds the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from desktop_chat.models import ChangeEvent, ChatId, UserId
from desktop_chat.realtime.events import Push, change_time, push_from
from desktop_chat.realtime.inbox import PushInbox
from desktop_chat.realtime.plan import (
    PRESENCE_CROWD,
    LinkTiming,
    TrackBudget,
    Watchdog,
    deferred_delay,
    reconnect_delay,
)
from desktop_chat.realtime.state import ConnectionState
from desktop_chat.realtime.topics import chat_topic, typing_topic, user_topic

if TYPE_CHECKING:
    # The realtime library (and ``frames``, which extends it) is imported where a socket is made or
    # a join's status is read: the link comes up after the first paint, which must not wait for it.
    from realtime import AsyncRealtimeChannel, AsyncRealtimeClient, RealtimeSubscribeStates

    from desktop_chat.realtime.liveness import Heartbeat

log = logging.getLogger(__name__)

TYPING_EVENT = "typing"
TYPING_TTL = 6.0  # seconds a "typing" signal lasts unless repeated
CLOSE_WAIT = 2.0  # seconds a closing socket may take before it is left to itself
OPEN_JOIN_WAIT = 2.0  # seconds the back-fill after a (re)connect waits for the open chats' joins
_REFUSED = ("Unauthorized", "permission")  # Realtime's words when a topic's policies say no


class SupabaseClientLike(Protocol):
    """What a new socket is made from: the official ``supabase.AsyncClient``'s address and key."""

    @property
    def realtime_url(self) -> Any: ...

    @property
    def supabase_key(self) -> str: ...


TAP_BROADCASTS = True
"""Whether new sockets read broadcasts through ``frames.FrameTap`` (read when a socket is made: a benchmark
turns it off to compare with the library's own reading)."""


def socket_factory(client: SupabaseClientLike) -> Callable[[], AsyncRealtimeClient]:
    """New official Realtime clients for the project of ``client``, one per connection attempt.

    One client object per socket: a socket being closed (which on a dead link can take a while) then never
    touches the next one's state, and the library's own reconnect stays off. The client is
    ``TappedRealtimeClient``: the manager takes its topics' broadcasts before the library parses them.
    """
    url = str(client.realtime_url)
    key = client.supabase_key

    def new_socket() -> AsyncRealtimeClient:
        from realtime import AsyncRealtimeClient  # imported after the first paint (see the top)

        from desktop_chat.realtime.frames import TappedRealtimeClient

        if TAP_BROADCASTS:
            return TappedRealtimeClient(url, token=key, auto_reconnect=False)
        return AsyncRealtimeClient(url, token=key, auto_reconnect=False)

    return new_socket


ChangesListener = Callable[[Sequence[ChangeEvent]], None]
PushParser = Callable[[Push], ChangeEvent | None]
StateListener = Callable[[ConnectionState], None]
Backfill = Callable[[], Awaitable[None]]
UsersListener = Callable[[ChatId, frozenset[UserId]], None]
ChatListener = Callable[[ChatId], None]


@dataclass
class _ChatTopics:
    """The two channels of one chat, and what they told."""

    chat: AsyncRealtimeChannel
    typing_channel: AsyncRealtimeChannel
    typing: dict[UserId, float] = field(default_factory=dict)  # user -> expiry (monotonic)
    online: frozenset[UserId] = frozenset()
    synced: asyncio.Event = field(default_factory=asyncio.Event)  # the first presence state came


class RealtimeManager:
    """Keeps the user's realtime link up and turns pushes into change events.

    Args:
        new_socket: Makes a fresh official Realtime client (``socket_factory``).
        events: The broadcast events to listen to on ``user:<me>`` and ``chat:<id>`` (the change-type
            table's); others are ignored.
        parse: Turns one push into a change event (None: not one to apply).
        on_changes: Called with each batch of change events, in arrival order.
        on_state: Called when the link state changes.
        backfill: Awaited after every successful join of ``user:<me>``, while the chats' topics are joined.
        on_typing, on_presence: Called with the users typing / online in a chat (an empty set when its
            topics are left).
        on_lag: Called with each new message's delay from its write to its arrival, in seconds.
        on_chat_lost: Called when the server refuses or closes a chat's topic for lack of rights.
        on_chat_joined: Called when a chat's topics were joined after the link's back-fill began (what the
            chat got before the join was not pushed, and that back-fill may have missed it).
        on_join: Called with each topic a join is sent for (metrics; the benchmark counts them).
        on_silence: Called when the link is given up because its heartbeat went unanswered: the path to
            the server may be black-holed, for the REST connections too.
        timing: Heartbeat, reconnect and join timing (``plan.LinkTiming``).
        rng: Where the random delays come from.
    """

    def __init__(
        self,
        new_socket: Callable[[], AsyncRealtimeClient],
        events: Sequence[str],
        parse: PushParser,
        on_changes: ChangesListener,
        on_state: StateListener,
        backfill: Backfill,
        *,
        on_typing: UsersListener | None = None,
        on_presence: UsersListener | None = None,
        on_lag: Callable[[float], None] | None = None,
        on_chat_lost: ChatListener | None = None,
        on_chat_joined: ChatListener | None = None,
        on_join: Callable[[str], None] | None = None,
        on_silence: Callable[[], None] | None = None,
        timing: LinkTiming | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._new_socket = new_socket
        self._events = tuple(events)
        self._parse = parse
        self._on_changes = on_changes
        self._on_state = on_state
        self._backfill = backfill
        self._on_typing = on_typing
        self._on_presence = on_presence
        self._on_lag = on_lag
        self._on_chat_lost = on_chat_lost
        self._on_chat_joined = on_chat_joined
        self._on_join = on_join
        self._on_silence = on_silence
        self.timing = timing or LinkTiming()
        self._rng = rng or random.Random()
        self._state = ConnectionState.OFFLINE
        self._user_id: UserId | None = None
        self._token: str | None = None
        self._socket: AsyncRealtimeClient | None = None
        self._heartbeat: Heartbeat | None = None
        self._generation = 0  # bumped at every teardown: callbacks of older sockets are ignored
        self._broken = asyncio.Event()
        self._broken_reason = ""
        self._wake = asyncio.Event()
        self._waiting_backoff = False
        self._supervisor: asyncio.Task[None] | None = None
        self._link_tasks: set[asyncio.Task[Any]] = set()
        self._closing: set[asyncio.Task[None]] = set()
        self._chats: dict[ChatId, _ChatTopics] = {}
        self._wanted: tuple[tuple[ChatId, ...], tuple[ChatId, ...]] = ((), ())
        self._wanted_changed = asyncio.Event()
        self._retry_at: dict[ChatId, float] = {}
        self._deferred_until = 0.0
        self._open_joined = asyncio.Event()  # the open chats' first joins on this socket are done
        self._backfill_begun = False  # the link's back-fill on this socket has begun
        self._presence_until = 0.0  # after a reconnect, tracks are spread until then
        self._budget = TrackBudget()
        self.watchdog = Watchdog(floor=self.timing.heartbeat_timeout)
        self.reconnects = 0
        self.joins = 0
        self.heartbeats = 0
        self.heartbeat_misses = 0
        self.token_updates = 0  # new tokens handed to a live socket
        self.last_push_at: float | None = None
        self._inbox: PushInbox[Push] = PushInbox(self._handle_push)

    @property
    def state(self) -> ConnectionState:
        return self._state

    @property
    def topics(self) -> frozenset[str]:
        """The chat topics held now (joined or joining), ``user:<me>`` aside."""
        names: set[str] = set()
        for chat_id in self._chats:
            names.update((chat_topic(chat_id), typing_topic(chat_id)))
        return frozenset(names)

    def holds(self, chat_id: ChatId) -> bool:
        """Whether the link is live with the chat's topic joined: its every change is pushed now."""
        topics = self._chats.get(chat_id)
        return self._state is ConnectionState.LIVE and topics is not None and topics.chat.is_joined

    # --- lifecycle ---------------------------------------------------------------------------------
    async def start(self, user_id: UserId, access_token: str) -> None:
        """Begin supervising the link for ``user_id`` (returns at once; the link comes up later)."""
        await self.stop()
        self._user_id = user_id
        self._token = access_token
        self._set_state(ConnectionState.CONNECTING)
        self._supervisor = asyncio.get_running_loop().create_task(self._supervise(), name="realtime-supervisor")

    async def stop(self) -> None:
        task, self._supervisor = self._supervisor, None
        if task is not None:
            # Cancel until it is done: a library awaited inside the supervisor may swallow one
            # cancellation (seen with Python 3.11's asyncio.timeout), and stop() must never hang.
            while not task.done():
                task.cancel()
                await asyncio.wait({task}, timeout=1.0)
            with contextlib.suppress(asyncio.CancelledError, Exception):
                task.result()
        await self._teardown(dead=False)
        await self._inbox.close()
        if self._closing:
            await asyncio.wait(self._closing, timeout=CLOSE_WAIT * 2)
        self._retry_at.clear()
        self._user_id = None
        self._set_state(ConnectionState.OFFLINE)

    def update_token(self, access_token: str) -> None:
        """A refreshed access token: hand it to the joined channels (Realtime re-checks their rights with
        it, and closes a channel whose rights are gone); rejoins and new sockets use it too."""
        if access_token == self._token:
            return
        self._token = access_token
        socket = self._socket
        if socket is not None and self._state is ConnectionState.LIVE:
            self.token_updates += 1
            self._spawn(lambda: socket.set_auth(access_token), "realtime-token")

    def nudge(self) -> None:
        """The server answered another request: cut a long reconnect backoff short."""
        if self._waiting_backoff:
            self._wake.set()

    # --- supervision -------------------------------------------------------------------------------
    async def _supervise(self) -> None:
        failures = 0
        wait = 0.0  # the first attempt after sign-in goes at once
        while True:
            if wait > 0:
                await self._sleep(wait, failures)
            self._broken.clear()
            reconnecting = self._state is not ConnectionState.CONNECTING
            try:
                await self._connect()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                failures += 1
                log.info("Realtime is not available (%s: %s); retrying", type(error).__name__, error)
                await self._teardown(dead=True)
                self._set_state(ConnectionState.RECONNECTING)
                wait = reconnect_delay(failures, self.timing, self._rng)
                continue
            failures = 0
            self._set_state(ConnectionState.LIVE)
            loop = asyncio.get_running_loop()
            self._deferred_until = loop.time() + (deferred_delay(self.timing, self._rng) if reconnecting else 0.0)
            self._presence_until = loop.time() + (self.timing.presence_spread if reconnecting else 0.0)
            # The open chats' topics are joined first, so that the back-fill that follows covers what they
            # got before; a chat joined after the back-fill began (late, deferred, opened later) asks for
            # one of its own (``on_chat_joined``). A slow join holds the back-fill up for OPEN_JOIN_WAIT at
            # most.
            self._open_joined.clear()
            self._backfill_begun = False
            self._link_task(self._reconcile(), "realtime-topics")
            self._link_task(self._watch_heartbeat(), "realtime-heartbeat")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(OPEN_JOIN_WAIT):
                    await self._open_joined.wait()
            self._backfill_begun = True
            await self._run_backfill()
            await self._broken.wait()
            self.reconnects += 1
            log.info("Realtime link lost (%s); reconnecting", self._broken_reason)
            await self._teardown(dead=True)
            self._set_state(ConnectionState.RECONNECTING)
            wait = reconnect_delay(0, self.timing, self._rng)

    async def _sleep(self, delay: float, failures: int) -> None:
        """Wait out a reconnect delay. A nudge (the server answers REST again) ends a backoff after failed
        attempts early, but never the first spread after a lost link: that spread is what keeps every
        client that lost its link at the same moment from joining in the same second."""
        self._wake.clear()
        self._waiting_backoff = failures > 0
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()
        finally:
            self._waiting_backoff = False

    def _break(self, reason: str, generation: int) -> None:
        if generation == self._generation and not self._broken.is_set():
            self._broken_reason = reason
            self._broken.set()

    async def _run_backfill(self) -> None:
        try:
            await self._backfill()
        except asyncio.CancelledError:
            raise
        except Exception as error:  # the server may be unreachable too; the probe tries again
            log.info("Back-fill did not complete: %s", error)

    async def _connect(self) -> None:
        if self._user_id is None or self._token is None:
            raise RuntimeError("not signed in")
        from realtime import RealtimeSubscribeStates  # imported after the first paint (see the top)

        from desktop_chat.realtime.frames import TappedRealtimeClient
        from desktop_chat.realtime.liveness import Heartbeat

        socket = self._new_socket()
        self._socket = socket
        generation = self._generation
        if isinstance(socket, TappedRealtimeClient):
            socket.tap(self._broadcast_taker(generation))
        await socket.set_auth(self._token)
        await socket.connect()
        self._heartbeat = Heartbeat(socket)
        topic = user_topic(self._user_id)
        channel = socket.channel(topic, _private(presence_key=None))
        for event in self._events:
            channel.on_broadcast(event, self._broadcast_listener(topic, generation))
        status, error = await self._subscribe(
            channel, topic, lambda status, _error: self._break(f"{topic} {status.value}", generation)
        )
        if status is not RealtimeSubscribeStates.SUBSCRIBED:
            raise ConnectionError(f"joining {topic} ended with {status.value}: {error}")

    async def _teardown(self, *, dead: bool) -> None:
        self._generation += 1
        tasks = [task for task in self._link_tasks if task is not asyncio.current_task()]
        self._link_tasks.clear()
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=CLOSE_WAIT)
        for chat_id in list(self._chats):
            self._forget_chat(chat_id)
        socket, self._socket = self._socket, None
        self._heartbeat = None
        if socket is not None:
            closing = asyncio.get_running_loop().create_task(_close_socket(socket, dead=dead), name="realtime-close")
            self._closing.add(closing)
            closing.add_done_callback(self._closing.discard)

    def _set_state(self, state: ConnectionState) -> None:
        if state is not self._state:
            self._state = state
            self._on_state(state)

    def _link_task(self, coroutine: Coroutine[Any, Any, Any], name: str) -> None:
        """Run ``coroutine`` for as long as this socket lives (cancelled at its teardown)."""
        task = asyncio.get_running_loop().create_task(coroutine, name=name)
        self._link_tasks.add(task)
        task.add_done_callback(self._link_tasks.discard)

    def _spawn(self, work: Callable[[], Coroutine[Any, Any, Any]], name: str) -> None:
        """Run ``work()`` for this socket, and ignore its failure (a callback's follow-up work)."""

        async def contained() -> None:
            try:
                await work()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.info("Realtime %s failed: %s", name, type(error).__name__)

        self._link_task(contained(), name)

    async def _subscribe(
        self,
        channel: AsyncRealtimeChannel,
        topic: str,
        on_trouble: Callable[[RealtimeSubscribeStates, Exception | None], None],
    ) -> tuple[RealtimeSubscribeStates, Exception | None]:
        """Join ``channel``; its first status is returned, later ones other than SUBSCRIBED go to
        ``on_trouble`` (the library's callback runs inside its receive loop: nothing here may raise)."""
        from realtime import RealtimeSubscribeStates  # imported after the first paint (see the top)

        outcome: asyncio.Future[tuple[RealtimeSubscribeStates, Exception | None]] = (
            asyncio.get_running_loop().create_future()
        )

        def on_status(status: RealtimeSubscribeStates, error: Exception | None) -> None:
            if not outcome.done():
                outcome.set_result((status, error))
            elif status is not RealtimeSubscribeStates.SUBSCRIBED:
                try:
                    on_trouble(status, error)
                except Exception:  # never into the client's receive loop
                    log.exception("realtime status handler failed")

        self.joins += 1
        if self._on_join is not None:
            self._on_join(topic)
        try:
            async with asyncio.timeout(self.timing.subscribe_timeout):
                await channel.subscribe(on_status)
                return await outcome
        except TimeoutError:
            return RealtimeSubscribeStates.TIMED_OUT, None

    # --- the heartbeat watchdog --------------------------------------------------------------------
    async def _watch_heartbeat(self) -> None:
        generation = self._generation
        heartbeat = self._heartbeat
        timing = self.timing
        if heartbeat is None:
            return
        watchdog = self.watchdog
        while True:
            await asyncio.sleep(timing.heartbeat_interval)
            self.heartbeats += 1
            patience = watchdog.timeout()
            rtt = await heartbeat.round_trip(patience)
            if rtt is None:
                self.heartbeat_misses += 1
                watchdog.silent()
                self._break(f"no heartbeat reply within {patience:.1f} s", generation)
                if self._on_silence is not None and generation == self._generation:
                    try:
                        self._on_silence()
                    except Exception:  # the link is rebuilt whatever the listener does
                        log.exception("realtime silence handler failed")
                return
            watchdog.answered(rtt)

    # --- pushes ------------------------------------------------------------------------------------
    def _broadcast_listener(self, topic: str, generation: int) -> Callable[[Any], None]:
        def listener(message: Any) -> None:
            if generation != self._generation or not isinstance(message, Mapping):
                return
            try:
                self._on_push(topic, message)
            except Exception:  # never into the client's receive loop: one bad push must not stop the link
                log.exception("realtime push handler failed")

        return listener

    def _broadcast_taker(self, generation: int) -> Callable[[str, Mapping[str, Any]], bool]:
        """What the socket's ``FrameTap`` offers each broadcast to: the pushes of the topics listened to here
        (``user:<me>``, ``chat:<id>``) with one of our events are taken, exactly the ones the library would
        have passed to ``_broadcast_listener``; the rest (typing, others) is left to the library."""
        events = frozenset(event.lower() for event in self._events)

        def take(topic: str, body: Mapping[str, Any]) -> bool:
            if generation != self._generation or str(body.get("event", "")).lower() not in events:
                return False
            if not self._listens_on(topic):
                return False
            try:
                self._on_push(topic, body)
            except Exception:  # never into the client's receive loop: one bad push must not stop the link
                log.exception("realtime push handler failed")
            return True

        return take

    def _listens_on(self, topic: str) -> bool:
        if self._user_id is not None and topic == user_topic(self._user_id):
            return True
        return any(topic == chat_topic(chat_id) for chat_id in self._chats)

    def _on_push(self, topic: str, message: Mapping[str, object]) -> None:
        push = push_from(topic, message)
        if push is None:
            return
        self.last_push_at = time.time()
        self._inbox.put(push)  # handled off the library's receive loop, in slices (see inbox.py)

    def _handle_push(self, push: Push) -> None:
        now = time.time()
        if self._on_lag is not None:
            written = change_time(push)
            if written is not None:
                self._on_lag(max(now - written, 0.0))
        event = self._parse(push)
        if event is not None:
            self._on_changes([event])

    # --- chat topics -------------------------------------------------------------------------------
    def watch_chats(self, open_chats: Sequence[ChatId], others: Sequence[ChatId] = ()) -> None:
        """Hold the topics of exactly these chats: ``open_chats`` first (joined at once, even after a
        reconnect), then ``others`` (after a reconnect only once the deferral is over). Topics of chats
        no longer named are left."""
        opened = tuple(dict.fromkeys(open_chats))
        rest = tuple(chat for chat in dict.fromkeys(others) if chat not in opened)
        if (opened, rest) != self._wanted:
            self._wanted = (opened, rest)
            self._wanted_changed.set()

    async def _reconcile(self) -> None:
        """Join and leave chat topics as the wanted set changes, the deferral ends and retries fall due."""
        loop = asyncio.get_running_loop()
        while True:
            self._wanted_changed.clear()
            opened, others = self._wanted
            wanted = {*opened, *others}
            for chat_id in [chat_id for chat_id in self._chats if chat_id not in wanted]:
                await self._leave_chat(chat_id)
            now = loop.time()
            due = [c for c in opened if c not in self._chats and self._retry_at.get(c, 0.0) <= now]
            later = [c for c in others if c not in self._chats and self._retry_at.get(c, 0.0) <= now]
            if now >= self._deferred_until:
                due += later
                later = []
            if due:
                joined = await asyncio.gather(*(self._join_chat(chat_id) for chat_id in due))
                if self._on_chat_joined is not None and self._backfill_begun:
                    for chat_id, ok in zip(due, joined, strict=True):
                        if ok:
                            self._on_chat_joined(chat_id)
                self._open_joined.set()
                continue  # joining took time: look again before sleeping
            self._open_joined.set()
            wakes = [self._deferred_until] if later else []
            wakes += [at for chat_id, at in self._retry_at.items() if chat_id in wanted and at > now]
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(min(wakes) if wakes else None):
                    await self._wanted_changed.wait()

    async def _join_chat(self, chat_id: ChatId) -> bool:
        """Join a chat's two topics and track presence on the first; True when both are joined. Never
        raises: a chat whose topics fail is left and tried again later, the link goes on."""
        try:
            return await self._try_join_chat(chat_id)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.info("Joining chat %s's topics failed: %s", chat_id, type(error).__name__)
            self._retry_at[chat_id] = asyncio.get_running_loop().time() + self.timing.chat_retry
            if chat_id in self._chats:
                self._spawn(lambda: self._leave_chat(chat_id), "realtime-leave")
            return False

    async def _try_join_chat(self, chat_id: ChatId) -> bool:
        socket = self._socket
        me = self._user_id
        if socket is None or me is None or chat_id in self._chats:
            return False
        generation = self._generation
        topic, typing = chat_topic(chat_id), typing_topic(chat_id)
        topics = _ChatTopics(
            chat=socket.channel(topic, _private(presence_key=str(me))),
            typing_channel=socket.channel(typing, _private(presence_key=None)),
        )
        for event in self._events:
            topics.chat.on_broadcast(event, self._broadcast_listener(topic, generation))
        topics.chat.on_presence_sync(lambda: self._on_presence_sync(chat_id, topics, generation))
        topics.typing_channel.on_broadcast(
            TYPING_EVENT, lambda payload: self._on_typing_push(chat_id, topics, payload, generation)
        )
        self._chats[chat_id] = topics

        from realtime import RealtimeSubscribeStates  # imported after the first paint (see the top)

        def trouble(name: str) -> Callable[[RealtimeSubscribeStates, Exception | None], None]:
            return lambda status, error: self._on_chat_trouble(chat_id, topics, name, status, error, generation)

        (status, error), (typing_status, typing_error) = await asyncio.gather(
            self._subscribe(topics.chat, topic, trouble(topic)),
            self._subscribe(topics.typing_channel, typing, trouble(typing)),
        )
        if generation != self._generation or self._chats.get(chat_id) is not topics:
            return False
        if status is not RealtimeSubscribeStates.SUBSCRIBED:
            self._on_chat_trouble(chat_id, topics, topic, status, error, generation)
            return False
        if typing_status is not RealtimeSubscribeStates.SUBSCRIBED:
            self._on_chat_trouble(chat_id, topics, typing, typing_status, typing_error, generation)
            return False
        self._spawn(lambda: self._track(chat_id, topics, generation), "realtime-track")
        return True

    async def _track(self, chat_id: ChatId, topics: _ChatTopics, generation: int) -> None:
        """Show this user online in the chat, within the presence budget (``plan``): spread after a
        reconnect, at most a few tracks per 30 s, and not in a crowd."""
        loop = asyncio.get_running_loop()
        spread = self._presence_until - loop.time()
        if spread > 0:
            await asyncio.sleep(self._rng.uniform(0.0, spread))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.timing.subscribe_timeout):
                await topics.synced.wait()  # the presence state tells how many are there already
        # Sleeps exactly until the budget has room: waiting on time, not on a state another task changes.
        while (wait := self._budget.wait(loop.time())) > 0:  # noqa: ASYNC110
            await asyncio.sleep(wait)
        if generation != self._generation or self._chats.get(chat_id) is not topics or self._user_id is None:
            return
        if len(topics.online - {self._user_id}) >= PRESENCE_CROWD:
            return  # a crowd shows as online without us; our track would reach every one of them
        self._budget.spend(loop.time())
        await topics.chat.track({"user_id": str(self._user_id)})

    def _on_chat_trouble(
        self,
        chat_id: ChatId,
        topics: _ChatTopics,
        topic: str,
        status: RealtimeSubscribeStates,
        error: Exception | None,
        generation: int,
    ) -> None:
        """A chat topic was refused, timed out, errored or closed: leave both of the chat's topics. For lack
        of rights, tell the data layer (the user may have been removed); else try again a little later."""
        if generation != self._generation or self._chats.get(chat_id) is not topics:
            return
        if self._socket is None or not self._socket.is_connected:
            return  # the socket itself went: the link is rebuilt as a whole
        refused = error is not None and any(word in str(error) for word in _REFUSED)
        log.info("Realtime topic %s: %s%s", topic, status.value, " (no rights)" if refused else "")
        delay = self.timing.chat_retry * (12 if refused else 1)
        self._retry_at[chat_id] = asyncio.get_running_loop().time() + delay
        self._spawn(lambda: self._leave_chat(chat_id), "realtime-leave")
        self._wanted_changed.set()  # the topics loop plans the retry
        if refused and self._on_chat_lost is not None:
            self._on_chat_lost(chat_id)

    async def _leave_chat(self, chat_id: ChatId) -> None:
        topics = self._forget_chat(chat_id)
        socket = self._socket
        if topics is None or socket is None:
            return
        for channel in (topics.chat, topics.typing_channel):
            with contextlib.suppress(Exception):
                await socket.remove_channel(channel)

    def _forget_chat(self, chat_id: ChatId) -> _ChatTopics | None:
        """Stop holding a chat's topics: whoever listened hears that nobody types or is online there."""
        topics = self._chats.pop(chat_id, None)
        if topics is None:
            return None
        if topics.typing and self._on_typing is not None:
            self._on_typing(chat_id, frozenset())
        if topics.online and self._on_presence is not None:
            self._on_presence(chat_id, frozenset())
        return topics

    # --- typing and presence -----------------------------------------------------------------------
    async def send_typing(self, chat_id: ChatId, typing: bool) -> None:
        topics = self._chats.get(chat_id)
        if topics is None or self._user_id is None or not topics.typing_channel.is_joined:
            return
        with contextlib.suppress(Exception):
            await topics.typing_channel.send_broadcast(TYPING_EVENT, {"user_id": str(self._user_id), "typing": typing})

    def typing_users(self, chat_id: ChatId) -> frozenset[UserId]:
        topics = self._chats.get(chat_id)
        if topics is None:
            return frozenset()
        now = time.monotonic()
        return frozenset(user for user, expiry in topics.typing.items() if expiry > now)

    def online_users(self, chat_id: ChatId) -> frozenset[UserId]:
        topics = self._chats.get(chat_id)
        return topics.online if topics is not None else frozenset()

    def _on_typing_push(self, chat_id: ChatId, topics: _ChatTopics, payload: Any, generation: int) -> None:
        if generation != self._generation or self._chats.get(chat_id) is not topics:
            return
        body = payload.get("payload") if isinstance(payload, Mapping) else None
        if not isinstance(body, Mapping):
            return
        try:
            user = UserId(uuid.UUID(str(body.get("user_id"))))
        except ValueError:
            return
        if body.get("typing"):
            topics.typing[user] = time.monotonic() + TYPING_TTL
        else:
            topics.typing.pop(user, None)
        if self._on_typing is not None:
            self._on_typing(chat_id, self.typing_users(chat_id))

    def _on_presence_sync(self, chat_id: ChatId, topics: _ChatTopics, generation: int) -> None:
        if generation != self._generation or self._chats.get(chat_id) is not topics:
            return
        users: set[UserId] = set()
        for metas in topics.chat.presence_state().values():
            for meta in metas:
                fields: dict[str, Any] = dict(meta)  # the tracked fields sit beside presence_ref
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    users.add(UserId(uuid.UUID(str(fields["user_id"]))))
        topics.online = frozenset(users)
        topics.synced.set()
        if self._on_presence is not None:
            self._on_presence(chat_id, topics.online)


def _private(*, presence_key: str | None) -> Any:
    """A private channel's options; presence only where a key is given (``chat:<id>``)."""
    return {
        "config": {
            "private": True,
            "broadcast": {"ack": False, "self": False},
            "presence": {"key": presence_key or "", "enabled": presence_key is not None},
        }
    }


async def _close_socket(socket: AsyncRealtimeClient, *, dead: bool) -> None:
    """Close a socket that is no longer used.

    A live one closes with the websocket's closing handshake, for up to ``CLOSE_WAIT``. A dead one
    (black-holed, deaf) would wait out that handshake (websockets' ``close_timeout``, 10 s) for a peer that
    never answers, so its transport is aborted at once, as is any socket whose handshake takes too long.
    The official client keeps its websocket in a private attribute; without it, the handshake's own
    timeout ends the wait.
    """
    transport = getattr(getattr(socket, "_ws_connection", None), "transport", None)
    if dead and transport is not None:
        transport.abort()
    try:
        async with asyncio.timeout(CLOSE_WAIT):
            await socket.close()
    except Exception:  # a timeout, or whatever a broken socket raises on the way out
        if transport is not None:
            transport.abort()
