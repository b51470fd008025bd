"""search_messages: what it finds in which language, prefixes as you type, order and pages, snippets, and
that row level security decides (a user never finds a message of a chat they are not in, or a deleted one).

Every test makes users and chats of its own, so "all my chats" holds exactly what the test wrote.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from desktop_chat.models import SNIPPET_END, SNIPPET_START, split_snippet
from tests.integration.db.conftest import Db

pytestmark = pytest.mark.integration

LINES = {
    "en": "The quarterly reports are finally ready for review",
    "de": "Grüße aus der Straße am Müllerplatz, die Bäckerei öffnet früh",
    "ru": "Встреча перенесена на завтра, ёлка уже стоит в зале",
    "ar": "مرحبا بِالْعَالَمِ، الاجتماع غدا في المكتبة",
    "zh": "我喜欢学习中文，明天开会。",
    "ja": "東京タワーに行きました",
    "ko": "학교에서 친구를 만났어요",
    "mixed": "Meeting 会议 at the Café Zürich, mail bob@example.com or see https://docs.example.org/guide",
}


async def search(
    db: Db, user: uuid.UUID, query: str | None, chat: uuid.UUID | None = None, **keyset: object
) -> list[asyncpg.Record]:
    async with db.as_user(user) as conn:
        return await conn.fetch(
            "select * from public.search_messages($1, $2, $3, $4, $5)",
            query,
            chat,
            keyset.get("before_at"),
            keyset.get("before_id"),
            keyset.get("limit", 30),
        )


async def found(db: Db, user: uuid.UUID, query: str, chat: uuid.UUID | None = None) -> set[str]:
    """The contents of what ``query`` finds."""
    rows = await search(db, user, query, chat)
    async with db.as_user(user) as conn:
        contents = await conn.fetch(
            "select content from public.chat_messages where id = any($1::uuid[])", [r["id"] for r in rows]
        )
    return {row["content"] for row in contents}


@pytest.fixture
async def polyglot(db: Db) -> tuple[uuid.UUID, uuid.UUID]:
    user, other = await db.new_user("Poly"), await db.new_user("Glot")
    chat = await db.new_chat(user, other)
    for line in LINES.values():
        await db.post(other, chat, line)
    return user, chat


@pytest.mark.parametrize(
    ("query", "language"),
    [
        # English: whole words, prefixes, any case, words in any order.
        ("reports", "en"),
        ("REPORT", "en"),
        ("ready quarter", "en"),
        ("fin", "en"),
        # German: umlauts and ß with or without, compounds by their start.
        ("grüße", "de"),
        ("grusse", "de"),
        ("strasse", "de"),
        ("Straße", "de"),
        ("muller", "de"),
        ("bäcker", "de"),
        ("backerei", "de"),
        # Russian: case, prefixes (inflection), ё written as е.
        ("встреча", "ru"),
        ("ВСТРЕЧ", "ru"),
        ("елка", "ru"),
        ("ёлка", "ru"),
        ("перенес", "ru"),
        # Arabic: with or without diacritics, alef forms unified.
        ("مرحبا", "ar"),
        ("بالعالم", "ar"),
        ("بِالْعَالَمِ", "ar"),
        ("الاجتماع", "ar"),
        ("المكت", "ar"),
        # Chinese: any substring of a run, a single character, across the comma.
        ("中文", "zh"),
        ("学习中文", "zh"),
        ("喜欢", "zh"),
        ("中", "zh"),
        ("开会", "zh"),
        # Japanese (kanji and katakana) and Korean (words with particles attached).
        ("タワー", "ja"),
        ("東京", "ja"),
        ("学校", None),
        ("학교", "ko"),
        ("친구", "ko"),
        # Mixed scripts, accents, e-mail and URL pieces, full-width Latin.
        ("会议 cafe", "mixed"),
        ("zurich", "mixed"),
        ("bob@exa", "mixed"),
        ("example", "mixed"),
        ("ｃａｆｅ", "mixed"),
    ],
)
async def test_words_are_found_in_every_language(
    db: Db, polyglot: tuple[uuid.UUID, uuid.UUID], query: str, language: str | None
) -> None:
    user, _ = polyglot
    expected = {LINES[language]} if language else set()
    assert await found(db, user, query) == expected


@pytest.mark.parametrize(
    "query",
    [
        "文中",  # the characters exist, not in this order
        "学中",
        "reportsx",
        "eports",  # not the start of a word
        "ready zebra",  # every word must match
        "タワーX",
    ],
)
async def test_what_is_not_there_is_not_found(db: Db, polyglot: tuple[uuid.UUID, uuid.UUID], query: str) -> None:
    user, _ = polyglot
    assert await found(db, user, query) == set()


async def test_typing_narrows_the_results_letter_by_letter(db: Db) -> None:
    user = await db.new_user("Typist")
    chat = await db.new_chat(user)
    for line in ("tomorrow we meet", "tomato soup", "to be or not", "the end"):
        await db.post(user, chat, line)
    results = [await found(db, user, typed) for typed in ("t", "to", "tom", "toma", "tomat", "tomato")]
    assert results == [
        {"tomorrow we meet", "tomato soup", "to be or not", "the end"},
        {"tomorrow we meet", "tomato soup", "to be or not"},
        {"tomorrow we meet", "tomato soup"},
        {"tomato soup"},
        {"tomato soup"},
        {"tomato soup"},
    ]


@pytest.mark.parametrize(
    "query",
    [
        "",
        "   ",
        "!!!",
        "?!.,;:",
        "&|!()<->",
        "'",
        "''",
        "\\",
        ":*",
        "*",
        "()",
        "!",
        "<->",
        "|",
        "—",
        "…",
        "\u3002",
        None,
    ],
)
async def test_a_query_with_nothing_searchable_finds_nothing_and_is_no_error(
    db: Db, polyglot: tuple[uuid.UUID, uuid.UUID], query: str | None
) -> None:
    user, _ = polyglot
    assert await search(db, user, query) == []


async def test_query_syntax_in_user_text_is_only_text(db: Db) -> None:
    user = await db.new_user("Quoter")
    chat = await db.new_chat(user)
    await db.post(user, chat, "don't panic: it's a & b | c, not !d")
    for query in ("don't", "it's a", "a & b", "b | c", "!d", "panic:*", "'panic'", "(panic)", "d:A", "don\\'t"):
        assert await found(db, user, query) == {"don't panic: it's a & b | c, not !d"}, query


async def test_random_text_never_makes_an_error(db: Db, polyglot: tuple[uuid.UUID, uuid.UUID]) -> None:
    user, _ = polyglot
    rng = random.Random(14)
    alphabet = "ab &|!()<>-:*'\"\\/.,;@#$%^{}[]~`+=_?\t\n中文字Ё\u0301\u064e\ue000\ue001\u200d👍"
    queries = ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 40))) for _ in range(300)]
    async with db.as_user(user) as conn:
        for query in queries:
            await conn.fetch("select id from public.search_messages($1)", query)


async def test_a_query_longer_than_500_characters_is_refused_plainly(db: Db) -> None:
    user = await db.new_user("Verbose")
    with pytest.raises(asyncpg.InvalidParameterValueError, match="limit is 500"):
        await search(db, user, "word " * 101)


async def test_only_members_find_messages_never_deleted_ones_nor_deleted_chats(db: Db) -> None:
    alice, bob, mallory = await db.new_user("Alice"), await db.new_user("Bob"), await db.new_user("Mallory")
    shared = await db.new_chat(alice, bob)
    private = await db.new_chat(bob)
    doomed = await db.new_chat(alice, bob)
    kept = await db.post(bob, shared, "secret plans for friday")
    hidden = await db.post(bob, private, "secret plans of bob alone")
    deleted = await db.post(bob, shared, "secret plans deleted later")
    await db.post(bob, doomed, "secret plans in a chat deleted later")
    async with db.as_user(bob) as conn:
        await conn.execute("update public.chat_messages set deleted_at = now() where id = $1", deleted["id"])
    async with db.as_user(alice) as conn:
        await conn.execute("update public.chat_sessions set deleted_at = now() where id = $1", doomed)

    assert [r["id"] for r in await search(db, alice, "secret")] == [kept["id"]]
    assert {r["id"] for r in await search(db, bob, "secret")} == {kept["id"], hidden["id"]}
    # Naming a chat one is not in finds nothing, and so does an outsider everywhere.
    assert await search(db, alice, "secret", private) == []
    assert await search(db, mallory, "secret") == []
    assert await search(db, mallory, "secret", shared) == []
    # After leaving a chat, its messages are no longer found.
    async with db.as_user(alice) as conn:
        await conn.execute("delete from public.chat_members where session_id = $1 and user_id = $2", shared, alice)
    assert await search(db, alice, "secret") == []


async def test_anon_cannot_search(db: Db) -> None:
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with db.as_user(None, role="anon") as conn:
            await conn.fetch("select * from public.search_messages('x')")


async def test_results_are_newest_first_and_pages_cover_everything_once(db: Db) -> None:
    user, other = await db.new_user("Pager"), await db.new_user("Other")
    chats = [await db.new_chat(user, other) for _ in range(3)]
    base = datetime(2026, 1, 1, tzinfo=UTC)
    expected = []
    # 25 matches over three chats, five of them at one instant (ties broken by id), plus noise.
    async with db.pool.acquire() as conn:
        for index in range(25):
            moment = base + timedelta(minutes=index if index < 20 else 20)
            message_id = uuid.uuid4()
            await conn.execute(
                "insert into public.chat_messages (id, session_id, sender_id, content, created_at)"
                " values ($1, $2, $3, $4, $5)",
                message_id,
                chats[index % 3],
                other,
                f"needle number {index}",
                moment,
            )
            expected.append((moment, message_id))
            await conn.execute(
                "insert into public.chat_messages (session_id, sender_id, content, created_at)"
                " values ($1, $2, 'hay', $3)",
                chats[index % 3],
                other,
                moment,
            )
    expected.sort(reverse=True)

    seen: list[tuple[datetime, uuid.UUID]] = []
    cursor: dict[str, object] = {}
    while True:
        page = await search(db, user, "needle", limit=4, **cursor)
        if not page:
            break
        seen += [(row["created_at"], row["id"]) for row in page]
        cursor = {"before_at": page[-1]["created_at"], "before_id": page[-1]["id"]}
    assert seen == expected

    in_one = await search(db, user, "needle", chats[1])
    assert [(r["created_at"], r["id"]) for r in in_one] == [
        item for i, item in enumerate(expected) if item[1] in {r["id"] for r in in_one}
    ]
    assert {r["chat_id"] for r in in_one} == {chats[1]}
    assert len(in_one) == 8


async def test_a_row_says_where_the_message_is(db: Db) -> None:
    user = await db.new_user("Finder")
    chat = await db.new_chat(user)
    posted = await db.post(user, chat, "look here")
    [row] = await search(db, user, "look")
    assert (row["id"], row["chat_id"], row["seq"], row["sender_id"]) == (posted["id"], chat, posted["seq"], user)
    assert row["created_at"] is not None and row["edited_at"] is None


async def test_an_edit_is_found_by_its_new_text_only(db: Db) -> None:
    user = await db.new_user("Editor")
    chat = await db.new_chat(user)
    posted = await db.post(user, chat, "first draft")
    async with db.as_user(user) as conn:
        await conn.execute("update public.chat_messages set content = 'second version' where id = $1", posted["id"])
    assert await found(db, user, "draft") == set()
    [row] = await search(db, user, "second")
    assert row["edited_at"] is not None


async def test_snippets_mark_the_matches_and_cannot_be_forged(db: Db) -> None:
    user = await db.new_user("Marker")
    chat = await db.new_chat(user)
    await db.post(user, chat, f"The {SNIPPET_START}fake{SNIPPET_END} report is ready for review")
    await db.post(user, chat, "学习中文很有意思，我们明天继续学习。")
    long_text = (
        " ".join(f"filler{n}" for n in range(300)) + " the target word " + " ".join(f"tail{n}" for n in range(300))
    )
    await db.post(user, chat, long_text)

    [row] = await search(db, user, "report rev")
    parts = split_snippet(row["snippet"])
    assert [text for text, marked in parts if marked] == ["report", "review"]
    assert "fake" in "".join(text for text, marked in parts if not marked)  # its markers were not kept
    assert "\ufffd" in row["snippet"]

    [row] = await search(db, user, "学习")
    assert [text for text, marked in split_snippet(row["snippet"]) if marked] == ["学习", "学习"]

    [row] = await search(db, user, "target")
    assert [text for text, marked in split_snippet(row["snippet"]) if marked] == ["target"]
    assert len(row["snippet"]) < 400  # a passage, not the whole message


async def test_a_common_word_walks_each_chat_newest_first_and_pages_alike(db: Db) -> None:
    # Enough matches that the planner expects more than chats x limit x 4 of them: the per-chat walk on
    # (session_id, created_at, id), which must order and page exactly like the GIN plan.
    user = await db.new_user("Walker")
    chats = [await db.new_chat(user) for _ in range(2)]
    base = datetime(2026, 2, 1, tzinfo=UTC)
    expected = []
    async with db.pool.acquire() as conn:
        for index in range(400):
            moment = base + timedelta(seconds=index // 3)  # ties, broken by id
            message_id = uuid.uuid4()
            await conn.execute(
                "insert into public.chat_messages (id, session_id, sender_id, content, created_at)"
                " values ($1, $2, $3, 'walkword everywhere', $4)",
                message_id,
                chats[index % 2],
                user,
                moment,
            )
            expected.append((moment, message_id))
        await conn.execute("analyze public.chat_messages")
    expected.sort(reverse=True)

    seen: list[tuple[datetime, uuid.UUID]] = []
    before: tuple[datetime, uuid.UUID] | None = None
    walks = 0
    async with db.as_user(user) as conn:
        index_scans = "select pg_stat_get_xact_numscans('public.chat_messages_session_id_created_at_idx'::regclass)"
        start = await conn.fetchval(index_scans)
        while len(seen) < 60:
            page = await conn.fetch(
                "select * from public.search_messages('walkw', null, $1, $2, 5)",
                before[0] if before else None,
                before[1] if before else None,
            )
            seen += [(row["created_at"], row["id"]) for row in page]
            before = seen[-1]
        walks = await conn.fetchval(index_scans) - start
    assert seen == expected[:60]
    # The plan this test is about was taken: an index scan of each chat per page that walks (the planner
    # decides per page, from its estimate; the GIN plan makes none).
    assert walks >= 2 and walks % 2 == 0
