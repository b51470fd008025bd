"""The key scheme: every key names its user; kinds and sessions are where they must be."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from desktop_chat.cache.keys import (
    CacheKey,
    KeyKind,
    chat_key,
    chats_index_key,
    msgs_key,
    parse_key,
    recent_key,
)
from desktop_chat.models import ChatId, UserId

ALICE = UserId(uuid.UUID("a11ce000-0000-4000-8000-000000000001"))
CHAT = ChatId(uuid.UUID("c0000000-0000-4000-8000-00000000a0b0"))


def test_keys_follow_the_documented_scheme() -> None:
    assert recent_key(ALICE).redis_key == "dc:v1:a11ce000-0000-4000-8000-000000000001:recent"
    assert chat_key(ALICE, CHAT).redis_key == (
        "dc:v1:a11ce000-0000-4000-8000-000000000001:chat:c0000000-0000-4000-8000-00000000a0b0"
    )
    assert str(msgs_key(ALICE, CHAT)) == (
        "dc:v1:a11ce000-0000-4000-8000-000000000001:msgs:c0000000-0000-4000-8000-00000000a0b0"
    )
    assert chats_index_key(ALICE) == "dc:v1:a11ce000-0000-4000-8000-000000000001:chats"


def test_a_kind_takes_a_session_exactly_when_it_is_per_chat() -> None:
    with pytest.raises(ValueError, match="takes no"):
        CacheKey(ALICE, KeyKind.RECENT, CHAT)
    with pytest.raises(ValueError, match="needs a"):
        CacheKey(ALICE, KeyKind.MSGS)


uuids = st.uuids()
keys = st.one_of(
    st.builds(lambda u: recent_key(UserId(u)), uuids),
    st.builds(lambda u, s: chat_key(UserId(u), ChatId(s)), uuids, uuids),
    st.builds(lambda u, s: msgs_key(UserId(u), ChatId(s)), uuids, uuids),
)


@given(keys)
def test_parse_key_inverts_redis_key(key: CacheKey) -> None:
    assert parse_key(key.redis_key) == key


@given(keys, keys)
def test_different_keys_never_share_a_name(a: CacheKey, b: CacheKey) -> None:
    assert (a == b) == (a.redis_key == b.redis_key)


@pytest.mark.parametrize(
    "text",
    [
        "dc:v1:meta:key-id",
        f"dc:v1:{ALICE}:chats",
        f"dc:v2:{ALICE}:recent",
        f"dc:v1:{ALICE}:recent:{CHAT}",
        f"dc:v1:{ALICE}:msgs",
        f"dc:v1:{str(ALICE).upper()}:recent",
        f"dc:v1:{ALICE}:msgs:{CHAT}:extra",
    ],
)
def test_parse_key_refuses_what_is_not_an_entry_key(text: str) -> None:
    with pytest.raises(ValueError, match="cache entry key"):
        parse_key(text)
