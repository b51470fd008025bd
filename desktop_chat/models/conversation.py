"""What search, reactions and read receipts return (the SQL functions of the 20261205 migrations). No I/O.

- ``SearchHit``/``SearchPage``: ``search_messages()``; a page's ``next_cursor`` asks for the next one.
- ``ReactionDetail``: ``message_reactions()``, one emoji of one message with who reacted (bounded) and
  whether the caller did. The counts alone travel on ``Message.reactions``.
- ``ReadPosition``/``ReadPositions``: ``read_positions()``, everything a small chat needs for its ticks;
  ``ReadReceipt``: ``read_receipts()``, "seen by N" per message for a chat of any size;
  ``MessageReader``: ``message_readers()``, the names behind N.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from desktop_chat.models.ids import ChatId, MessageId, UserId

SNIPPET_START = "\ue000"
"""Opens a highlighted match in ``SearchHit.snippet`` (a private-use character the server removes from
the message text first, so a message cannot forge a highlight)."""
SNIPPET_END = "\ue001"
"""Closes a highlighted match in ``SearchHit.snippet``."""


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class SearchCursor(_Model):
    """Where the next page of a search starts: after this message in (created_at, id) order, newest first."""

    before_at: datetime
    before_id: MessageId


class SearchHit(_Model):
    """A message that matched: where it is (chat, seq: enough to open the chat at it) and a snippet."""

    id: MessageId
    chat_id: ChatId
    seq: int = Field(ge=1)
    sender_id: UserId | None
    created_at: datetime
    edited_at: datetime | None = None
    snippet: str

    @property
    def cursor(self) -> SearchCursor:
        return SearchCursor(before_at=self.created_at, before_id=self.id)

    def snippet_parts(self) -> list[tuple[str, bool]]:
        """The snippet as (text, highlighted) pieces, markers removed; see ``split_snippet``."""
        return split_snippet(self.snippet)


def split_snippet(snippet: str) -> list[tuple[str, bool]]:
    """Split a snippet into (text, highlighted) pieces at the markers.

    Plain text in, plain text out: the caller escapes each piece for whatever renders it. A stray or
    unbalanced marker never raises; it only ends or starts a highlight.
    """
    parts: list[tuple[str, bool]] = []
    highlighted = False
    piece: list[str] = []
    for char in snippet:
        if char in (SNIPPET_START, SNIPPET_END):
            if piece:
                parts.append(("".join(piece), highlighted))
                piece = []
            highlighted = char == SNIPPET_START
        else:
            piece.append(char)
    if piece:
        parts.append(("".join(piece), highlighted))
    return parts


class SearchPage(_Model):
    """One page of hits, newest first, and the cursor of the next page (None: this was the last)."""

    hits: tuple[SearchHit, ...] = ()
    next_cursor: SearchCursor | None = None


class Reactor(_Model):
    user_id: UserId
    display_name: str | None = None


class ReactionDetail(_Model):
    """One emoji under one message: how many, whether the caller is among them, and the first reactors."""

    message_id: MessageId
    seq: int = Field(ge=1)
    emoji: str
    count: int = Field(ge=1)
    mine: bool
    users: tuple[Reactor, ...] = ()


class ReadPosition(_Model):
    user_id: UserId
    last_read_seq: int = Field(ge=0)


class ReadPositions(_Model):
    """Members' read positions, furthest first (at most the limit asked for), and how many members there are."""

    chat_id: ChatId
    positions: tuple[ReadPosition, ...] = ()
    member_count: int = Field(default=0, ge=0)

    def read_by(self, seq: int, sender_id: UserId | None) -> list[UserId]:
        """Members known to have read message ``seq``, its sender left out."""
        return [p.user_id for p in self.positions if p.last_read_seq >= seq and p.user_id != sender_id]


class ReadReceipt(_Model):
    """Of the members other than the sender of message ``seq``: how many have read it, and how many there are."""

    seq: int = Field(ge=1)
    read_count: int = Field(ge=0)
    member_count: int = Field(ge=0)


class MessageReader(_Model):
    user_id: UserId
    display_name: str | None = None
    last_read_seq: int = Field(ge=0)


# --- what the bubble shows: reactions and read receipts (pure reducers) ---------------------------------
class ShownReaction(_Model):
    """One emoji under a message as the user sees it: the count, whether the user is among them, and who
    (the first names the server gave, the user's own optimistic toggle applied)."""

    emoji: str
    count: int = Field(ge=1)
    mine: bool = False
    names: tuple[str, ...] = ()


