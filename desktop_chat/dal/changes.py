"""The change types: what each broadcast from the database means here, from the push to the cache.

One row per kind of change, in ``CHANGE_TYPES`` (event, broadcast event, table, parse, reduce,
write_cache); the schema's triggers send these events on the private topics (``user:<me>``,
``chat:<id>``, see ``desktop_chat.realtime.topics``)::

    MessageUpserted  message   chat_messages  INSERT/UPDATE  the chat's messages to apply     append per chat, by rev
    MessageNoticed   activity  (a notice)     new message    the chat-list row; notify        (none: the list is
                                                                                              written through)
    ChatUpserted     chat      chat_sessions  INSERT/UPDATE  the chat-list row; deleted:      forget details, purge
                                                             drop; unknown: reload the list   the dropped chats
    ChatRemoved      chat      chat_sessions  DELETE         drop the chat (also made here)   (same)
    MemberUpserted   member    chat_members   INSERT/UPDATE  ours: read position, role;       (same)
                                                             others: forget the details
    MemberRemoved    member    chat_members   DELETE         ours: drop the chat;             (same)
                                                             others: forget the details
    ReadMoved        read      (a notice)     last_read_seq  none here: the open chats'       (none)
                                                             receipts fold it (``Receipts``)

``LiveSync`` applies a batch of events in three steps: every event's ``reduce`` (pure: it only reads the
views through ``ViewState`` and writes the ``ChangeBatch``; the chat-list rows it works out go in at once),
then each distinct ``write_cache`` once (the cache first), then the rest of the views. The realtime
link listens to exactly the broadcast events named here, and a push is parsed by the rows of its event.
A member's row goes to ``chat:<id>`` only when it is added, removed or its role changes; a move of
its read position goes there as the compact ``read`` event, and only in a chat of at most 50 members
(the receipts of a bigger chat are reloaded when the link comes up and on each consistency probe).
The same change may come twice (a rename on ``chat:<id>`` and on ``user:<me>``; a new message on
``chat:<id>`` and as an ``activity`` notice): every reducer is idempotent, and a notice of a message the
row already shows changes nothing.

Profiles are not here: the database does not broadcast display-name changes (one would have to go to
every chat of the user); names come with a chat's details, re-read when its cache entry expires or its
membership changes.

Adding a table (reactions, say) is a trigger that broadcasts it and a row here with its parse, reduce and
cache writer; when its reduce needs a kind of effect the batch does not have yet, it adds a field to
``ChangeBatch`` and LiveSync a step that shows it.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

import pydantic

from desktop_chat.cache import AppendResult, KeyKind, TieredCache
from desktop_chat.dal.cursor import RevCursor
from desktop_chat.dal.reducers import (
    details_changed,
    summary_after_own_membership,
    summary_with_chat,
    summary_with_message,
)
from desktop_chat.models import (
    ChangeEvent,
    Chat,
    ChatId,
    ChatMember,
    ChatRemoved,
    ChatSummary,
    ChatUpserted,
    MemberRemoved,
    MemberUpserted,
    Message,
    MessageNoticed,
    MessageUpserted,
    ReadMoved,
    UserId,
)
from desktop_chat.realtime.events import Push, RowChange, row_change

log = logging.getLogger(__name__)

E = TypeVar("E", bound=ChangeEvent)

_UPSERTS = frozenset({"INSERT", "UPDATE"})


class ViewState(Protocol):
    """What a reducer may look at: the views as they are before the batch (read only)."""

    def row(self, chat_id: ChatId) -> ChatSummary | None:
        """The chat's row in the chat list."""
        ...

    def open_chats(self) -> Collection[ChatId]: ...

    def loaded(self, chat_id: ChatId) -> tuple[Sequence[Message], int | None] | None:
        """An open timeline's rows and the oldest ``seq`` it loaded; None when the chat is not open."""
        ...


@dataclass
class ChangeBatch:
    """What one batch of changes means for this user. Filled by the reducers, carried out by the cache
    writers, then shown.

    Args:
        me: The signed-in user.
        view: The views before the batch.
        cursors: The back-fill cursors of the chats (the message writer moves them on).
        realtime: The changes came from realtime, in commit order, so a ``rev`` beyond a chat's cursor
            is a gap. False for a back-fill (everything above the cursor, authoritative).
    """

    me: UserId
    view: ViewState
    cursors: Mapping[ChatId, RevCursor]
    realtime: bool = True
    messages: dict[ChatId, list[Message]] = field(default_factory=lambda: defaultdict(list))
    rows: dict[ChatId, ChatSummary] = field(default_factory=dict)  # chat-list rows the batch changed
    forget_details: set[ChatId] = field(default_factory=set)  # cached details no longer true
    drop: set[ChatId] = field(default_factory=set)  # chats gone for this user
    reload_list: bool = False  # only the server can tell what the chat list is now
    gaps: set[ChatId] = field(default_factory=set)  # chats that missed a change (set by the message writer)
    notify: list[Message] = field(default_factory=list)  # new messages from others, announced by a notice

    def row(self, chat_id: ChatId) -> ChatSummary | None:
        """The chat's row as this batch has it so far."""
        row = self.rows.get(chat_id)
        return row if row is not None else self.view.row(chat_id)


