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
HEAD = [
    "the",
    "to",
    "and",
    "you",
    "a",
    "i",
    "it",
    "is",
    "that",
    "of",
    "in",
    "for",
    "on",
    "me",
    "my",
    "this",
    "we",
    "be",
    "have",
    "not",
    "with",
    "so",
    "but",
    "just",
    "are",
    "was",
    "do",
    "at",
    "what",
    "can",
    "if",
    "your",
    "no",
    "all",
    "it's",
    "get",
    "like",
    "ok",
    "will",
    "good",
    "up",
    "know",
    "about",
    "out",
    "now",
    "yes",
    "one",
    "there",
    "time",
    "how",
    "go",
    "think",
    "when",
    "see",
    "they",
    "today",
    "tomorrow",
    "from",
    "then",
    "he",
    "she",
    "meeting",
    "call",
    "later",
    "thanks",
]
SYLLABLES = [
    "ba",
    "be",
    "bi",
    "bo",
    "bu",
    "ca",
    "ce",
    "ci",
    "co",
    "cu",
    "da",
    "de",
    "di",
    "do",
    "du",
    "fa",
    "fe",
    "fi",
    "fo",
    "ga",
    "ge",
    "gi",
    "go",
    "ha",
    "he",
    "hi",
    "ho",
    "ka",
    "ke",
    "ki",
    "ko",
    "la",
    "le",
    "li",
    "lo",
    "lu",
    "ma",
    "me",
    "mi",
    "mo",
    "mu",
    "na",
    "ne",
    "ni",
    "no",
    "nu",
    "pa",
    "pe",
    "pi",
    "po",
    "ra",
    "re",
    "ri",
    "ro",
    "ru",
    "sa",
    "se",
    "si",
    "so",
    "su",
    "ta",
    "te",
    "ti",
    "to",
    "tu",
    "va",
    "ve",
    "vi",
    "vo",
    "wa",
    "we",
    "wi",
    "za",
    "ze",
    "zi",
    "zo",
    "tra",
    "pre",
    "pro",
    "str",
    "ent",
    "ion",
    "ing",
    "er",
    "an",
    "on",
]
RUSSIAN = [
    "при",
    "вет",
    "как",
    "де",
    "ла",
    "хо",
    "ро",
    "шо",
    "зав",
    "тра",
    "встре",
    "ча",
    "кни",
    "га",
    "ра",
    "бо",
    "та",
    "до",
    "ма",
    "мо",
    "ло",
    "ко",
    "ёл",
    "ка",
]
GERMAN = ["über", "straße", "grüße", "schön", "müller", "fährt", "größe", "bäcker", "mädchen", "würde", "können", "tür"]
CHINESE = [
    "我们",
    "今天",
    "明天",
    "学习",
    "中文",
    "工作",
    "会议",
    "朋友",
    "时间",
    "问题",
    "开始",
    "电话",
    "晚上",
    "知道",
    "现在",
    "谢谢",
    "东西",
    "地方",
    "事情",
    "喜欢",
]


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
        assert size is not None
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


def _queries(corpus: Corpus, rng: random.Random) -> dict[str, list[str]]:
    """Query texts per class (see the module docstring)."""
    words = corpus.words
    mid = words[200:2000]
    return {
        "common": words[:5],
        "mid": rng.sample(mid, 20),
        "rare": rng.sample(words[10_000:20_000], 20),
        "typing": [w[:n] for w in rng.sample(mid, 10) for n in (1, 2, 3)],
        "two_words": [f"{a} {b}" for a, b in zip(rng.sample(mid, 10), rng.sample(words[20:200], 10), strict=True)],
        "cjk": CHINESE[:10],
        "none": ["qqqzzzxxy", "zzyzzyva"],
        "in_chat": rng.sample(mid, 20),
    }


async def _explain(conn: asyncpg.Connection, claims: str, sql: str, *args: object) -> str:
    async with conn.transaction():
        await conn.execute(SET_CALLER, "authenticated", claims)
        await conn.execute("set local statement_timeout = '300s'")
        rows = await conn.fetch(f"explain (analyze, buffers, costs off) {sql}", *args)
    return "\n".join(row[0] for row in rows)


