"""search: ``search_messages`` over 1,000,000 messages in 1,000 chats, as a user who is in 100 of them
(``python -m bench search``).

The corpus is synthetic but shaped like chat text: short lines (3 to 25 words, a few long ones), words
drawn from a Zipf distribution over a 30,000-word vocabulary whose head is real English function
words ("the" is in about a third of the messages), 3 % Russian, 2 % German with umlauts and 3 % Chinese
lines. Messages are spread over a year, each chat's in order. The bench user is in 100 chats (100,000
messages it may find); the other 900,000 belong to chats it is not in.

Queries, each class drawn from words that occur in the user's chats (seeded):

- ``common``: one of the five most frequent words (matches in 10-40 % of all messages);
- ``mid``: a word of rank 200-2,000; ``rare``: rank 10,000 or more (a few matches in the user's chats);
- ``typing``: what a user has typed 1, 2 and 3 letters into a mid word (prefix queries over many words);
- ``two_words``: two mid words; ``cjk``: a two-character Chinese word; ``none``: a word nobody wrote;
- ``in_chat``: a mid word in one chat (``p_chat_id``).

Each query runs through the official ``supabase`` client (``rpc("search_messages", ...)`` through the
gateway, as PostgREST serves it) and as direct SQL (asyncpg as ``authenticator``: BEGIN, the role and
JWT claims as PostgREST sets them, ``select * from search_messages(...)``, COMMIT), taken in turns in one
loop so both see the same machine. Goal: through the client p50 <= 30 ms, p99 <= 100 ms.

Also measured: EXPLAIN (ANALYZE, BUFFERS) of a common and a rare query as ``authenticated``, and what
the naive plan (the same query as the caller, without the security definer helper) costs, a few runs
only; and the cost the search vector adds to a message insert (triggers on) and the time to build the
index.
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import json
import random
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
from supabase import AsyncClient, AsyncClientOptions, acreate_client

from bench.stats import summary_ms
from devstack.throwaway import throwaway_stack

SEED = 20261205
CHATS = 1000
MESSAGES_PER_CHAT = 1000
USER_CHATS = 100
OTHER_USERS = 200
VOCABULARY = 30_000
RUNS_PER_CLASS = 60
WARMUP = 30
PASSWORD = "password123"
SET_CALLER = "select set_config('role', $1, true), set_config('request.jwt.claims', $2, true)"
SEARCH = "select * from public.search_messages($1, $2, null, null, 30)"

# Real English function words at the head of the distribution, then made-up words.
HEAD = (
    "the to and you a i it is that of in for on me my this we be have not with so but just are was do at "
    "what can if your no all it's get like ok will good up know about out now yes one there time how go "
    "think when see they today tomorrow from then he she meeting call later thanks"
).split()
SYLLABLES = (
    "ba be bi bo bu ca ce ci co cu da de di do du fa fe fi fo ga ge gi go ha he hi ho ka ke ki ko la le li lo "
    "lu ma me mi mo mu na ne ni no nu pa pe pi po ra re ri ro ru sa se si so su ta te ti to tu va ve vi vo "
    "wa we wi za ze zi zo tra pre pro str ent ion ing er an on"
).split()
RUSSIAN = "при вет как де ла хо ро шо зав тра встре ча кни га ра бо та до ма мо ло ко ёл ка".split()
GERMAN = "über straße grüße schön müller fährt größe bäcker mädchen würde können tür".split()
CHINESE = "我们 今天 明天 学习 中文 工作 会议 朋友 时间 问题 开始 电话 晚上 知道 现在 谢谢 东西 地方 事情 喜欢".split()


def _vocabulary(rng: random.Random) -> list[str]:
    words = list(HEAD)
    seen = set(words)
    while len(words) < VOCABULARY:
        word = "".join(rng.choice(SYLLABLES) for _ in range(rng.choice((2, 2, 3, 3, 3, 4))))
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words


class Corpus:
    """Seeded message text: Zipf-distributed words, a few lines in other scripts."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.words = _vocabulary(self.rng)
        weights = [1 / (rank + 1) ** 1.07 for rank in range(len(self.words))]
        self.cumulative = list(itertools.accumulate(weights))

    def line(self) -> str:
        rng = self.rng
        kind = rng.random()
        if kind < 0.03:
            return " ".join("".join(rng.choices(RUSSIAN, k=2)) for _ in range(rng.randint(2, 10)))
        if kind < 0.05:
            return " ".join(rng.choices(GERMAN + self.words[:50], k=rng.randint(3, 12)))
        if kind < 0.08:
            return "".join(rng.choices(CHINESE, k=rng.randint(2, 12))) + "。"
        length = rng.randint(3, 25) if rng.random() < 0.97 else rng.randint(60, 200)
        text = " ".join(rng.choices(self.words, cum_weights=self.cumulative, k=length))
        return text[0].upper() + text[1:] + rng.choice((".", "!", "?", "", ""))


