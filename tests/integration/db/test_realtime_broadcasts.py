"""Broadcast from the database: what the triggers write to ``realtime.messages``, topic by topic.

Every test uses users and chats of its own, so each topic holds exactly what the test did.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from tests.integration.db.conftest import Db

pytestmark = pytest.mark.integration


async def sent(db: Db, topic: str) -> list[tuple[str, dict[str, Any]]]:
    """``(event, payload)`` of the private broadcasts written to ``topic``, oldest first.

    Rows of one transaction share ``inserted_at``; they are told apart by ``rev`` or ``seq``, so a test
    makes changes without either in transactions of their own.
    """
    rows = await db.pool.fetch(
        "select event, payload, private, extension from realtime.messages where topic = $1"
        " order by inserted_at, (payload -> 'record' ->> 'rev')::bigint nulls first, (payload ->> 'seq')::bigint",
        topic,
    )
    assert all(row["private"] and row["extension"] == "broadcast" for row in rows)
    return [(row["event"], _json(row["payload"])) for row in rows]


def _json(value: Any) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(value) if isinstance(value, str) else value
    return result


async def people(db: Db, count: int) -> list[uuid.UUID]:
    return [await db.new_user(f"user{index}") for index in range(count)]


def change(payload: dict[str, Any]) -> tuple[str, str, dict[str, Any] | None, dict[str, Any] | None]:
    """The broadcast_changes shape, with the id realtime.send adds checked and dropped."""
    assert set(payload) == {"id", "schema", "table", "operation", "record", "old_record"}, payload
    uuid.UUID(payload["id"])
    assert payload["schema"] == "public"
    return payload["table"], payload["operation"], payload["record"], payload["old_record"]


async def test_a_new_message_goes_to_the_chat_and_a_notice_to_every_member(db: Db) -> None:
    owner, member = await people(db, 2)
    session = await db.new_chat(owner, member)
    before = {person: len(await sent(db, f"user:{person}")) for person in (owner, member)}
    message = await db.post(owner, session, "hello there")

    events = [item for item in await sent(db, f"chat:{session}") if item[0] == "message"]
    assert len(events) == 1
    table, operation, record, old_record = change(events[0][1])
    assert (table, operation, old_record) == ("chat_messages", "INSERT", None)
    assert record is not None
    assert (record["id"], record["content"], record["seq"], record["rev"]) == (
        str(message["id"]),
        "hello there",
        message["seq"],
        message["rev"],
    )
    for person in (owner, member):
        notices = (await sent(db, f"user:{person}"))[before[person] :]
        assert [event for event, _ in notices] == ["activity"]
        notice = notices[0][1]
        assert notice.pop("id")
        assert notice.pop("created_at")
        assert notice == {
            "chat_id": str(session),
            "message_id": str(message["id"]),
            "sender_id": str(owner),
            "seq": message["seq"],
            "rev": message["rev"],
            "preview": "hello there",
        }


async def test_edits_and_deletes_send_the_new_row_only(db: Db) -> None:
    owner, member = await people(db, 2)
    session = await db.new_chat(owner, member)
    message = await db.post(owner, session, "first words")
    notices = len(await sent(db, f"user:{member}"))
    async with db.as_user(owner) as conn:
        await conn.execute("update public.chat_messages set content = 'second words' where id = $1", message["id"])
        await conn.execute("update public.chat_messages set content = 'second words' where id = $1", message["id"])
        await conn.execute("update public.chat_messages set deleted_at = now() where id = $1", message["id"])
    events = [change(payload) for event, payload in await sent(db, f"chat:{session}") if event == "message"]
    assert [(operation, record["content"], record["rev"]) for _, operation, record, _ in events if record] == [
        ("INSERT", "first words", message["rev"]),
        ("UPDATE", "second words", message["rev"] + 1),  # the no-op update took no rev and sent nothing
        ("UPDATE", "", message["rev"] + 2),
    ]
    assert all(old is None for *_, old in events)
    # Neither the old text nor the deleted text travels again, and nobody's user topic hears of it.
    assert "first words" not in str(events[1:])
    assert len(await sent(db, f"user:{member}")) == notices


async def test_membership_changes_reach_the_chat_and_the_member(db: Db) -> None:
    owner, newcomer = await people(db, 2)
    session = await db.new_chat(owner)
    async with db.as_user(owner) as conn:
        await conn.execute("insert into public.chat_members (session_id, user_id) values ($1, $2)", session, newcomer)
    async with db.as_user(owner) as conn:
        await conn.execute("delete from public.chat_members where session_id = $1 and user_id = $2", session, newcomer)
    on_chat = [change(payload) for event, payload in await sent(db, f"chat:{session}") if event == "member"]
    on_user = [change(payload) for event, payload in await sent(db, f"user:{newcomer}")]
    expected = [("INSERT", str(newcomer), None), ("DELETE", None, str(newcomer))]
    for seen in (on_chat[-2:], on_user):
        assert [
            (operation, record and record["user_id"], old and old["user_id"]) for _, operation, record, old in seen
        ] == expected
    assert on_user[0][2] is not None and on_user[0][2]["session_id"] == str(session)


async def test_a_read_position_goes_to_the_readers_own_topic_and_as_a_compact_read_event_to_the_chat(db: Db) -> None:
    owner, reader = await people(db, 2)
    session = await db.new_chat(owner, reader)
    await db.post(owner, session)
    on_chat = len(await sent(db, f"chat:{session}"))
    on_reader = len(await sent(db, f"user:{reader}"))
    on_owner = len(await sent(db, f"user:{owner}"))
    async with db.as_user(reader) as conn:
        await conn.execute(
            "update public.chat_members set last_read_seq = 1 where session_id = $1 and user_id = $2", session, reader
        )
        await conn.execute(
            "update public.chat_members set last_read_seq = 1 where session_id = $1 and user_id = $2", session, reader
        )
    # The chat hears only the compact `read` event (20261205100200_read_receipts.sql), once.
    assert [event for event, _ in (await sent(db, f"chat:{session}"))[on_chat:]] == ["read"]
    assert len(await sent(db, f"user:{owner}")) == on_owner
    news = (await sent(db, f"user:{reader}"))[on_reader:]
    assert len(news) == 1  # the repeated update changed nothing and sent nothing
    event, payload = news[0]
    _, operation, record, _ = change(payload)
    assert (event, operation, record and record["last_read_seq"]) == ("member", "UPDATE", 1)


async def test_renames_and_deletes_reach_the_chat_and_every_member_but_new_messages_do_not(db: Db) -> None:
    owner, member = await people(db, 2)
    session = await db.new_chat(owner, member)
    await db.post(owner, session)  # bumps the chat's counters: no "chat" event
    async with db.as_user(owner) as conn:
        await conn.execute("update public.chat_sessions set title = 'renamed' where id = $1", session)
    async with db.as_user(owner) as conn:
        await conn.execute("update public.chat_sessions set deleted_at = now() where id = $1", session)
    for topic in (f"chat:{session}", f"user:{owner}", f"user:{member}"):
        events = [change(payload) for event, payload in await sent(db, topic) if event == "chat"]
        assert [
            (operation, record and record["title"], record and record["deleted_at"] is not None)
            for _, operation, record, _ in events
        ] == [
            ("UPDATE", "renamed", False),
            ("UPDATE", "renamed", True),
        ], topic


async def test_a_purged_chat_says_so_on_its_topic(db: Db) -> None:
    owner, member = await people(db, 2)
    session = await db.new_chat(owner, member)
    await db.post(owner, session)
    await db.pool.execute("delete from public.chat_sessions where id = $1", session)
    events = [(event, change(payload)) for event, payload in await sent(db, f"chat:{session}")]
    chat_events = [(operation, old and old["id"]) for event, (_, operation, _, old) in events if event == "chat"]
    assert chat_events == [("DELETE", str(session))]
    removals = [change(payload) for event, payload in await sent(db, f"user:{member}") if event == "member"]
    assert removals[-1][1] == "DELETE"


async def test_big_chats_announce_at_most_one_message_per_window(db: Db) -> None:
    # Up to 50 members every message is announced; above, the first of each 2-second window only.
    small_owner, *small_members = await people(db, 50)
    small = await db.new_chat(small_owner, *small_members[:49])
    big_owner, *big_members = await people(db, 51)
    big = await db.new_chat(big_owner, *big_members)

    async def burst(session: uuid.UUID, owner: uuid.UUID) -> None:
        # Two messages in one transaction share now(), so they fall into one window whatever the clock.
        async with db.as_user(owner) as conn:
            for text in ("one", "two"):
                await conn.execute(
                    "insert into public.chat_messages (id, session_id, content) values ($1, $2, $3)",
                    uuid.uuid4(),
                    session,
                    text,
                )

    await burst(small, small_owner)
    await burst(big, big_owner)
    small_notices = [
        payload["preview"] for event, payload in await sent(db, f"user:{small_members[0]}") if event == "activity"
    ]
    big_notices = [payload for event, payload in await sent(db, f"user:{big_members[0]}") if event == "activity"]
    assert small_notices == ["one", "two"]
    assert [payload["preview"] for payload in big_notices] == ["one"]
    assert (
        await db.pool.fetchval(
            "select count(*) from realtime.messages where event = 'activity' and payload ->> 'chat_id' = $1", str(big)
        )
        == 51
    )

    # A message after a quiet spell opens a new window: one dated 3 s back (as only the server may)
    # is announced, and so is the next, 3 s after it.
    await db.pool.execute(
        "insert into public.chat_messages (id, session_id, sender_id, content, created_at)"
        " values ($1, $2, $3, 'pause', now() - interval '3 seconds')",
        uuid.uuid4(),
        big,
        big_owner,
    )
    await db.post(big_owner, big, "three")
    big_notices = [payload for event, payload in await sent(db, f"user:{big_members[0]}") if event == "activity"]
    assert [(payload["preview"], payload["seq"]) for payload in big_notices] == [("one", 1), ("pause", 3), ("three", 4)]


async def test_a_broadcast_that_fails_never_fails_the_write(db: Db) -> None:
    owner, member = await people(db, 2)
    session = await db.new_chat(owner, member)
    async with db.pool.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        try:
            # Without today's partition every broadcast insert fails (as on a project whose partitions
            # were not created); the message and the membership change must be written all the same.
            today = await conn.fetchval("select 'realtime.messages_' || to_char(now(), 'YYYY_MM_DD')")
            await conn.execute(f"alter table realtime.messages detach partition {today}")
            await conn.execute(
                "select set_config('role', 'authenticated', true), set_config('request.jwt.claims', $1, true)",
                json.dumps({"sub": str(owner), "role": "authenticated"}),
            )
            seq = await conn.fetchval(
                "insert into public.chat_messages (id, session_id, content) values ($1, $2, 'still sent')"
                " returning seq",
                uuid.uuid4(),
                session,
            )
            removed = await conn.execute(
                "delete from public.chat_members where session_id = $1 and user_id = $2", session, member
            )
            assert (seq, removed) == (1, "DELETE 1")
            assert await conn.fetchval("select count(*) from realtime.messages") == 0
        finally:
            await transaction.rollback()  # the partition comes back
