"""The codec: round trips per kind, and every way a value can be unusable is a CodecError."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from desktop_chat.cache.codec import SCHEMA_VERSION, Codec, CodecError
from desktop_chat.cache.keys import chat_key, msgs_key, recent_key
from desktop_chat.cache.secret import CacheSecret
from desktop_chat.models import Message
from tests.builders import chat_details, chat_summary, message, new_chat_id, new_user
from tests.unit.cache.strategies import confirmed_messages

SECRET = CacheSecret.generate()
CODEC = Codec(SECRET)
ALICE, BOB = new_user(), new_user()
CHAT, OTHER_CHAT = new_chat_id(), new_chat_id()


def test_recent_round_trip() -> None:
    chats = (chat_summary(CHAT), chat_summary(OTHER_CHAT, title="Book club", last_seq=3))
    key = recent_key(ALICE)
    assert CODEC.decode_recent(key, CODEC.encode_recent(key, chats)) == chats


def test_chat_round_trip() -> None:
    details = chat_details(CHAT, ALICE, BOB)
    key = chat_key(ALICE, CHAT)
    assert CODEC.decode_chat(key, CODEC.encode_chat(key, details)) == details


@settings(max_examples=50)
@given(st.data())
def test_message_round_trip(data: st.DataObject) -> None:
    original: Message = data.draw(confirmed_messages(CHAT))
    key = msgs_key(ALICE, CHAT)
    seq, envelope = CODEC.encode_message(key, original)
    assert seq == original.seq
    assert CODEC.decode_message(key, seq, envelope) == original


def test_values_are_encrypted() -> None:
    secret_words = "the launch code is 4711"
    envelope = CODEC.encode_message(msgs_key(ALICE, CHAT), message(CHAT, 1, content=secret_words))[1]
    assert secret_words.encode() not in envelope
    assert b"Release planning" not in CODEC.encode_chat(chat_key(ALICE, CHAT), chat_details(CHAT, ALICE))


def test_each_seal_uses_a_fresh_nonce() -> None:
    key = chat_key(ALICE, CHAT)
    details = chat_details(CHAT, ALICE)
    assert CODEC.encode_chat(key, details) != CODEC.encode_chat(key, details)


@pytest.mark.parametrize("position", [0, 1, 3, 7, 20, -1, -17])
def test_any_flipped_byte_makes_the_value_unusable(position: int) -> None:
    key = chat_key(ALICE, CHAT)
    envelope = bytearray(CODEC.encode_chat(key, chat_details(CHAT, ALICE)))
    envelope[position] ^= 0x01
    with pytest.raises(CodecError):
        CODEC.decode_chat(key, bytes(envelope))


def test_truncated_values_are_unusable() -> None:
    key = chat_key(ALICE, CHAT)
    envelope = CODEC.encode_chat(key, chat_details(CHAT, ALICE))
    for size in (0, 5, 33, len(envelope) - 1):
        with pytest.raises(CodecError):
            CODEC.decode_chat(key, envelope[:size])


def test_a_value_sealed_with_another_key_is_unusable() -> None:
    key = chat_key(ALICE, CHAT)
    envelope = Codec(CacheSecret.generate()).encode_chat(key, chat_details(CHAT, ALICE))
    with pytest.raises(CodecError) as caught:
        CODEC.decode_chat(key, envelope)
    assert caught.value.reason == "key"


def test_the_same_key_id_with_other_key_material_fails_authentication() -> None:
    impostor = Codec(CacheSecret(key_id=SECRET.key_id, key=CacheSecret.generate().key))
    key = chat_key(ALICE, CHAT)
    with pytest.raises(CodecError) as caught:
        CODEC.decode_chat(key, impostor.encode_chat(key, chat_details(CHAT, ALICE)))
    assert caught.value.reason == "auth"


def test_alices_value_under_bobs_key_is_rejected() -> None:
    details = chat_details(CHAT, ALICE, BOB)  # both are members: only the key binding tells them apart
    envelope = CODEC.encode_chat(chat_key(ALICE, CHAT), details)
    with pytest.raises(CodecError) as caught:
        CODEC.decode_chat(chat_key(BOB, CHAT), envelope)
    assert caught.value.reason == "auth"
    recent = CODEC.encode_recent(recent_key(ALICE), [chat_summary(CHAT)])
    with pytest.raises(CodecError):
        CODEC.decode_recent(recent_key(BOB), recent)


def test_a_message_moved_to_another_chat_or_position_is_rejected() -> None:
    key = msgs_key(ALICE, CHAT)
    seq, envelope = CODEC.encode_message(key, message(CHAT, 5))
    with pytest.raises(CodecError):
        CODEC.decode_message(msgs_key(ALICE, OTHER_CHAT), seq, envelope)
    with pytest.raises(CodecError):
        CODEC.decode_message(key, 6, envelope)
    with pytest.raises(CodecError):
        CODEC.decode_message(msgs_key(BOB, CHAT), seq, envelope)


def test_list_heads_are_bound_to_their_list() -> None:
    head = CODEC.list_head(msgs_key(ALICE, CHAT))
    CODEC.check_list_head(msgs_key(ALICE, CHAT), head)
    with pytest.raises(CodecError):
        CODEC.check_list_head(msgs_key(BOB, CHAT), head)
    # A message blob is no head, even for the same list.
    _, blob = CODEC.encode_message(msgs_key(ALICE, CHAT), message(CHAT, 1))
    with pytest.raises(CodecError):
        CODEC.check_list_head(msgs_key(ALICE, CHAT), blob)


def test_another_schema_version_is_a_miss() -> None:
    key = chat_key(ALICE, CHAT)
    older = Codec(SECRET, schema_version=SCHEMA_VERSION + 1).encode_chat(key, chat_details(CHAT, ALICE))
    with pytest.raises(CodecError) as caught:
        CODEC.decode_chat(key, older)
    assert caught.value.reason == "schema"


def test_a_value_of_another_kind_does_not_validate() -> None:
    # Same key bytes as context, wrong shape inside: sealed correctly, yet not a ChatDetails.
    key = chat_key(ALICE, CHAT)
    envelope = CODEC.seal(b'{"not": "a chat"}', key.redis_key.encode())
    with pytest.raises(CodecError) as caught:
        CODEC.decode_chat(key, envelope)
    assert caught.value.reason == "invalid"


def test_details_of_another_chat_are_refused_both_ways() -> None:
    with pytest.raises(ValueError, match="another chat"):
        CODEC.encode_chat(chat_key(ALICE, OTHER_CHAT), chat_details(CHAT, ALICE))
    with pytest.raises(ValueError, match="another chat"):
        CODEC.encode_message(msgs_key(ALICE, OTHER_CHAT), message(CHAT, 1))
    forged = CODEC.seal(
        chat_details(CHAT, ALICE).model_dump_json().encode(), chat_key(ALICE, OTHER_CHAT).redis_key.encode()
    )
    with pytest.raises(CodecError):
        CODEC.decode_chat(chat_key(ALICE, OTHER_CHAT), forged)


def test_keys_of_the_wrong_kind_are_a_bug() -> None:
    with pytest.raises(ValueError, match="cannot hold"):
        CODEC.encode_recent(chat_key(ALICE, CHAT), [])
    with pytest.raises(ValueError, match="confirmed"):
        CODEC.encode_message(msgs_key(ALICE, CHAT), message(CHAT, 1).model_copy(update={"seq": None}))