async def _load(db_url: str, user: uuid.UUID) -> dict[str, Any]:
    """Users, chats, members and 1M messages; the user is in the first USER_CHATS chats."""
    rng = random.Random(SEED)
    corpus = Corpus(SEED)
    conn = await asyncpg.connect(db_url)
    try:
        others = [uuid.UUID(int=rng.getrandbits(128), version=4) for _ in range(OTHER_USERS)]
        await conn.executemany(
            "insert into auth.users (id, aud, role, email, raw_user_meta_data)"
            " values ($1, 'authenticated', 'authenticated', $2, jsonb_build_object('display_name', $3::text))",
            [(other, f"other-{i}@example.com", f"Other {i}") for i, other in enumerate(others)],
        )
        chats = [uuid.UUID(int=rng.getrandbits(128), version=4) for _ in range(CHATS)]
        start = datetime(2025, 1, 1, tzinfo=UTC)
        members: dict[uuid.UUID, list[uuid.UUID]] = {}
        for index, chat in enumerate(chats):
            crowd = rng.sample(others, rng.randint(1, 4))
            owner = user if index < USER_CHATS else crowd[0]
            members[chat] = [owner, *[c for c in crowd if c != owner]]
            await conn.execute(
                "insert into public.chat_sessions (id, title, created_by, created_at) values ($1, $2, $3, $4)",
                chat,
                f"chat {index}",
                owner,
                start,
            )
            await conn.executemany(
                "insert into public.chat_members (session_id, user_id, joined_at) values ($1, $2, $3)"
                " on conflict do nothing",
                [(chat, member, start) for member in members[chat][1:]],
            )
        index_sql = await conn.fetchval(
            "select indexdef from pg_indexes where indexname = 'chat_messages_search_vector_idx'"
        )
        await conn.execute("drop index public.chat_messages_search_vector_idx")
        await conn.execute("alter table public.chat_messages disable trigger user")
        year = 365 * 24 * 3600
        load_started = time.perf_counter()
        for chat in chats:
            # Each chat active over the whole year, its messages in order.
            offsets = sorted(rng.uniform(0, year) for _ in range(MESSAGES_PER_CHAT))
            rows = [
                (
                    uuid.UUID(int=rng.getrandbits(128), version=4),
                    chat,
                    rng.choice(members[chat]),
                    corpus.line(),
                    start + timedelta(seconds=offset),
                    seq,
                    seq,
                )
                for seq, offset in enumerate(offsets, start=1)
            ]
            await conn.copy_records_to_table(
                "chat_messages",
                schema_name="public",
                records=rows,
                columns=["id", "session_id", "sender_id", "content", "created_at", "seq", "rev"],
            )
        load_s = time.perf_counter() - load_started
        await conn.execute("alter table public.chat_messages enable trigger user")
        await conn.execute(
            "update public.chat_sessions s set last_seq = $1, last_rev = $1,"
            " last_message_at = (select max(created_at) from public.chat_messages m where m.session_id = s.id)",
            MESSAGES_PER_CHAT,
        )
        await conn.execute("set maintenance_work_mem = '256MB'")
        index_started = time.perf_counter()
        await conn.execute(index_sql)
        index_s = time.perf_counter() - index_started
        await conn.execute("vacuum analyze")
        size = await conn.fetchrow(
            "select pg_size_pretty(pg_table_size('public.chat_messages')) as heap,"
            " pg_size_pretty(pg_relation_size('public.chat_messages_search_vector_idx')) as gin"
        )
        return {
            "copy_s": round(load_s, 1),
            "gin_build_s": round(index_s, 1),
            "heap": size["heap"],
            "gin": size["gin"],
            "chats": chats,
            "corpus": corpus,
        }
    finally:
        await conn.close()
