"""A compact binary form for cached messages. Pure.

Messages are most of what the cache holds (by default up to 200 per chat, 200 chats per user), so
they get a packed form instead of JSON: 57 bytes plus the text (41 without a sender), against about 230
plus the text for pydantic's JSON without defaults (``bench/bench_cache.py`` measures both: 110 against
280 bytes for realistic messages). The chat id is not stored; it comes from the cache key, which the
codec authenticates.

Layout, little-endian::

    flags   u8     bit 0: sender_id present, bit 1: edited_at present, bit 2: deleted_at present
    id      16     message id (UUID bytes)
    created i64    microseconds since the Unix epoch, UTC
    seq     u64
    rev     u64
    sender  16     if flag 0
    edited  i64    if flag 1
    deleted i64    if flag 2
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
    | {"delivery", "error"}
)

_FIXED = struct.Struct("<B16sqQQ")
_TIME = struct.Struct("<q")
_UUID_LEN = 16
_HAS_SENDER = 1
_HAS_EDITED = 2
_HAS_DELETED = 4
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
    parts.append(message.content.encode())
    return b"".join(parts)


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
        if flags & ~(_HAS_SENDER | _HAS_EDITED | _HAS_DELETED):
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
            }
        )
    except (struct.error, UnicodeDecodeError, OverflowError, ValidationError) as error:
        raise PackingError(f"malformed packed message ({type(error).__name__})") from None
