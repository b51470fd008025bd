"""Values in and out of the cache: serialize, encrypt and bind to their key; the reverse, or a miss.

Every value is sealed in an envelope::

    version u8 | schema u8 | key id 4 | nonce 12 | AES-256-GCM ciphertext and 16-byte tag

The associated data is the envelope header plus the cache key (and, for one message of a list, its
``seq``), so a value copied from alice's key to bob's, from one chat to another, or from one position in
a list to another fails authentication exactly like a tampered byte does. ``SCHEMA_VERSION`` names the
plaintext layout; an entry written by another version is a miss, as is one sealed with another key.

Plaintexts: a recent-chats list and chat details are pydantic JSON without default-valued fields; a
message uses the packed form of ``packing``, about 40 % of the JSON's size.

Nonces are 96 random bits per seal, which keeps the chance of a repeat negligible for far more than the
2^32 seals a key may protect; the key changes whenever the cache is rebuilt anyway.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import TypeAdapter, ValidationError

from desktop_chat.cache.keys import CacheKey, KeyKind
from desktop_chat.cache.packing import PackingError, pack_message, unpack_message
from desktop_chat.cache.secret import CacheSecret
from desktop_chat.models import ChatDetails, ChatSummary, Message

__all__ = ["ENVELOPE_VERSION", "SCHEMA_VERSION", "Codec", "CodecError"]

ENVELOPE_VERSION = 1
# Bump when a cached model or the packed message layout changes: old entries then read as misses.
# 2: chats are "chat"/"chat_id" in the JSON of cached models (were "session")
# 3: messages carry reply_to and reaction counts (packed layout flags 3 and 4)
SCHEMA_VERSION = 3

_HEADER = struct.Struct("<BB4s")
_NONCE_BYTES = 12
_TAG_BYTES = 16
_RECENT = TypeAdapter(tuple[ChatSummary, ...])
_DETAILS = TypeAdapter(ChatDetails)


class CodecError(Exception):
    """A cached value that cannot be used; the caller treats it as a miss and deletes it.

    Attributes:
        reason: ``format``, ``schema``, ``key`` (sealed with another key), ``auth`` (tampered, or moved
            from another key) or ``invalid`` (decrypted but does not validate).
    """

    def __init__(self, reason: str) -> None:
        super().__init__(f"unusable cache value: {reason}")
        self.reason = reason


class Codec:
    """Encodes models for one cache key and decodes them back, authenticated and encrypted.

    Args:
        secret: The install's cache key.
        schema_version: The plaintext layout written and accepted (tests vary it).
        nonce: Source of nonces; random unless a test needs repeatable output.
    """

    def __init__(
        self,
        secret: CacheSecret,
        *,
        schema_version: int = SCHEMA_VERSION,
        nonce: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self._aead = AESGCM(secret.key)
        self._header = _HEADER.pack(ENVELOPE_VERSION, schema_version, secret.key_id)
        self._nonce = nonce
        self.key_id = secret.key_id

    @property
    def overhead(self) -> int:
        """Bytes an envelope adds to its plaintext."""
        return _HEADER.size + _NONCE_BYTES + _TAG_BYTES

    # --- envelope ----------------------------------------------------------------------------------
    def seal(self, plaintext: bytes, context: bytes) -> bytes:
        """Encrypt ``plaintext`` bound to ``context`` (the cache key, and position for list items)."""
        nonce = self._nonce(_NONCE_BYTES)
        return self._header + nonce + self._aead.encrypt(nonce, plaintext, self._header + context)

    def open(self, envelope: bytes, context: bytes) -> bytes:
        """The plaintext sealed for ``context``; ``CodecError`` otherwise."""
        start = _HEADER.size + _NONCE_BYTES
        if len(envelope) < start + _TAG_BYTES:
            raise CodecError("format")
        header = envelope[: _HEADER.size]
        if header != self._header:
            version, _schema, key_id = _HEADER.unpack(header)
            if version != ENVELOPE_VERSION:
                raise CodecError("format")
            if key_id != self.key_id:
                raise CodecError("key")
            raise CodecError("schema")
        try:
            return self._aead.decrypt(envelope[_HEADER.size : start], envelope[start:], header + context)
        except InvalidTag:
            raise CodecError("auth") from None

    # --- typed values ------------------------------------------------------------------------------
    def encode_recent(self, key: CacheKey, chats: Sequence[ChatSummary]) -> bytes:
        _expect(key, KeyKind.RECENT)
        return self.seal(_RECENT.dump_json(tuple(chats), exclude_defaults=True), _context(key))

    def decode_recent(self, key: CacheKey, envelope: bytes) -> tuple[ChatSummary, ...]:
        _expect(key, KeyKind.RECENT)
        plaintext = self.open(envelope, _context(key))
        try:
            return _RECENT.validate_json(plaintext)
        except ValidationError:
            raise CodecError("invalid") from None

    def encode_chat(self, key: CacheKey, details: ChatDetails) -> bytes:
        _expect(key, KeyKind.CHAT)
        if details.chat.id != key.chat_id:
            raise ValueError("chat details stored under another chat's key")
        return self.seal(_DETAILS.dump_json(details, exclude_defaults=True), _context(key))

    def decode_chat(self, key: CacheKey, envelope: bytes) -> ChatDetails:
        _expect(key, KeyKind.CHAT)
        plaintext = self.open(envelope, _context(key))
        try:
            details = _DETAILS.validate_json(plaintext)
        except ValidationError:
            raise CodecError("invalid") from None
        if details.chat.id != key.chat_id:
            raise CodecError("invalid")
        return details

    def encode_message(self, key: CacheKey, message: Message) -> tuple[int, bytes]:
        """The ``(seq, envelope)`` of one confirmed message of ``key``'s list."""
        _expect(key, KeyKind.MSGS)
        if message.chat_id != key.chat_id:
            raise ValueError("message stored under another chat's key")
        try:
            plaintext = pack_message(message)
        except PackingError as error:
            raise ValueError(str(error)) from None
        assert message.seq is not None  # pack_message refuses unconfirmed messages
        return message.seq, self.seal(plaintext, _item_context(key, message.seq))

    def decode_message(self, key: CacheKey, seq: int, envelope: bytes) -> Message:
        _expect(key, KeyKind.MSGS)
        assert key.chat_id is not None
        plaintext = self.open(envelope, _item_context(key, seq))
        try:
            message = unpack_message(plaintext, key.chat_id)
        except PackingError:
            raise CodecError("invalid") from None
        if message.seq != seq:
            raise CodecError("invalid")
        return message

    def list_head(self, key: CacheKey) -> bytes:
        """The marker that says "this list exists" (it may hold no messages); bound to ``key``."""
        _expect(key, KeyKind.MSGS)
        return self.seal(b"", _head_context(key))

    def check_list_head(self, key: CacheKey, envelope: bytes) -> None:
        _expect(key, KeyKind.MSGS)
        if self.open(envelope, _head_context(key)) != b"":
            raise CodecError("invalid")


def _expect(key: CacheKey, kind: KeyKind) -> None:
    if key.kind is not kind:
        raise ValueError(f"a {key.kind} key cannot hold a {kind} value")


def _context(key: CacheKey) -> bytes:
    return key.redis_key.encode()


def _item_context(key: CacheKey, seq: int) -> bytes:
    return f"{key.redis_key}#{seq}".encode()


def _head_context(key: CacheKey) -> bytes:
    return f"{key.redis_key}#head".encode()
