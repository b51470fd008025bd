"""``Reactions``: what to show under the open chats' messages, and the user's toggles.

Three sources, folded by the pure ``models.shown_reactions``:

- the counts on the message row (``Message.reactions``): they come with every read, the back-fill, the
  realtime change of the row (a reaction takes the message a new ``rev``) and the cache, so they are
  right wherever the message is, offline too;
- who reacted and whether the user did (``message_reactions()``, one call per window of seqs), loaded
  when a message with reactions is shown and again when a row arrives whose counts differ from what was
  loaded (someone reacted: the realtime ``chat_messages`` change brings it), kept in memory only;
- the user's toggles not delivered yet (``ReactionSender``, in the outbox), shown on top.

A delivered toggle is applied to the loaded "who" at once (``models.reactions_after_toggle``), so the
count does not flicker back while the message's own change is on its way.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial

from desktop_chat.backend.client import SupabaseBackend
from desktop_chat.dal.api import Timeline
from desktop_chat.dal.calls import BackendCalls
from desktop_chat.dal.live_list import RowChange, RowsChanged, RowsInserted, RowsReset, Unsubscribe
from desktop_chat.dal.presence import Presence
from desktop_chat.dal.tasks import TaskGroup
from desktop_chat.errors import DesktopChatError
from desktop_chat.models import (
    ChatId,
    Message,
    MessageId,
    MessageReactions,
    Profile,
    ReactionDetail,
    Reactor,
    ShownReaction,
    reactions_after_toggle,
    shown_reactions,
)
from desktop_chat.sync.reactions import (
    ReactionDelivered,
    ReactionEvent,
    ReactionQueued,
    ReactionRefused,
    ReactionSender,
)

log = logging.getLogger(__name__)

MAX_SEQS = 500  # message_reactions() answers for at most this many seqs a call
NAMES_PER_EMOJI = 10


def counts_of(message: Message) -> list[tuple[str, int]]:
    return [(reaction.emoji, reaction.count) for reaction in message.reactions]


def needs_who(message: Message, detail: MessageReactions | None) -> bool:
    """Whether "who reacted" must be (re)loaded for ``message`` (pure)."""
    if message.seq is None or message.deleted:
        return False
    if detail is None:
        return bool(message.reactions)
    if detail.rev >= (message.rev or 0):
        return False
    loaded = [(item.emoji, item.count) for item in detail.items]
    return loaded != counts_of(message)


def seq_windows(seqs: Sequence[int], span: int = MAX_SEQS) -> list[tuple[int, int]]:
    """Cover ``seqs`` with as few windows of at most ``span`` seqs as a greedy pass finds (pure)."""
    windows: list[tuple[int, int]] = []
    for seq in sorted(set(seqs)):
        if windows and seq - windows[-1][0] < span:
            windows[-1] = (windows[-1][0], seq)
        else:
            windows.append((seq, seq))
    return windows


@dataclass
class _Watched:
    unsubscribe: Unsubscribe
    messages: dict[MessageId, Message] = field(default_factory=dict)
    who: dict[MessageId, MessageReactions] = field(default_factory=dict)
    wanted: set[int] = field(default_factory=set)  # seqs whose "who" should be loaded
    loading: asyncio.Task[None] | None = None


class Reactions:
    """The signed-in user's view of reactions in the open chats (see the module docstring).

    Args:
        me: The signed-in user.
        backend, calls: Where "who reacted" comes from.
        tasks: Runs the loads.
        sender: The user's toggles on their way (its events are heard here).
        presence: Where the changes are reported (the UI's listeners).
    """

    def __init__(
        self,
        me: Profile,
        backend: SupabaseBackend,
        calls: BackendCalls,
        tasks: TaskGroup,
        sender: ReactionSender,
        presence: Presence,
    ) -> None:
        self._me = me
        self._reactor = Reactor(user_id=me.id, display_name=me.display_name)
        self._backend = backend
        self._calls = calls
        self._tasks = tasks
        self._sender = sender
        self._presence = presence
        self._chats: dict[ChatId, _Watched] = {}
        self._unsubscribe_sender = sender.subscribe(self._on_sender)

    # --- open chats ----------------------------------------------------------------------------------
    def watch(self, chat_id: ChatId, timeline: Timeline) -> None:
        """Follow an open chat's timeline: its rows' reactions are shown, and "who" loaded as needed."""
        self.unwatch(chat_id)
        watched = _Watched(unsubscribe=timeline.subscribe(lambda changes: self._on_rows(chat_id, changes)))
        self._chats[chat_id] = watched
        self._take_rows(chat_id, watched, timeline.rows)

    def watches(self, chat_id: ChatId) -> bool:
        return chat_id in self._chats

    def unwatch(self, chat_id: ChatId) -> None:
        watched = self._chats.pop(chat_id, None)
        if watched is not None:
            watched.unsubscribe()
            if watched.loading is not None:
                watched.loading.cancel()

    def close(self) -> None:
        for chat_id in list(self._chats):
            self.unwatch(chat_id)
        self._unsubscribe_sender()

    def reload(self) -> None:
        """The link is back: load "who" again for every shown message with reactions (pushes were missed)."""
        for chat_id, watched in self._chats.items():
            watched.who.clear()
            watched.wanted.update(m.seq for m in watched.messages.values() if m.seq is not None and m.reactions)
            self._load_soon(chat_id, watched)

    # --- reads ---------------------------------------------------------------------------------------
    def shown(self, chat_id: ChatId) -> dict[MessageId, tuple[ShownReaction, ...]]:
        """Every loaded message of the chat that shows reactions, and what it shows."""
        watched = self._chats.get(chat_id)
        if watched is None:
            return {}
        pending = self._sender.pending(chat_id)
        result: dict[MessageId, tuple[ShownReaction, ...]] = {}
        for message_id, message in watched.messages.items():
            shown = self._shown(watched, message, pending.get(message_id, {}))
            if shown:
                result[message_id] = shown
        return result

    def mine(self, chat_id: ChatId, message_id: MessageId, emoji: str) -> bool:
        """Whether the user's ``emoji`` is on the message as shown now."""
        watched = self._chats.get(chat_id)
        message = watched.messages.get(message_id) if watched is not None else None
        if watched is None or message is None:
            wish = self._sender.pending(chat_id).get(message_id, {}).get(emoji)
            return bool(wish)
        shown = self._shown(watched, message, self._sender.pending(chat_id).get(message_id, {}))
        return any(reaction.emoji == emoji and reaction.mine for reaction in shown)

    # --- writes --------------------------------------------------------------------------------------
    async def toggle(self, chat_id: ChatId, message_id: MessageId, emoji: str) -> bool:
        """Flip the user's ``emoji`` on the message (see ``ChatStoreAPI.toggle_reaction``)."""
        wanted = not self.mine(chat_id, message_id, emoji)
        await self._sender.set(chat_id, message_id, emoji, wanted)
        return wanted

    # --- internals -----------------------------------------------------------------------------------
    def _shown(self, watched: _Watched, message: Message, pending: Mapping[str, bool]) -> tuple[ShownReaction, ...]:
        if message.deleted:
            return ()
        return shown_reactions(
            counts_of(message), message.rev, watched.who.get(message.id), pending, self._me.display_name
        )

    def _on_rows(self, chat_id: ChatId, changes: Sequence[RowChange[Message]]) -> None:
        watched = self._chats.get(chat_id)
        if watched is None:
            return
        rows: list[Message] = []
        for change in changes:
            if isinstance(change, RowsInserted | RowsChanged | RowsReset):
                rows.extend(change.rows)
        self._take_rows(chat_id, watched, rows)

    def _take_rows(self, chat_id: ChatId, watched: _Watched, rows: Sequence[Message]) -> None:
        changed: dict[MessageId, tuple[ShownReaction, ...]] = {}
        pending = self._sender.pending(chat_id)
        for message in rows:
            before = watched.messages.get(message.id)
            watched.messages[message.id] = message
            detail = watched.who.get(message.id)
            if detail is not None and not message.reactions and not pending.get(message.id):
                del watched.who[message.id]  # all taken back (or the message deleted)
                detail = None
            if needs_who(message, detail):
                assert message.seq is not None  # needs_who says no to pending rows
                watched.wanted.add(message.seq)
            elif detail is not None and message.rev is not None and detail.rev < message.rev:
                watched.who[message.id] = detail.model_copy(update={"rev": message.rev})  # an edit: same counts
            if before is None:
                shown = self._shown(watched, message, pending.get(message.id, {}))
                if shown:  # a page of plain messages tells the views nothing
                    changed[message.id] = shown
            elif before.reactions != message.reactions or before.deleted != message.deleted:
                changed[message.id] = self._shown(watched, message, pending.get(message.id, {}))
        if changed:
            self._presence.reactions_changed(chat_id, changed)
        if watched.wanted:
            self._load_soon(chat_id, watched)

    def _load_soon(self, chat_id: ChatId, watched: _Watched) -> None:
        if watched.loading is None or watched.loading.done():
            watched.loading = self._tasks.spawn(self._load(chat_id, watched), f"reactions-{chat_id}")

    async def _load(self, chat_id: ChatId, watched: _Watched) -> None:
        await asyncio.sleep(0)  # let a burst of rows (a page, a back-fill) gather first
        while watched.wanted and self._chats.get(chat_id) is watched:
            windows = seq_windows(sorted(watched.wanted))
            watched.wanted.clear()
            for low, high in windows:
                # The answer is at least as new as the rows known now: their revs date it.
                in_window = {m.id: m for m in watched.messages.values() if m.seq is not None and low <= m.seq <= high}
                revs = {message_id: m.rev or 0 for message_id, m in in_window.items()}
                try:
                    details = await self._calls.call(
                        "message_reactions", partial(self._backend.fetch_reactions, chat_id, low, high, NAMES_PER_EMOJI)
                    )
                except DesktopChatError as error:
                    # Offline or refused: the counts on the rows still show; the next link-up loads again.
                    log.info("Cannot load who reacted in chat %s: %s", chat_id, type(error).__name__)
                    return
                grouped: dict[MessageId, list[ReactionDetail]] = {message_id: [] for message_id in in_window}
                for detail in details:
                    grouped.setdefault(detail.message_id, []).append(detail)
                changed: dict[MessageId, tuple[ShownReaction, ...]] = {}
                pending = self._sender.pending(chat_id)
                for message_id, items in grouped.items():
                    known = watched.messages.get(message_id)
                    if known is None:
                        continue
                    watched.who[message_id] = MessageReactions(
                        message_id=message_id, rev=revs.get(message_id, 0), items=tuple(items)
                    )
                    changed[message_id] = self._shown(watched, known, pending.get(message_id, {}))
                if changed:
                    self._presence.reactions_changed(chat_id, changed)

    def _on_sender(self, event: ReactionEvent) -> None:
        op = event.op
        watched = self._chats.get(op.chat_id)
        if watched is None:
            return
        message = watched.messages.get(op.message_id)
        if isinstance(event, ReactionDelivered) and not event.superseded and message is not None:
            detail = reactions_after_toggle(
                watched.who.get(op.message_id), op.emoji, op.wanted, self._reactor, message.rev or 0, message.seq
            )
            if detail is None and message.seq is not None:
                watched.wanted.add(message.seq)  # "who" was never loaded: load it now, with the user in it
                self._load_soon(op.chat_id, watched)
                # Until then the pending wish is gone and the row's counts may not have the toggle yet:
                # keep showing it through a loaded-looking detail built from the row.
                detail = _from_row(message, op.emoji, op.wanted, self._reactor)
            if detail is not None:
                watched.who[op.message_id] = detail
        if isinstance(event, ReactionQueued | ReactionDelivered | ReactionRefused) and message is not None:
            pending = self._sender.pending(op.chat_id).get(op.message_id, {})
            self._presence.reactions_changed(op.chat_id, {op.message_id: self._shown(watched, message, pending)})


def _from_row(message: Message, emoji: str, added: bool, me: Reactor) -> MessageReactions:
    """A "who" for a message whose reactors were never loaded: its counts (none of them the user's, as far
    as is known) plus the user's toggle."""
    assert message.seq is not None
    seq = message.seq
    base = MessageReactions(
        message_id=message.id,
        rev=message.rev or 0,
        items=tuple(
            ReactionDetail(message_id=message.id, seq=seq, emoji=r.emoji, count=r.count, mine=False)
            for r in message.reactions
        ),
    )
    return reactions_after_toggle(base, emoji, added, me, message.rev or 0, seq) or base


__all__ = ["Reactions", "counts_of", "needs_who", "seq_windows"]
