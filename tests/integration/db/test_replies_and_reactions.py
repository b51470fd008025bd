"""Replies (same chat only, enforced by the database) and reactions (members only, only one's own, counts on
the message with a new rev, broadcasts), under row level security as the API roles see it."""

from __future__ import annotations

import json
import uuid
from typing import Any

import asyncpg
import pytest

from tests.integration.db.conftest import Db
from tests.integration.db.test_realtime_broadcasts import change, sent

pytestmark = pytest.mark.integration


async def reply(
    db: Db, user: uuid.UUID, chat: uuid.UUID, to: uuid.UUID | None, message_id: uuid.UUID | None = None
) -> asyncpg.Record | None:
    async with db.as_user(user) as conn:
        return await conn.fetchrow(
            "insert into public.chat_messages (id, session_id, content, reply_to) values ($1, $2, 'an answer', $3)"
            " on conflict do nothing returning id, seq, rev, reply_to",
            message_id or uuid.uuid4(),
            chat,
            to,
        )


async def react(db: Db, user: uuid.UUID, chat: uuid.UUID, message: uuid.UUID, emoji: str) -> int:
    """Rows added (0 when it was there already): the outbox's idempotent add."""
    async with db.as_user(user) as conn:
        status = await conn.execute(
            "insert into public.message_reactions (session_id, message_id, emoji) values ($1, $2, $3)"
            " on conflict do nothing",
            chat,
            message,
            emoji,
        )
    return int(status.split()[-1])


async def unreact(db: Db, user: uuid.UUID, chat: uuid.UUID, message: uuid.UUID, emoji: str) -> int:
    async with db.as_user(user) as conn:
        status = await conn.execute(
            "delete from public.message_reactions where session_id = $1 and message_id = $2 and user_id = $3"
            " and emoji = $4",
            chat,
            message,
            user,
            emoji,
        )
    return int(status.split()[-1])


async def message_row(db: Db, message: uuid.UUID) -> asyncpg.Record:
    row = await db.pool.fetchrow(
        "select rev, edited_at, reactions, reply_to, deleted_at from public.chat_messages where id = $1", message
    )
    assert row is not None
    return row


def counts(row: asyncpg.Record) -> list[tuple[str, int]]:
    value: list[dict[str, Any]] = json.loads(row["reactions"])
    return [(item["emoji"], item["count"]) for item in value]


# --- replies -----------------------------------------------------------------------------------------


async def test_a_reply_names_a_message_of_the_same_chat(db: Db) -> None:
    a, b = await db.new_user("A"), await db.new_user("B")
    chat = await db.new_chat(a, b)
    original = await db.post(a, chat, "question?")
    answer = await reply(db, b, chat, original["id"])
    assert answer is not None and answer["reply_to"] == original["id"]
    async with db.as_user(a) as conn:
        seen = await conn.fetchval("select reply_to from public.chat_messages where id = $1", answer["id"])
    assert seen == original["id"]


async def test_a_reply_to_another_chat_or_to_nothing_is_refused_alike(db: Db) -> None:
    a, b = await db.new_user("A"), await db.new_user("B")
    mine, theirs = await db.new_chat(a, b), await db.new_chat(b)
    elsewhere = await db.post(b, theirs, "in another chat")
    mine_too = await db.new_chat(a)
    own_elsewhere = await db.post(a, mine_too, "in a chat of mine, but another one")
    errors = []
    for target in (elsewhere["id"], own_elsewhere["id"], uuid.uuid4()):
        with pytest.raises(asyncpg.ForeignKeyViolationError) as caught:
            await reply(db, a, mine, target)
        errors.append(caught.value)
    assert all(error.constraint_name == "chat_messages_reply_in_same_chat" for error in errors)
    # The same words whether the target exists elsewhere or nowhere: nothing to learn about other chats.
    assert len({str(error) for error in errors}) == 1


async def test_a_resent_reply_is_one_row_with_one_seq(db: Db) -> None:
    a = await db.new_user("A")
    chat = await db.new_chat(a)
    original = await db.post(a, chat, "first")
    message_id = uuid.uuid4()
    first = await reply(db, a, chat, original["id"], message_id)
    again = await reply(db, a, chat, original["id"], message_id)
    assert first is not None and again is None
    assert await db.pool.fetchval("select last_seq from public.chat_sessions where id = $1", chat) == first["seq"]


async def test_a_reply_outlives_its_original_being_deleted(db: Db) -> None:
    a, b = await db.new_user("A"), await db.new_user("B")
    chat = await db.new_chat(a, b)
    original = await db.post(a, chat, "soon gone")
    answer = await reply(db, b, chat, original["id"])
    assert answer is not None
    async with db.as_user(a) as conn:
        await conn.execute("update public.chat_messages set deleted_at = now() where id = $1", original["id"])
        rows = await conn.fetch(
            "select id, reply_to, deleted_at, content from public.chat_messages where id = any($1::uuid[])",
            [original["id"], answer["id"]],
        )
    by_id = {row["id"]: row for row in rows}
    assert by_id[answer["id"]]["reply_to"] == original["id"]
    assert by_id[original["id"]]["deleted_at"] is not None and by_id[original["id"]]["content"] == ""