Parser = Callable[[Push], E | None]
Reducer = Callable[[E, ChangeBatch], None]
CacheWriter = Callable[[ChangeBatch, TieredCache], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class ChangeType(Generic[E]):
    """One kind of change: where it comes from, how it is read, what it means and what it writes."""

    event: type[E]
    broadcast: str | None  # the broadcast event that carries it; None for a change the data layer makes
    table: str | None  # the table whose row change it is (``broadcast_changes`` payloads), if any
    parse: Parser[E] | None
    reduce: Reducer[E]
    write_cache: CacheWriter


# --- parsers (pure) ----------------------------------------------------------------------------------
def _change(push: Push, table: str) -> RowChange | None:
    change = row_change(push.payload)
    return change if change is not None and change.table == table else None


def parse_message(push: Push) -> MessageUpserted | None:
    change = _change(push, "chat_messages")
    if change is not None and change.kind in _UPSERTS and change.record is not None:
        return MessageUpserted(message=Message.model_validate(change.record))
    return None


def parse_notice(push: Push) -> MessageNoticed | None:
    """The ``activity`` notice: ``{chat_id, message_id, sender_id, seq, rev, created_at, preview}``."""
    body = push.payload
    message = Message.model_validate(
        {
            "id": body["message_id"],
            "chat_id": body["chat_id"],
            "sender_id": body["sender_id"],
            "content": body["preview"],
            "created_at": body["created_at"],
            "seq": body["seq"],
            "rev": body["rev"],
        }
    )
    if message.seq is None or message.rev is None:
        raise ValueError("an activity notice without seq or rev")
    return MessageNoticed(message=message)


def parse_read(push: Push) -> ReadMoved | None:
    """The ``read`` notice: ``{chat_id, user_id, last_read_seq}``."""
    return ReadMoved.model_validate(push.payload)


def parse_chat(push: Push) -> ChatUpserted | None:
    change = _change(push, "chat_sessions")
    if change is not None and change.kind in _UPSERTS and change.record is not None:
        return ChatUpserted(chat=Chat.model_validate(change.record))
    return None


def parse_chat_purged(push: Push) -> ChatRemoved | None:
    change = _change(push, "chat_sessions")
    if change is not None and change.kind == "DELETE" and change.old is not None:
        return ChatRemoved(chat_id=ChatId(uuid.UUID(str(change.old["id"]))))
    return None


def parse_member(push: Push) -> MemberUpserted | None:
    change = _change(push, "chat_members")
    if change is not None and change.kind in _UPSERTS and change.record is not None:
        return MemberUpserted(member=ChatMember.model_validate(change.record))
    return None


def parse_member_removed(push: Push) -> MemberRemoved | None:
    change = _change(push, "chat_members")
    if change is not None and change.kind == "DELETE" and change.old is not None:
        return MemberRemoved(
            chat_id=ChatId(uuid.UUID(str(change.old["session_id"]))),
            user_id=UserId(uuid.UUID(str(change.old["user_id"]))),
        )
    return None


# --- reducers (pure) ---------------------------------------------------------------------------------
def reduce_message(event: MessageUpserted, batch: ChangeBatch) -> None:
    batch.messages[event.message.chat_id].append(event.message)


def reduce_notice(event: MessageNoticed, batch: ChangeBatch) -> None:
    """A new message, announced: the chat moves up and counts it unread, and someone else's is notified.
    The message itself (and the cache) waits for the chat's own topic or a back-fill."""
    message = event.message
    row = batch.row(message.chat_id)
    if row is None:
        batch.reload_list = True  # a chat we do not list yet
        return
    known = row.last_message.seq if row.last_message is not None else None
    if message.seq is None or message.seq <= (known or 0):
        return  # the row shows it already (the chat's own topic brought it first)
    batch.rows[message.chat_id] = summary_with_message(row, message, batch.me)
    if message.sender_id != batch.me:
        batch.notify.append(message)


def reduce_read(event: ReadMoved, batch: ChangeBatch) -> None:
    """Others' read positions are shown by ``Receipts`` alone; this user's own position comes as its
    ``member`` row on ``user:<me>`` (which also moves the chat-list row), so nothing changes here."""


def reduce_chat(event: ChatUpserted, batch: ChangeBatch) -> None:
    chat = event.chat
    row = batch.row(chat.id)
    if chat.deleted:
        batch.drop.add(chat.id)
    elif row is None:
        batch.reload_list = True  # a chat we did not know: we were just added to it
    else:
        if details_changed(row.chat, chat):
            batch.forget_details.add(chat.id)
        batch.rows[chat.id] = summary_with_chat(row, chat)


def reduce_chat_removed(event: ChatRemoved, batch: ChangeBatch) -> None:
    batch.drop.add(event.chat_id)


def reduce_member(event: MemberUpserted, batch: ChangeBatch) -> None:
    member = event.member
    if member.user_id != batch.me:
        batch.forget_details.add(member.chat_id)
        return
    row = batch.row(member.chat_id)
    if row is None:
        batch.reload_list = True  # added to a chat
        return
    # Our own membership changed: read on another device, or made owner.
    updated = summary_after_own_membership(row, member, batch.view.loaded(member.chat_id), batch.me)
    if updated is None:
        batch.reload_list = True  # the unread count cannot be worked out here: ask Supabase
    elif updated != row:
        batch.rows[member.chat_id] = updated
        if updated.role != row.role:
            batch.forget_details.add(member.chat_id)  # a read position is no detail: the cache stays


def reduce_member_removed(event: MemberRemoved, batch: ChangeBatch) -> None:
    if event.user_id == batch.me:
        batch.drop.add(event.chat_id)
    else:
        batch.forget_details.add(event.chat_id)


# --- cache writers -----------------------------------------------------------------------------------
async def write_messages(batch: ChangeBatch, cache: TieredCache) -> None:
    """One atomic append per chat, and only from changes known to be in rev order; a gap drops the window.

    Sorts each chat's messages by ``rev``; the views take them in that order.
    """
    for chat_id, incoming in batch.messages.items():
        incoming.sort(key=lambda m: m.rev or 0)
        cursor = batch.cursors.get(chat_id)
        gap = False
        if cursor is not None and batch.realtime:
            for message in incoming:
                if message.rev is not None and cursor.observe(message.rev):
                    gap = True
        confirmed = [m for m in incoming if m.seq is not None]
        if gap:
            # Something was missed: the cached window can no longer be trusted until a back-fill.
            batch.gaps.add(chat_id)
            await cache.invalidate(batch.me, KeyKind.MSGS, chat_id)
        elif confirmed and await cache.append_messages(batch.me, chat_id, confirmed) is AppendResult.GAP:
            batch.gaps.add(chat_id)


async def write_nothing(batch: ChangeBatch, cache: TieredCache) -> None:
    """For changes that only touch the chat list, which the views write through themselves."""


async def write_chat_entries(batch: ChangeBatch, cache: TieredCache) -> None:
    """Forget details that changed; purge every entry of a chat that is gone."""
    for chat_id in batch.forget_details - batch.drop:
        await cache.invalidate(batch.me, KeyKind.CHAT, chat_id)
    for chat_id in batch.drop:
        await cache.invalidate_chat(batch.me, chat_id)


# --- the table -----------------------------------------------------------------------------------------
CHANGE_TYPES: tuple[ChangeType[Any], ...] = (
    ChangeType(MessageUpserted, "message", "chat_messages", parse_message, reduce_message, write_messages),
    ChangeType(MessageNoticed, "activity", None, parse_notice, reduce_notice, write_nothing),
    ChangeType(ChatUpserted, "chat", "chat_sessions", parse_chat, reduce_chat, write_chat_entries),
    ChangeType(ChatRemoved, "chat", "chat_sessions", parse_chat_purged, reduce_chat_removed, write_chat_entries),
    ChangeType(MemberUpserted, "member", "chat_members", parse_member, reduce_member, write_chat_entries),
    ChangeType(
        MemberRemoved, "member", "chat_members", parse_member_removed, reduce_member_removed, write_chat_entries
    ),
    ChangeType(ReadMoved, "read", None, parse_read, reduce_read, write_nothing),
)

EVENTS: tuple[str, ...] = tuple(dict.fromkeys(row.broadcast for row in CHANGE_TYPES if row.broadcast is not None))
_BY_EVENT: dict[type[ChangeEvent], ChangeType[Any]] = {row.event: row for row in CHANGE_TYPES}
_BY_BROADCAST: dict[str, tuple[ChangeType[Any], ...]] = {
    name: tuple(row for row in CHANGE_TYPES if row.broadcast == name) for name in EVENTS
}
_WRITERS: tuple[CacheWriter, ...] = tuple(dict.fromkeys(row.write_cache for row in CHANGE_TYPES))


def parse_change(push: Push) -> ChangeEvent | None:
    """The change event a push describes, or None for one that is irrelevant or malformed.

    Malformed pushes are logged (without their content) and dropped rather than raised: one bad frame
    must not stop the stream, and back-fill repairs anything missed.
    """
    try:
        for row in _BY_BROADCAST.get(push.event, ()):
            assert row.parse is not None  # rows with a broadcast event have a parser
            event: ChangeEvent | None = row.parse(push)
            if event is not None:
                return event
    except (pydantic.ValidationError, KeyError, ValueError, TypeError) as error:
        log.warning("Dropped a malformed %s push on %s: %s", push.event, push.topic.split(":")[0], type(error).__name__)
    return None


def reduce(events: Sequence[ChangeEvent], batch: ChangeBatch) -> ChangeBatch:
    """Fold ``events`` into ``batch``, in order (pure)."""
    for event in events:
        _BY_EVENT[type(event)].reduce(event, batch)
    return batch


async def write_cache(batch: ChangeBatch, cache: TieredCache) -> None:
    """Carry out the batch's cache writes: each writer once, in the table's order (messages first)."""
    for writer in _WRITERS:
        await writer(batch, cache)
