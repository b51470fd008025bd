"""A compact binary form for cached messages. Pure.

Messages are most of what the cache holds (by default up to 200 per chat, 200 chats per user), so
they get a packed form instead of JSON: 57 bytes plus the text (41 without a sender), against about 230
plus the text for pydantic's JSON without defaults (``bench/bench_cache.py`` measures both: 110 against
280 bytes for realistic messages). The chat id is not stored; it comes from the cache key, which the
codec authenticates.

Layout, little-endian::

    flags   u8     bit 0: sender_id present, bit 1: edited_at present, bit 2: deleted_at present,
                   bit 3: reply_to present, bit 4: reactions present
    id      16     message id (UUID bytes)
    created i64    microseconds since the Unix epoch, UTC
    seq     u64
    rev     u64
    sender  16     if flag 0
    edited  i64    if flag 1
    deleted i64    if flag 2
    reply   16     if flag 3: the id of the message this one answers
    reacts         if flag 4: u8 number of emoji, then for each: u8 length, the emoji in UTF-8, u32 count
    content rest   UTF-8

Only server-confirmed messages are cached (pending and failed ones live in the outbox), so ``seq`` and
``rev`` are always present and ``delivery`` is always ``SENT``. Changing this layout or the fields of
``Message`` needs a new ``codec.SCHEMA_VERSION``; ``PACKED_FIELDS`` lets a test notice a new field.
"""

from __future__ import annotations

import struct
from datetime import UTC, datetime, timedelta

from pydantic import ValidationError

from desktop_chat.models import ChatId, DeliveryState, Message

__all__ = ["PACKED_FIELDS", "PackingError", "pack_message", "unpack_message"]

# Every field of Message this form carries, or restores (chat_id from the key, delivery/error fixed).
PACKED_FIELDS = frozenset(
    {"id", "chat_id", "sender_id", "content", "created_at", "edited_at", "deleted_at", "seq", "rev"}
    | {"reply_to", "reactions"}
    | {"delivery", "error"}
)

_FIXED = struct.Struct("<B16sqQQ")
_TIME = struct.Struct("<q")
_UUID_LEN = 16
_HAS_SENDER = 1
_HAS_EDITED = 2
_HAS_DELETED = 4
_HAS_REPLY = 8
_HAS_REACTIONS = 16
_ALL_FLAGS = _HAS_SENDER | _HAS_EDITED | _HAS_DELETED | _HAS_REPLY | _HAS_REACTIONS
_REACTION_COUNT = struct.Struct("<I")
_MAX_REACTIONS = 255
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


class PackingError(ValueError):
    """Bytes that are not a packed message, or a message that cannot be packed."""


def _micros(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise PackingError("cached timestamps must carry a time zone")
    # Exact integer arithmetic: going through a float timestamp loses microseconds.
    return (moment - _EPOCH) // _MICROSECOND


def _moment(micros: int) -> datetime:
    return _EPOCH + micros * _MICROSECOND


def pack_message(message: Message) -> bytes:
    """The packed form of a confirmed message; ``PackingError`` for a pending or failed one."""
    if message.seq is None or message.rev is None or message.delivery is not DeliveryState.SENT:
        raise PackingError("only confirmed messages (with seq and rev) are cached")
    flags = (
        (_HAS_SENDER if message.sender_id is not None else 0)
        | (_HAS_EDITED if message.edited_at is not None else 0)
        | (_HAS_DELETED if message.deleted_at is not None else 0)
        | (_HAS_REPLY if message.reply_to is not None else 0)
        | (_HAS_REACTIONS if message.reactions else 0)
    )
    try:
        parts = [_FIXED.pack(flags, message.id.bytes, _micros(message.created_at), message.seq, message.rev)]
    except struct.error as error:
        raise PackingError(f"message does not fit the packed form: {error}") from None
    if message.sender_id is not None:
        parts.append(message.sender_id.bytes)
    if message.edited_at is not None:
        parts.append(_TIME.pack(_micros(message.edited_at)))
    if message.deleted_at is not None:
        parts.append(_TIME.pack(_micros(message.deleted_at)))
    if message.reply_to is not None:
        parts.append(message.reply_to.bytes)
    if message.reactions:
        parts.append(_pack_reactions(message))
    parts.append(message.content.encode())
    return b"".join(parts)


def _pack_reactions(message: Message) -> bytes:
    if len(message.reactions) > _MAX_REACTIONS:
        raise PackingError(f"more than {_MAX_REACTIONS} different reactions on one message")
    parts = [bytes((len(message.reactions),))]
    for reaction in message.reactions:
        emoji = reaction.emoji.encode()
        if len(emoji) > _MAX_REACTIONS:
            raise PackingError("an emoji longer than 255 bytes")
        try:
            parts += [bytes((len(emoji),)), emoji, _REACTION_COUNT.pack(reaction.count)]
        except struct.error as error:
            raise PackingError(f"reaction count does not fit the packed form: {error}") from None
    return b"".join(parts)


def _unpack_reactions(data: bytes, offset: int) -> tuple[list[dict[str, object]], int]:
    if len(data) <= offset:
        raise PackingError("packed message truncated")
    reactions: list[dict[str, object]] = []
    count = data[offset]
    offset += 1
    for _ in range(count):
        if len(data) <= offset:
            raise PackingError("packed message truncated")
        size = data[offset]
        offset += 1
        end = offset + size
        if len(data) < end + _REACTION_COUNT.size:
            raise PackingError("packed message truncated")
        emoji = data[offset:end].decode()
        (times,) = _REACTION_COUNT.unpack_from(data, end)
        reactions.append({"emoji": emoji, "count": times})
        offset = end + _REACTION_COUNT.size
    return reactions, offset


def unpack_message(data: bytes, chat_id: ChatId) -> Message:
    """The validated message in ``data``; ``PackingError`` when it is malformed or invalid."""
    try:
        flags, raw_id, created, seq, rev = _FIXED.unpack_from(data)
        offset = _FIXED.size
        sender = None
        if flags & _HAS_SENDER:
            if len(data) < offset + _UUID_LEN:
                raise PackingError("packed message truncated")
            sender = data[offset : offset + _UUID_LEN]
            offset += _UUID_LEN
        edited = deleted = None
        if flags & _HAS_EDITED:
            edited = _moment(_TIME.unpack_from(data, offset)[0])
            offset += _TIME.size
        if flags & _HAS_DELETED:
            deleted = _moment(_TIME.unpack_from(data, offset)[0])
            offset += _TIME.size
        reply = None
        if flags & _HAS_REPLY:
            if len(data) < offset + _UUID_LEN:
                raise PackingError("packed message truncated")
            reply = data[offset : offset + _UUID_LEN]
            offset += _UUID_LEN
        reactions: list[dict[str, object]] = []
        if flags & _HAS_REACTIONS:
            reactions, offset = _unpack_reactions(data, offset)
        if flags & ~_ALL_FLAGS:
            raise PackingError("unknown flags in packed message")
        # Ids go in as their 16 bytes: pydantic-core turns those into UUIDs faster than uuid.UUID does.
        return Message.model_validate(
            {
                "id": raw_id,
                "chat_id": chat_id,
                "sender_id": sender,
                "content": data[offset:].decode(),
                "created_at": _moment(created),
                "edited_at": edited,
                "deleted_at": deleted,
                "seq": seq,
                "rev": rev,
                "reply_to": reply,
                "reactions": reactions,
            }
        )
    except (struct.error, UnicodeDecodeError, OverflowError, ValidationError) as error:
        raise PackingError(f"malformed packed message ({type(error).__name__})") from None