async def test_reply_to_cannot_change_and_a_purge_takes_replies_along(db: Db) -> None:
    a = await db.new_user("A")
    chat = await db.new_chat(a)
    original = await db.post(a, chat, "one")
    other = await db.post(a, chat, "two")
    answer = await reply(db, a, chat, original["id"])
    assert answer is not None
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with db.as_user(a) as conn:
            await conn.execute("update public.chat_messages set reply_to = $1 where id = $2", other["id"], answer["id"])
    with pytest.raises(asyncpg.CheckViolationError, match="reply_to"):
        await db.pool.execute("update public.chat_messages set reply_to = $1 where id = $2", other["id"], answer["id"])
    await db.pool.execute("delete from public.chat_sessions where id = $1", chat)
    assert await db.pool.fetchval("select count(*) from public.chat_messages where session_id = $1", chat) == 0


async def test_a_reply_is_broadcast_with_reply_to_and_without_the_search_vector(db: Db) -> None:
    a = await db.new_user("A")
    chat = await db.new_chat(a)
    original = await db.post(a, chat, "root")
    answer = await reply(db, a, chat, original["id"])
    assert answer is not None
    events = [payload for event, payload in await sent(db, f"chat:{chat}") if event == "message"]
    _, operation, record, _ = change(events[-1])
    assert operation == "INSERT" and record is not None
    assert record["reply_to"] == str(original["id"])
    assert record["reactions"] == []
    assert "search_vector" not in record


# --- reactions ---------------------------------------------------------------------------------------


async def test_reactions_count_on_the_message_and_take_a_new_rev(db: Db) -> None:
    a, b = await db.new_user("A"), await db.new_user("B")
    chat = await db.new_chat(a, b)
    message = await db.post(a, chat, "lunch?")
    start = await message_row(db, message["id"])

    assert await react(db, b, chat, message["id"], "👍") == 1
    after_one = await message_row(db, message["id"])
    assert counts(after_one) == [("👍", 1)]
    assert after_one["rev"] > start["rev"] and after_one["edited_at"] is None
    assert await db.pool.fetchval("select last_rev from public.chat_sessions where id = $1", chat) == after_one["rev"]

    assert await react(db, a, chat, message["id"], "👍") == 1
    assert await react(db, a, chat, message["id"], "🍕") == 1
    assert counts(await message_row(db, message["id"])) == [("👍", 2), ("🍕", 1)]

    # Adding again changes nothing (not even rev): the outbox may resend.
    before = await message_row(db, message["id"])
    assert await react(db, a, chat, message["id"], "👍") == 0
    assert (await message_row(db, message["id"]))["rev"] == before["rev"]

    assert await unreact(db, a, chat, message["id"], "👍") == 1
    assert await unreact(db, a, chat, message["id"], "👍") == 0
    after = await message_row(db, message["id"])
    assert counts(after) == [("👍", 1), ("🍕", 1)]
    assert after["rev"] > before["rev"]


async def test_back_fill_by_rev_brings_the_reacted_message(db: Db) -> None:
    a, b = await db.new_user("A"), await db.new_user("B")
    chat = await db.new_chat(a, b)
    message = await db.post(a, chat, "vote")
    cursor = await db.pool.fetchval("select last_rev from public.chat_sessions where id = $1", chat)
    await react(db, b, chat, message["id"], "🎉")
    async with db.as_user(a) as conn:
        rows = await conn.fetch(
            "select id, reactions from public.chat_messages where session_id = $1 and rev > $2 order by rev",
            chat,
            cursor,
        )
    assert [(row["id"], counts(row)) for row in rows] == [(message["id"], [("🎉", 1)])]


