"""What search, reactions and read receipts return (the SQL functions of the 20261205 migrations). No I/O.

- ``SearchHit``/``SearchPage``: ``search_messages()``; a page's ``next_cursor`` asks for the next one.
- ``ReactionDetail``: ``message_reactions()``, one emoji of one message with who reacted (bounded) and
  whether the caller did. The counts alone travel on ``Message.reactions``.
- ``ReadPosition``/``ReadPositions``: ``read_positions()``, everything a small chat needs for its ticks;
  ``ReadReceipt``: ``read_receipts()``, "seen by N" per message for a chat of any size;
  ``MessageReader``: ``message_readers()``, the names behind N.
"""

from __future__ import annotations

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
