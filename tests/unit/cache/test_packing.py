"""The packed message form: exact round trips, refusals, and a guard for new Message fields."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given

from desktop_chat.cache.packing import PACKED_FIELDS, PackingError, pack_message, unpack_message
from desktop_chat.models import ChatId, DeliveryState, Message, MessageId, ReactionCount
from tests.builders import message, new_chat_id
from tests.unit.cache.strategies import confirmed_messages


@given(confirmed_messages())
def test_round_trip_is_exact(original: Message) -> None:
    back = unpack_message(pack_message(original), original.chat_id)
    assert back == original
    # Same instants; the packed form hands them back in UTC.
    assert back.created_at.utcoffset() is not None


def test_every_message_field_is_packed() -> None:
    # A new Message field must be added to the packed layout (and SCHEMA_VERSION bumped) or consciously
    # listed in PACKED_FIELDS; otherwise a cached message would silently lose it.
    assert set(Message.model_fields) == PACKED_FIELDS


def test_packed_form_is_compact() -> None:
    msg = message(new_chat_id(), 42, content="See you at ten")
    assert len(pack_message(msg)) == 41 + 16 + len(b"See you at ten")
    assert len(pack_message(msg)) < len(msg.model_dump_json(exclude_defaults=True)) / 2


@pytest.mark.parametrize("change", [{"seq": None}, {"rev": None}, {"delivery": DeliveryState.PENDING}])
def test_unconfirmed_messages_are_refused(change: dict[str, object]) -> None:
    msg = message(new_chat_id(), 1).model_copy(update=change)
    with pytest.raises(PackingError, match="confirmed"):
        pack_message(msg)


def test_naive_timestamps_are_refused() -> None:
    msg = message(new_chat_id(), 1)
    naive = msg.model_copy(update={"created_at": msg.created_at.replace(tzinfo=None)})
    with pytest.raises(PackingError, match="time zone"):
        pack_message(naive)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00" * 10,
        b"\x01" + b"\x00" * 40,
        b"\x08" + b"\x00" * 50,
        b"\x20" + b"\x00" * 50,
        b"\x10" + b"\x00" * 40,
        b"\x00" + b"\x00" * 40 + b"\xff\xfe",
    ],
)
def test_garbage_does_not_unpack(data: bytes) -> None:
    with pytest.raises(PackingError):
        unpack_message(data, ChatId(uuid.uuid4()))


def test_unpacked_values_are_validated() -> None:
    # seq 0 fits the layout but not the model (seq >= 1).
    packed = bytearray(pack_message(message(new_chat_id(), 1)))
    packed[25:33] = (0).to_bytes(8, "little")
    with pytest.raises(PackingError):
        unpack_message(bytes(packed), ChatId(uuid.uuid4()))


def test_reply_and_reactions_round_trip_and_cost_only_when_present() -> None:
    plain = message(new_chat_id(), 7, content="Sure")
    original = uuid.uuid4()
    rich = plain.model_copy(
        update={
            "reply_to": MessageId(original),
            "reactions": (ReactionCount(emoji="👍", count=3), ReactionCount(emoji="👨‍👩‍👧‍👦", count=1)),
        }
    )
    back = unpack_message(pack_message(rich), rich.chat_id)
    assert back.reply_to == original
    assert [(r.emoji, r.count) for r in back.reactions] == [("👍", 3), ("👨‍👩‍👧‍👦", 1)]
    emoji_bytes = len("👍".encode()) + len("👨‍👩‍👧‍👦".encode())
    assert len(pack_message(rich)) == len(pack_message(plain)) + 16 + 1 + 2 * (1 + 4) + emoji_bytes


@pytest.mark.parametrize("cut", [1, 5, 9])
def test_truncated_reactions_do_not_unpack(cut: int) -> None:
    msg = message(new_chat_id(), 1, content="").model_copy(update={"reactions": (ReactionCount(emoji="👍", count=3),)})
    packed = pack_message(msg)
    with pytest.raises(PackingError):
        unpack_message(packed[:-cut], msg.chat_id)
