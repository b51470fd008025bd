"""``SignedIn``: everything that exists while one user is signed in, built together and closed together.

The composition root builds one after each sign-in (``open_data_layer``'s ``open_signed_in``) and the
store closes it at sign-out, when the server ends the session, or at shutdown. Everything per user lives
here, so nothing of one user survives into the next one's session::

    SignedIn(profile)
    ├── tasks     TaskGroup    background work (warming, refreshes, write-through, back-fill)
    ├── sender    Sender       the one owner of this user's pending messages (outbox, queues, lifecycle)
    ├── reads     Reads        cached reads, single-flight, stale-while-revalidate
    ├── realtime  RealtimeManager (optional) ``user:<me>`` and the topics of the open and recent chats
    ├── live      LiveSync     the chat list and timelines, fed by realtime, back-fill and the sender
    ├── probe     ConsistencyProbe (with realtime) repairs what a push lost, every few seconds
    ├── edits     Edits        edit and delete messages, mark read
    ├── chats     ChatAdmin    create, rename, delete chats; members
    ├── reaction_sender ReactionSender the user's reaction toggles, from the outbox to the server
    ├── reactions Reactions    what the open chats show under their messages (counts, who, own toggles)
    └── receipts  Receipts     the open chats' read positions (ticks, "Seen by N")

What outlives a user belongs to the data layer (backend, cache, outbox, status, presence listeners).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence

from desktop_chat.backend.auth import SessionInfo
from desktop_chat.backend.client import SupabaseBackend
from desktop_chat.backend.session_state import SessionState
from desktop_chat.cache import TieredCache
from desktop_chat.config import Settings
from desktop_chat.dal.calls import BackendCalls, TimedReacting, TimedSending
from desktop_chat.dal.changes import EVENTS, parse_change
from desktop_chat.dal.chat_admin import ChatAdmin
from desktop_chat.dal.edits import Edits
from desktop_chat.dal.live import FRAME_INTERVAL, LiveSync
from desktop_chat.dal.presence import Presence
from desktop_chat.dal.probe import PROBE_INTERVAL, ConsistencyProbe
from desktop_chat.dal.reactions import Reactions
from desktop_chat.dal.reads import CHAT_PAGE, Reads
from desktop_chat.dal.receipts import Receipts
from desktop_chat.dal.status import StatusBoard
from desktop_chat.dal.tasks import TaskGroup
from desktop_chat.errors import BackendUnavailable, Rejected
from desktop_chat.models import ChangeEvent, ChatId, Profile
from desktop_chat.realtime.manager import RealtimeManager, socket_factory
from desktop_chat.realtime.plan import LinkTiming
from desktop_chat.realtime.state import ConnectionState
from desktop_chat.realtime.topics import topic_kind
from desktop_chat.sync.lifecycle import PendingEvent
from desktop_chat.sync.outbox import Outbox
from desktop_chat.sync.reactions import ReactionSender
from desktop_chat.sync.sender import Sender
from desktop_chat.telemetry.metrics import REALTIME_JOINS, REALTIME_LAG, MetricsRegistry

log = logging.getLogger(__name__)

WARM_CHATS = 5
# Seconds closing waits for the live changes already received to reach the cache.
CLOSE_APPLY_TIMEOUT = 2.0


class SignedIn:
    """One user's session in the data layer (see the module docstring).

    Args:
        profile: Who signed in.
        settings: TTLs, caps and timeouts.
        backend, cache, outbox, metrics, status, calls, presence: The data layer's long-lived parts.
        realtime: Run the realtime link and the consistency probe (tests of the read path turn them off).
        frame_interval: How long live changes are collected before the views hear of them.
        link_timing: The realtime link's heartbeat and reconnect timing (the product's by default).
        probe_interval: The range the consistency probe's pause is drawn from, in seconds.
        chat_page: Chat-list rows per page.
    """

    def __init__(
        self,
        profile: Profile,
        *,
        settings: Settings,
        backend: SupabaseBackend,
        cache: TieredCache,
        outbox: Outbox,
        metrics: MetricsRegistry,
        status: StatusBoard,
        calls: BackendCalls,
        presence: Presence,
        realtime: bool = True,
        frame_interval: float = FRAME_INTERVAL,
        link_timing: LinkTiming | None = None,
        probe_interval: tuple[float, float] | None = None,
        chat_page: int = CHAT_PAGE,
    ) -> None:
        me = profile.id
        self.profile = profile
        self._backend = backend
        self._status = status
        self._calls = calls
        self._presence = presence
        self.tasks = TaskGroup()
        self.sender = Sender(outbox, TimedSending(backend, calls), backend.server, me)
        self.reads = Reads(me, settings, backend, cache, calls, self.tasks, chat_page=chat_page)
        self.realtime: RealtimeManager | None = None
        if realtime:
            self.realtime = RealtimeManager(
                # The official client is built when the session is confirmed, behind the first paint;
                # the link is started only then, so the socket factory asks for it at the first socket.
                lambda: socket_factory(backend.client)(),
                EVENTS,
                parse_change,
                on_changes=self._deliver,
                on_state=self._on_link_state,
                backfill=self._backfill,
                on_typing=presence.typing_changed,
                on_presence=presence.presence_changed,
                on_lag=metrics.histogram(REALTIME_LAG).observe,
                on_chat_lost=self._on_chat_lost,
                on_chat_joined=self._on_chat_joined,
                on_join=lambda topic: metrics.counter(REALTIME_JOINS, topic=topic_kind(topic)).inc(),
                on_silence=self._on_silence,
                timing=link_timing,
            )
        self.live = LiveSync(
            me,
            cache=cache,
            reads=self.reads,
            tasks=self.tasks,
            pending=self.sender,
            on_incoming=presence.incoming,
            watch_chats=self.realtime.watch_chats if self.realtime is not None else None,
            holds_chat=self.realtime.holds if self.realtime is not None else None,
            frame_interval=frame_interval,
            chat_page=chat_page,
        )
        self.probe: ConsistencyProbe | None = None
        if realtime:
            self.probe = ConsistencyProbe(self._check_consistency, interval=probe_interval or PROBE_INTERVAL)
        self.edits = Edits(me, backend, calls, self.live)
        self.chats = ChatAdmin(me, backend, cache, calls, self.live)
        self.reaction_sender = ReactionSender(outbox, TimedReacting(backend, calls), backend.server, me)
        self.reactions = Reactions(profile, backend, calls, self.tasks, self.reaction_sender, presence)
        self.receipts = Receipts(backend, calls, self.tasks, presence)
        self._unsubscribers: list[Callable[[], None]] = []
        self._reads_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Resume the outbox, bring the realtime link up and warm the cache in the background."""
        self._presence.reset(self.profile.id)
        self._unsubscribers += [
            self.sender.subscribe(self.live.on_pending),
            self.sender.subscribe(self._on_pending),
            self._calls.subscribe_reached(self._on_reached),
            self._backend.subscribe_session_state(self.session_state_changed),
        ]
        session = self._backend.session
        if session is None:
            # Started from the saved session, not confirmed yet (or the server is away): show the cache,
            # hold the sends, and let the auth session confirm itself in the background (see
            # ``session_renewed``).
            self.sender.pause()
            self.reaction_sender.pause()
            self.session_state_changed(self._backend.auth.state)
        await self.sender.start()
        await self.reaction_sender.start()
        self._status.update(outbox_depth=self.sender.depth)
        if self.realtime is not None and session is not None:
            await self.realtime.start(self.profile.id, session.access_token)
        if self.probe is not None:
            self.probe.start()
        self.tasks.spawn(self._warm(), "warm-cache")

    async def close(self) -> None:
        """Stop everything of this user's. The outbox keeps unsent messages for the next start."""
        for unsubscribe in self._unsubscribers:
            unsubscribe()
        self._unsubscribers.clear()
        if self.probe is not None:
            await self.probe.stop()
        if self.realtime is not None:
            await self.realtime.stop()
        # Changes that arrived before the link stopped (held for the frame, or being applied) go to the
        # cache before the tasks are cancelled; bounded, so a stuck cache cannot hold up the quit.
        try:
            await asyncio.wait_for(self.live.apply_held(), CLOSE_APPLY_TIMEOUT)
        except TimeoutError:
            log.warning(
                "Live changes received just before closing were not all saved (took over %g s)", CLOSE_APPLY_TIMEOUT
            )
        self.reactions.close()
        await self.reaction_sender.close()
        await self.sender.close()
        await self.tasks.close()
        await self.live.stop()
        self._presence.reset(None)

    def session_state_changed(self, state: SessionState) -> None:
        """What the status says while the saved session is not confirmed (confirmed: ``session_renewed``)."""
        if state is SessionState.RESTORING:
            self._status.update(connection=ConnectionState.CONNECTING, detail="")
        elif state is SessionState.OFFLINE:
            self._status.update(
                connection=ConnectionState.OFFLINE,
                backend_reachable=False,
                detail=f"Cannot reach {self._backend.server}; showing what is saved on this computer.",
            )

    def session_renewed(self, session: SessionInfo) -> None:
        """The auth session was confirmed (after an offline start) or refreshed."""
        self.sender.resume()
        self.reaction_sender.resume()
        self._calls.reached(True)
        if self.realtime is not None:
            if self.realtime.state is ConnectionState.OFFLINE:
                # The session was confirmed after an offline start: the link comes up now.
                self.tasks.spawn(self.realtime.start(self.profile.id, session.access_token), "realtime-start")
            else:
                self.realtime.update_token(session.access_token)

    async def _warm(self) -> None:
        """After sign-in: the recent list, then the newest page and the members of the top chats, in the
        background, so that they open at once, and show who said what even when started offline later."""
        chats = await self.live.refresh_chats()
        for summary in chats[:WARM_CHATS]:
            with contextlib.suppress(BackendUnavailable, Rejected):
                await self.reads.message_window(summary.chat.id)
                await self.reads.chat_details(summary.chat.id)

    # --- wiring ------------------------------------------------------------------------------------
    def _deliver(self, events: Sequence[ChangeEvent]) -> None:
        self.live.enqueue(events)
        # Reactions need nothing here: a reaction gives its message a new rev, so the chat's topic pushes
        # the message row with its new counts, and ``Reactions`` reloads who reacted from the timeline.
        self.receipts.on_events(events)

    async def _check_consistency(self) -> int:
        # Chats too big for ``read`` events have their read positions reloaded on every round.
        self.receipts.reload_big()
        return await self.live.check_consistency()

    async def _backfill(self) -> None:
        await self.live.backfill_all()

    def _on_silence(self) -> None:
        # The heartbeat went unanswered: the REST connections may lead into the same black hole. End the
        # calls waiting on them (sends are retried, idempotent) and check for missed changes over a new
        # connection now, without waiting for the socket to come back.
        self._backend.drop_connections()
        if self.probe is not None:
            self.probe.poke()

    def _on_link_state(self, state: ConnectionState) -> None:
        self._status.update(connection=state)
        self.live.link_changed(state is ConnectionState.LIVE)
        if state is ConnectionState.LIVE:
            self.sender.nudge()  # the server is back: send what waits without sitting out backoffs
            self.reaction_sender.nudge()
            self._resend_reads()
            # Pushes missed while the link was down: who reacted and who read may have changed.
            self.reactions.reload()
            self.receipts.reload()

    def _on_chat_lost(self, _chat_id: ChatId) -> None:
        # Realtime refused or closed a chat's topic for lack of rights: the user may have been removed.
        self.tasks.spawn(self.live.reload_chats(), "reload-chats")

    def _on_chat_joined(self, chat_id: ChatId) -> None:
        # What the chat got before its topic was joined was not pushed.
        self.tasks.spawn(self.live.backfill_chat(chat_id), "backfill-on-join")

    def _on_reached(self) -> None:
        self.sender.server_answered()  # a send that found the server away goes now, not after its backoff
        if self.realtime is not None and self.realtime.state is ConnectionState.RECONNECTING:
            self.realtime.nudge()  # REST works again, so the realtime link probably will too
        self._resend_reads()

    def _resend_reads(self) -> None:
        """Read positions kept while offline go out once the server answers again."""
        if self.edits.unsent_reads and (self._reads_task is None or self._reads_task.done()):
            self._reads_task = self.tasks.spawn(self.edits.resend_reads(), "resend-reads")

    def _on_pending(self, _event: PendingEvent) -> None:
        self._status.update(outbox_depth=self.sender.depth)
