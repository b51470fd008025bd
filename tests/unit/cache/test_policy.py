"""TTL policy and caps: values from Settings, freshness, newest-N trimming, LRU victims."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from desktop_chat.cache.keys import KeyKind
from desktop_chat.cache.policy import CachePolicy, chat_victims, newest_by_seq
from desktop_chat.config import Settings
from desktop_chat.models import ChatId


def test_defaults_come_from_settings() -> None:
    policy = CachePolicy.from_settings(Settings())
    assert policy.fresh_ttl(KeyKind.RECENT) == 300
    assert policy.fresh_ttl(KeyKind.CHAT) == 1800
    assert policy.fresh_ttl(KeyKind.MSGS) == 900
    assert policy.max_messages_per_chat == 200
    assert policy.max_chats_per_user == 200


def test_settings_overrides_reach_the_policy() -> None:
    settings = Settings(
        cache_ttl_recent=7,
        cache_ttl_chat=8,
        cache_ttl_messages=9,
        cache_keep_days=2,
        cache_max_messages_per_chat=60,
        cache_max_chats_per_user=6,
    )
    policy = CachePolicy.from_settings(settings)
    grace = 2 * 24 * 3600
    assert [policy.store_ttl(kind) for kind in KeyKind] == [7 + grace, 8 + grace, 9 + grace]
    assert policy.index_ttl == 9 + grace
    assert (policy.max_messages_per_chat, policy.max_chats_per_user) == (60, 6)


def test_by_default_an_entry_stays_usable_for_a_month_after_its_ttl() -> None:
    """TTLs decide when to revalidate, not whether to show: a day-old recent list is still served."""
    policy = CachePolicy.from_settings(Settings())
    day = 24 * 3600
    assert policy.store_ttl(KeyKind.RECENT) == 300 + 30 * day
    assert not policy.is_fresh(policy.store_ttl(KeyKind.RECENT) - 301)  # past its TTL: stale, still there


def test_an_entry_is_fresh_until_only_the_grace_is_left() -> None:
    policy = CachePolicy(stale_grace=60)
    assert policy.is_fresh(61)
    assert not policy.is_fresh(60)
    assert not policy.is_fresh(0.5)
    assert policy.is_fresh(None)  # no expiry at all


@pytest.mark.parametrize(
    "bad",
    [{"ttl_recent": 0}, {"stale_grace": -1}, {"max_messages_per_chat": 0}, {"max_chats_per_user": 0}],
)
def test_nonsense_policies_are_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must"):
        CachePolicy(**bad)  # type: ignore[arg-type]


@given(st.lists(st.integers(min_value=1, max_value=500)), st.integers(min_value=0, max_value=50))
def test_newest_by_seq_keeps_the_highest_seqs_ascending(seqs: list[int], limit: int) -> None:
    kept = newest_by_seq(seqs, lambda s: s, limit)
    assert kept == sorted(set(seqs))[-limit:] if limit else kept == []


def test_newest_by_seq_lets_a_later_duplicate_win() -> None:
    assert newest_by_seq([(1, "a"), (2, "b"), (1, "c")], lambda item: item[0], 5) == [(1, "c"), (2, "b")]


def test_chat_victims_are_the_least_recently_used_but_never_the_one_in_use() -> None:
    chats = [ChatId(uuid.UUID(int=i)) for i in range(6)]
    assert chat_victims(chats, cap=6) == []
    assert chat_victims(chats, cap=4) == chats[:2]
    # The chat in use looks oldest (a clock went back): the next oldest go instead.
    assert chat_victims(chats, cap=4, keep=chats[0]) == chats[1:3]