async def _measure(info: dict[str, Any]) -> dict[str, Any]:
    rng = random.Random(SEED + 1)
    async with httpx.AsyncClient(timeout=60) as http:
        client: AsyncClient = await acreate_client(
            info["api_url"], info["anon_key"], AsyncClientOptions(httpx_client=http, auto_refresh_token=False)
        )
        email = f"bench-{uuid.uuid4().hex[:8]}@example.com"
        signed_up = await client.auth.sign_up({"email": email, "password": PASSWORD})
        assert signed_up.user is not None and signed_up.session is not None
        user = uuid.UUID(signed_up.user.id)
        print("   loading 1,000,000 messages", flush=True)
        loaded = await _load(info["db_url"], user)
        print(f"   loaded: {loaded['copy_s']} s copy, {loaded['gin_build_s']} s index", flush=True)
        chats: list[uuid.UUID] = loaded.pop("chats")
        corpus: Corpus = loaded.pop("corpus")
        queries = _queries(corpus, rng)

        direct = await asyncpg.connect(str(info["db_url"]).replace("postgres:postgres@", "authenticator:postgres@"))
        owner = await asyncpg.connect(info["db_url"])
        claims = json.dumps({"sub": str(user), "role": "authenticated", "aud": "authenticated"})

        async def via_client(text: str, chat: uuid.UUID | None) -> int:
            params = {"p_query": text, "p_chat_id": str(chat) if chat else None, "p_limit": 30}
            response = await client.rpc("search_messages", params).execute()
            assert isinstance(response.data, list)
            return len(response.data)

        async def via_sql(text: str, chat: uuid.UUID | None) -> int:
            async with direct.transaction():
                await direct.execute(SET_CALLER, "authenticated", claims)
                rows = await direct.fetch(SEARCH, text, chat)
            return len(rows)

        plan: list[tuple[str, str, uuid.UUID | None]] = []
        for name, texts in queries.items():
            for _ in range(RUNS_PER_CLASS):
                chat = rng.choice(chats[:USER_CHATS]) if name == "in_chat" else None
                plan.append((name, rng.choice(texts), chat))
        rng.shuffle(plan)
        warm = [(name, text, chat) for name, text, chat in plan[:WARMUP]]
        times: dict[str, dict[str, list[float]]] = {path: {name: [] for name in queries} for path in ("client", "sql")}
        hits: dict[str, list[int]] = {name: [] for name in queries}
        for index, (name, text, chat) in enumerate(warm + plan):
            order = [("client", via_client), ("sql", via_sql)]
            if index % 2:
                order.reverse()
            counts = []
            for path, call in order:
                started = time.perf_counter()
                found = await call(text, chat)
                elapsed = time.perf_counter() - started
                counts.append(found)
                if index >= WARMUP:
                    times[path][name].append(elapsed)
            assert counts[0] == counts[1], (name, text, counts)
            if index >= WARMUP:
                hits[name].append(counts[0])

        print("   explain, the naive plan, inserts", flush=True)
        explains = {
            "common_word": await _explain(direct, claims, SEARCH, queries["common"][0], None),
            "rare_word": await _explain(direct, claims, SEARCH, queries["rare"][0], None),
        }
        # Inside the function: the candidates query as its owner runs it, with the values bound.
        await owner.execute("select set_config('request.jwt.claims', $1, false)", claims)
        my_chats = chats[:USER_CHATS]
        # The two plans search_candidates chooses between, as its owner runs them with the values bound:
        # the per-chat walk for a common word, the GIN index for a rare one.
        walk = (
            "select x.id from unnest($1::uuid[]) as c (id) cross join lateral ("
            " select m.id, m.created_at from public.chat_messages m"
            " where m.session_id = c.id and m.search_vector @@ $2 and m.deleted_at is null"
            " order by m.created_at desc, m.id desc limit 31) as x"
            " order by x.created_at desc, x.id desc limit 31"
        )
        gin = (
            "select m.id from public.chat_messages m where m.session_id = any ($1) and m.search_vector @@ $2"
            " and m.deleted_at is null order by m.created_at desc, m.id desc limit 31"
        )
        for label, sql, text in (
            ("candidates_common_word_walk", walk, queries["common"][0]),
            ("candidates_common_word_if_gin_plan", gin, queries["common"][0]),
            ("candidates_rare_word_gin", gin, queries["rare"][0]),
        ):
            rows = await owner.fetch(
                f"explain (analyze, buffers, costs off) {sql}",
                my_chats,
                await owner.fetchval("select private.search_query($1)", text),
            )
            explains[label] = "\n".join(row[0] for row in rows)
        # The naive plan: the same search as the caller, straight over the table under RLS (no helper).
        naive_sql = (
            "select m.id from public.chat_messages m where m.search_vector @@ private.search_query($1)"
            " and m.deleted_at is null order by m.created_at desc, m.id desc limit 31"
        )
        naive_times = []
        for text in (queries["rare"][0], queries["mid"][0], queries["common"][0]):
            async with direct.transaction():
                await direct.execute(SET_CALLER, "authenticated", claims)
                # Slow by design: past the API roles' 8 s statement timeout.
                await direct.execute("set local statement_timeout = '300s'")
                started = time.perf_counter()
                await direct.fetch(naive_sql, text)
                naive_times.append(time.perf_counter() - started)
        explains["naive_rls_rare_word"] = await _explain(direct, claims, naive_sql, queries["rare"][0])

        # What the vector costs a message insert: the same insert with and without it, side by side.
        write_chat = chats[0]
        insert_times: dict[str, list[float]] = {"with_vector": [], "plain_copy_table": []}
        await owner.execute("create table public.bench_plain (like public.chat_messages including defaults)")
        await owner.execute("alter table public.bench_plain drop column search_vector")
        line_rng = Corpus(SEED + 2)
        for round_ in range(200):
            text = line_rng.line()
            for target in ("with_vector", "plain_copy_table"):
                started = time.perf_counter()
                if target == "with_vector":
                    await owner.execute(
                        "insert into public.chat_messages (session_id, sender_id, content) values ($1, $2, $3)",
                        write_chat,
                        user,
                        text,
                    )
                else:
                    await owner.execute(
                        "insert into public.bench_plain (id, session_id, sender_id, content, seq, rev)"
                        " values (gen_random_uuid(), $1, $2, $3, $4, $4)",
                        write_chat,
                        user,
                        text,
                        round_ + 1,
                    )
                insert_times[target].append(time.perf_counter() - started)
        await owner.execute("drop table public.bench_plain")
        await direct.close()
        await owner.close()

    all_client = [t for values in times["client"].values() for t in values]
    all_sql = [t for values in times["sql"].values() for t in values]
    return {
        "messages": CHATS * MESSAGES_PER_CHAT,
        "chats": CHATS,
        "user_chats": USER_CHATS,
        "load": loaded,
        "queries": queries,
        "client": summary_ms(all_client),
        "sql": summary_ms(all_sql),
        "by_class": {
            name: {
                "client": summary_ms(times["client"][name]),
                "sql": summary_ms(times["sql"][name]),
                "hits_p50": sorted(hits[name])[len(hits[name]) // 2],
            }
            for name in queries
        },
        "ratio_p50": round(summary_ms(all_client)["p50_ms"] / summary_ms(all_sql)["p50_ms"], 2),
        "goal": "through the client p50 <= 30 ms, p99 <= 100 ms",
        "naive_rls_ms": [round(t * 1000, 1) for t in naive_times],
        "insert_ms": {
            "with_vector": summary_ms(insert_times["with_vector"]),
            "plain_copy_table": summary_ms(insert_times["plain_copy_table"]),
        },
        "explain": explains,
        "note": (
            "client: supabase.rpc('search_messages') through the gateway; sql: asyncpg as authenticator, the role "
            "and claims set as PostgREST does, then the same function. Taken in turns per query. naive_rls_ms: "
            "the search written as a plain query as the caller (rare, mid, common word): no GIN under RLS. "
            "insert_ms: with_vector is a real message insert (triggers, broadcasts, the vector, the GIN index); "
            "plain_copy_table the same row into a copy of the table without vector, triggers or indexes: an "
            "upper bound of what the vector costs, not the vector alone."
        ),
    }


def run() -> dict[str, Any]:
    with throwaway_stack() as (_, info):
        return asyncio.run(_measure(info))
