"""Hypothesis strategies for cached models."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import strategies as st

from desktop_chat.models import ChatId, Message, MessageId, ReactionCount, UserId

# Naive bounds are what hypothesis expects; the generated values carry the time zones.
moments = st.datetimes(
    min_value=datetime(1990, 1, 1),  # noqa: DTZ001
    max_value=datetime(2200, 1, 1),  # noqa: DTZ001
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=-7))]),
)


# Single code points, modifiers, ZWJ sequences, flags, keycaps: what the database's emoji check accepts.
EMOJI = (
    "👍",
    "❤️",
    "😂",
    "🎉",
    "👍🏽",
    "👨‍👩‍👧‍👦",
    "🇩🇪",
    "1️⃣",
    "🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f",
)

reaction_counts = st.lists(
    st.builds(ReactionCount, emoji=st.sampled_from(EMOJI), count=st.integers(min_value=1, max_value=2**32 - 1)),
    max_size=len(EMOJI),
    unique_by=lambda reaction: reaction.emoji,
).map(tuple)


def confirmed_messages(session: ChatId | None = None) -> st.SearchStrategy[Message]:
    return st.builds(
        Message,
        id=st.uuids().map(MessageId),
        chat_id=st.just(session) if session is not None else st.uuids().map(ChatId),
        sender_id=st.none() | st.uuids().map(UserId),
        content=st.text(max_size=300),
        created_at=moments,
        edited_at=st.none() | moments,
        deleted_at=st.none() | moments,
        seq=st.integers(min_value=1, max_value=2**63 - 1),
        rev=st.integers(min_value=1, max_value=2**63 - 1),
        reply_to=st.none() | st.uuids().map(MessageId),
        reactions=reaction_counts,
    )