async def test_outsiders_see_and_react_to_nothing_and_nobody_forges_a_reaction(db: Db) -> None:
    a, b, mallory = await db.new_user("A"), await db.new_user("B"), await db.new_user("Mallory")
    chat = await db.new_chat(a, b)
    message = await db.post(a, chat, "members only")
    await react(db, b, chat, message["id"], "❤️")

    async with db.as_user(mallory) as conn:
        assert await conn.fetch("select * from public.message_reactions where session_id = $1", chat) == []
        assert await conn.fetch("select * from public.message_reactions($1, 1, 10)", chat) == []
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security"):
        await react(db, mallory, chat, message["id"], "❤️")
    # Mallory's own chat does not help: the message is not in it (and the answer does not say whether it exists).
    mallorys = await db.new_chat(mallory)
    with pytest.raises(asyncpg.ForeignKeyViolationError):
        await react(db, mallory, mallorys, message["id"], "❤️")
    with pytest.raises(asyncpg.ForeignKeyViolationError):
        await react(db, mallory, mallorys, uuid.uuid4(), "❤️")

    # A member cannot react as someone else, nor remove or change someone else's reaction.
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security"):
        async with db.as_user(a) as conn:
            await conn.execute(
                "insert into public.message_reactions (session_id, message_id, user_id, emoji)"
                " values ($1, $2, $3, '😡')",
                chat,
                message["id"],
                b,
            )
    async with db.as_user(a) as conn:
        removed = await conn.execute(
            "delete from public.message_reactions where session_id = $1 and user_id = $2", chat, b
        )
    assert removed == "DELETE 0"
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with db.as_user(b) as conn:
            await conn.execute("update public.message_reactions set emoji = '😡' where session_id = $1", chat)
    assert counts(await message_row(db, message["id"])) == [("❤️", 1)]
    # Nor can anyone write the summary by hand.
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with db.as_user(a) as conn:
            await conn.execute(
                'update public.chat_messages set reactions = \'[{"emoji": "👍", "count": 99}]\' where id = $1',
                message["id"],
            )


async def test_no_reactions_on_deleted_messages_or_in_deleted_chats_or_after_leaving(db: Db) -> None:
    a, b = await db.new_user("A"), await db.new_user("B")
    chat = await db.new_chat(a, b)
    gone = await db.post(a, chat, "deleted soon")
    await react(db, b, chat, gone["id"], "👍")
    async with db.as_user(a) as conn:
        await conn.execute("update public.chat_messages set deleted_at = now() where id = $1", gone["id"])
    assert counts(await message_row(db, gone["id"])) == []
    with pytest.raises(asyncpg.CheckViolationError, match="deleted message"):
        await react(db, b, chat, gone["id"], "❤️")
    assert await unreact(db, b, chat, gone["id"], "👍") == 1  # taking one's own back is fine

    kept = await db.post(a, chat, "still here")
    async with db.as_user(b) as conn:
        await conn.execute("delete from public.chat_members where session_id = $1 and user_id = $2", chat, b)
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await react(db, b, chat, kept["id"], "👍")
    async with db.as_user(a) as conn:
        await conn.execute("update public.chat_sessions set deleted_at = now() where id = $1", chat)
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await react(db, a, chat, kept["id"], "👍")


@pytest.mark.parametrize(
    "emoji",
    ["👍", "❤️", "👍🏽", "👨‍👩‍👧‍👦", "🇺🇦", "1️⃣", "🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f", "©"],
)
async def test_emoji_that_are_accepted(db: Db, emoji: str) -> None:
    a = await db.new_user("A")
    chat = await db.new_chat(a)
    message = await db.post(a, chat, "react")
    assert await react(db, a, chat, message["id"], emoji) == 1


@pytest.mark.parametrize("emoji", ["", " ", "👍 ", "lol", "+1", "1", "a👍", "👍\n", "\u0007👍", "👍" * 17, "\t"])
async def test_emoji_that_are_refused(db: Db, emoji: str) -> None:
    a = await db.new_user("A")
    chat = await db.new_chat(a)
    message = await db.post(a, chat, "react")
    with pytest.raises(asyncpg.CheckViolationError, match="message_reactions_emoji_valid"):
        await react(db, a, chat, message["id"], emoji)


async def test_at_most_twenty_reactions_per_person_and_message(db: Db) -> None:
    a = await db.new_user("A")
    chat = await db.new_chat(a)
    message = await db.post(a, chat, "react")
    faces = [chr(0x1F600 + n) for n in range(21)]
    for face in faces[:20]:
        await react(db, a, chat, message["id"], face)
    with pytest.raises(asyncpg.CheckViolationError, match="at most 20"):
        await react(db, a, chat, message["id"], faces[20])


async def test_reactions_are_broadcast_to_the_chat_after_the_message(db: Db) -> None:
    a, b = await db.new_user("A"), await db.new_user("B")
    chat = await db.new_chat(a, b)
    message = await db.post(a, chat, "news")
    before = len(await sent(db, f"chat:{chat}"))
    await react(db, b, chat, message["id"], "😮")
    added_events = (await sent(db, f"chat:{chat}"))[before:]
    await unreact(db, b, chat, message["id"], "😮")
    removed_events = (await sent(db, f"chat:{chat}"))[before + len(added_events) :]
    # One transaction each: its rows share inserted_at, so only what was sent is compared, not the order.
    assert sorted(event for event, _ in added_events) == ["message", "reaction"]
    assert sorted(event for event, _ in removed_events) == ["message", "reaction"]
    added_by = dict(added_events)
    removed_by = dict(removed_events)
    _, _, record, _ = change(added_by["message"])
    assert (
        record is not None
        and record["id"] == str(message["id"])
        and record["reactions"] == [{"emoji": "😮", "count": 1}]
    )
    table, operation, added, old = change(added_by["reaction"])
    assert (table, operation, old) == ("message_reactions", "INSERT", None)
    assert added is not None
    assert (added["session_id"], added["message_id"], added["user_id"], added["emoji"]) == (
        str(chat),
        str(message["id"]),
        str(b),
        "😮",
    )
    _, _, record, _ = change(removed_by["message"])
    assert record is not None and record["reactions"] == [] and record["rev"] > change(added_by["message"])[2]["rev"]  # type: ignore[index]
    table, operation, record, removed = change(removed_by["reaction"])
    assert (table, operation, record) == ("message_reactions", "DELETE", None)
    assert removed is not None and removed["emoji"] == "😮"


