"""The packed message form: exact round trips, refusals, and a guard for new Message fields."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given

from desktop_chat.cache.packing import PACKED_FIELDS, PackingError, pack_message, unpack_message
from desktop_chat.models import ChatId, DeliveryState, Message
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
    [b"", b"\x00" * 10, b"\x01" + b"\x00" * 40, b"\x08" + b"\x00" * 50, b"\x00" + b"\x00" * 40 + b"\xff\xfe"],
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
