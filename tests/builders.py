"""Realistic domain objects for cache tests: chats, members, summaries and messages."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from desktop_chat.dal.live import LiveSync
from desktop_chat.models import (
    Chat,
    ChatDetails,
    ChatId,
    ChatMember,
    ChatSummary,
    MemberRole,
    Message,
    MessageId,
    UserId,
    new_message_id,
)

BASE_TIME = datetime(2026, 11, 26, 9, 30, tzinfo=UTC)
_WORDS = tuple(
    " ".join(
        [
            "the meeting moved to thursday can you send the draft before lunch I think we should ship it",
            "sounds good thanks see you tomorrow did anyone test the build on windows yes it works for me",
            "let me check the logs the cache was cold ok 👍 great news about the release",
        ]
    ).split()
)


def new_user() -> UserId:
    return UserId(uuid.uuid4())


def new_chat_id() -> ChatId:
    return ChatId(uuid.uuid4())


def text(rng: random.Random, words: int | None = None) -> str:
    count = words if words is not None else rng.choice((2, 4, 7, 10, 15, 25))
    return " ".join(rng.choice(_WORDS) for _ in range(count)).capitalize()


def message(
    session: ChatId,
    seq: int,
    *,
    sender: UserId | None = None,
    content: str | None = None,
    rev: int | None = None,
    rng: random.Random | None = None,
    edited: bool = False,
) -> Message:
    rng = rng or random.Random(seq)
    created = BASE_TIME + timedelta(seconds=seq * 37, microseconds=seq * 101)
    return Message(
        id=MessageId(new_message_id()),
        chat_id=session,
        sender_id=sender if sender is not None else UserId(uuid.UUID(int=rng.getrandbits(128))),
        content=content if content is not None else text(rng),
        created_at=created,
        edited_at=created + timedelta(minutes=2) if edited else None,
        seq=seq,
        rev=rev if rev is not None else seq,
    )


def messages(session: ChatId, first: int, last: int, *, seed: int = 1) -> list[Message]:
    """Messages ``first..last`` (by seq) of a chat between three people."""
    rng = random.Random(seed)
    people = [UserId(uuid.UUID(int=rng.getrandbits(128))) for _ in range(3)]
    return [message(session, seq, sender=rng.choice(people), rng=rng) for seq in range(first, last + 1)]


def chat_row(session: ChatId, *, title: str = "Release planning", last_seq: int = 0) -> Chat:
    return Chat(
        id=session,
        title=title,
        created_by=None,
        created_at=BASE_TIME,
        updated_at=BASE_TIME,
        last_message_at=BASE_TIME + timedelta(minutes=last_seq) if last_seq else None,
        last_seq=last_seq,
        last_rev=last_seq,
    )


def chat_details(session: ChatId, *members: UserId, title: str = "Release planning") -> ChatDetails:
    return ChatDetails(
        chat=chat_row(session, title=title, last_seq=12),
        members=tuple(
            ChatMember(
                chat_id=session,
                user_id=member,
                role=MemberRole.OWNER if index == 0 else MemberRole.MEMBER,
                joined_at=BASE_TIME,
                last_read_seq=10,
                display_name=f"member {index}",
            )
            for index, member in enumerate(members)
        ),
    )


def chat_summary(session: ChatId, *, title: str = "Release planning", last_seq: int = 12) -> ChatSummary:
    return ChatSummary(
        chat=chat_row(session, title=title, last_seq=last_seq),
        role=MemberRole.MEMBER,
        last_read_seq=last_seq - 2,
        unread_count=2,
        last_message=message(session, last_seq),
    )


def bare_live_sync(**options: Any) -> LiveSync:
    """A ``LiveSync`` with nothing to apply to (no cache, reads, outbox or listener): for tests that replace
    its apply step with a recorder. ``options`` are its keyword arguments (``frame_interval``)."""
    unused = cast(Any, None)
    return LiveSync(
        UserId(uuid.uuid4()),
        cache=unused,
        reads=unused,
        tasks=_Spawner(),
        pending=unused,
        on_incoming=unused,
        **options,
    )


class _Spawner:
    """What ``LiveSync`` needs of the app's task group: running a batch in a task."""

    def spawn(self, coroutine: Awaitable[Any], name: str) -> asyncio.Task[Any]:
        return asyncio.ensure_future(coroutine)