async def test_message_reactions_names_who_reacted_and_whether_i_did(db: Db) -> None:
    people = [await db.new_user(f"P{n}") for n in range(5)]
    chat = await db.new_chat(people[0], *people[1:])
    first = await db.post(people[0], chat, "one")
    second = await db.post(people[0], chat, "two")
    await db.post(people[0], chat, "three, nobody reacts")
    for person in people:
        await react(db, person, chat, first["id"], "👍")
    await react(db, people[3], chat, first["id"], "🔥")
    await react(db, people[1], chat, second["id"], "👀")
    async with db.as_user(people[1]) as conn:
        rows = await conn.fetch(
            "select * from public.message_reactions($1, $2, $3, 3)", chat, first["seq"], first["seq"] + 2
        )
    summary = [(row["seq"], row["emoji"], row["count"], row["mine"]) for row in rows]
    assert summary == [
        (first["seq"], "👍", 5, True),
        (first["seq"], "🔥", 1, False),
        (second["seq"], "👀", 1, True),
    ]
    thumbs = json.loads(rows[0]["users"])
    assert [item["display_name"] for item in thumbs] == ["P0", "P1", "P2"]  # the first three, by time
    with pytest.raises(asyncpg.InvalidParameterValueError, match="at most 500"):
        async with db.as_user(people[1]) as conn:
            await conn.fetch("select * from public.message_reactions($1, 1, 1000)", chat)


async def test_concurrent_reactions_to_one_message_all_count(db: Db) -> None:
    import asyncio

    people = [await db.new_user(f"C{n}") for n in range(8)]
    chat = await db.new_chat(people[0], *people[1:])
    message = await db.post(people[0], chat, "everyone react at once")

    async def one(person: uuid.UUID, emoji: str) -> None:
        await react(db, person, chat, message["id"], emoji)

    await asyncio.gather(*(one(person, emoji) for person in people for emoji in ("👍", "🎉")))
    assert counts(await message_row(db, message["id"])) in ([("👍", 8), ("🎉", 8)], [("🎉", 8), ("👍", 8)])
    revs = await db.pool.fetchval(
        "select last_rev - (select rev from public.chat_messages where id = $2)"
        " from public.chat_sessions where id = $1",
        chat,
        message["id"],
    )
    assert revs == 0


async def test_a_reaction_and_a_reply_to_its_message_queue_instead_of_deadlocking(db: Db) -> None:
    """A reply's foreign key check takes a key-share lock on the original while its insert holds the chat
    row; a reaction to that original holds the message row while it waits for the chat row. The two
    locks must not conflict (the app's outbox sends a reply and a reaction at the same moment)."""
    import asyncio

    alice = await db.new_user("Alice")
    bob = await db.new_user("Bob")
    chat = await db.new_chat(alice, bob)
    original = await db.post(bob, chat, "lunch?")
    async with db.as_user(alice) as writer:
        # Alice's first message takes the chat row's lock until her transaction ends...
        await writer.execute(
            "insert into public.chat_messages (id, session_id, content) values ($1, $2, 'one moment')",
            uuid.uuid4(),
            chat,
        )
        # ...so bob's reaction locks the message and then waits for the chat row,
        reaction = asyncio.create_task(react(db, bob, chat, original["id"], "👍"))
        async with asyncio.timeout(10):
            while not await db.pool.fetchval(  # noqa: ASYNC110 - polling the server's lock table
                "select exists (select 1 from pg_stat_activity where wait_event_type = 'Lock'"
                " and query like '%message_reactions%')"
            ):
                await asyncio.sleep(0.02)
        # ...while alice's reply checks its original exists (a key-share lock on that same message row).
        await writer.execute(
            "insert into public.chat_messages (id, session_id, content, reply_to) values ($1, $2, 'yes!', $3)",
            uuid.uuid4(),
            chat,
            original["id"],
        )
    assert await reaction == 1
    assert counts(await message_row(db, original["id"])) == [("👍", 1)]