class MessageReactions(_Model):
    """Who reacted to one message, as ``message_reactions()`` said at (at least) the message's ``rev``.

    ``rev`` is the message's rev known when the call was made: the answer is at least that new, so a
    message row with a higher rev makes these counts stale (its own counts win until the next call).
    """

    message_id: MessageId
    rev: int = Field(default=0, ge=0)
    items: tuple[ReactionDetail, ...] = ()

    def mine(self) -> frozenset[str]:
        return frozenset(item.emoji for item in self.items if item.mine)


def shown_reactions(
    counts: Sequence[tuple[str, int]],
    rev: int | None,
    detail: MessageReactions | None,
    pending: Mapping[str, bool],
    me: str,
) -> tuple[ShownReaction, ...]:
    """What to show under a message (pure).

    Args:
        counts: The message row's counts per emoji (``Message.reactions``), in first-use order.
        rev: The message row's rev (None for a message the server does not have yet).
        detail: Who reacted, from the server, or None when not known (not loaded, offline).
        pending: This user's toggles not delivered yet: emoji → wanted (True: add, False: remove).
        me: The user's own name, for the "who" of a pending add.
    """
    fresh = detail is not None and (rev is None or detail.rev >= rev)
    shown: dict[str, int] = {}
    if fresh and detail is not None:
        for item in detail.items:
            shown[item.emoji] = item.count
    else:
        shown = dict(counts)
    mine = set(detail.mine()) if detail is not None else set()
    names: dict[str, list[str]] = {}
    if detail is not None:
        for item in detail.items:
            names[item.emoji] = [user.display_name or "Someone" for user in item.users]
    for emoji, wanted in pending.items():
        if wanted and emoji not in mine:
            shown[emoji] = shown.get(emoji, 0) + 1
            mine.add(emoji)
            names.setdefault(emoji, []).insert(0, me)
        elif not wanted and emoji in mine:
            shown[emoji] = shown.get(emoji, 0) - 1
            mine.discard(emoji)
            names[emoji] = [name for name in names.get(emoji, []) if name != me]
    return tuple(
        ShownReaction(emoji=emoji, count=count, mine=emoji in mine, names=tuple(names.get(emoji, ())))
        for emoji, count in shown.items()
        if count > 0
    )


def reactions_after_toggle(
    detail: MessageReactions | None, emoji: str, added: bool, me: Reactor, rev: int, seq: int | None
) -> MessageReactions | None:
    """``detail`` once the server took the user's toggle (pure): the count moved by one, the user in or out.

    ``rev`` is the message's rev as known now (the change is on top of it: the next row with a higher rev
    carries it in its own counts); ``seq`` the message's. None when nothing was loaded to change.
    """
    if detail is None:
        return None
    items = list(detail.items)
    index = next((i for i, item in enumerate(items) if item.emoji == emoji), None)
    if index is None:
        if added:
            if seq is None:
                return detail.model_copy(update={"rev": max(detail.rev, rev)})
            items.append(
                ReactionDetail(message_id=detail.message_id, seq=seq, emoji=emoji, count=1, mine=True, users=(me,))
            )
    else:
        item = items[index]
        if item.mine != added:
            count = item.count + (1 if added else -1)
            users = (me, *item.users) if added else tuple(u for u in item.users if u.user_id != me.user_id)
            if count <= 0:
                del items[index]
            else:
                items[index] = item.model_copy(update={"count": count, "mine": added, "users": users})
    return MessageReactions(message_id=detail.message_id, rev=max(detail.rev, rev), items=tuple(items))


class ReadState(_Model):
    """Where each member of a chat has read to (``last_read_seq``), and how many members there are.

    ``complete``: every member's position is here (a chat of up to the positions asked for); otherwise
    the furthest ones, and "seen by" counts are lower bounds.
    """

    chat_id: ChatId
    positions: dict[UserId, int] = Field(default_factory=dict)
    member_count: int = Field(default=0, ge=0)
    complete: bool = True

    @classmethod
    def of(cls, read: ReadPositions, limit: int) -> ReadState:
        return cls(
            chat_id=read.chat_id,
            positions={p.user_id: p.last_read_seq for p in read.positions},
            member_count=read.member_count,
            complete=len(read.positions) < limit or read.member_count <= len(read.positions),
        )

    def moved(self, user_id: UserId, last_read_seq: int) -> ReadState:
        """The state after a member's read position moved (positions only move forward; pure)."""
        if self.positions.get(user_id, -1) >= last_read_seq:
            return self
        positions = dict(self.positions)
        positions[user_id] = last_read_seq
        return self.model_copy(update={"positions": positions})

    def readers(self, seq: int, sender_id: UserId | None) -> list[UserId]:
        """Members known to have read message ``seq``, its sender left out."""
        return [user for user, read in self.positions.items() if read >= seq and user != sender_id]

    @property
    def one_to_one(self) -> bool:
        return self.member_count == 2
