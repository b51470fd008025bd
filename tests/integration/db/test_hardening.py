"""Schema holes found by the adversarial pass (issue 10, item 6), each checked as PostgREST runs a request.

These use only what the schema had before the fix (plain inserts and updates), so that each of them fails
against the schema without its fix.
"""

from __future__ import annotations

import datetime as dt
import uuid

import asyncpg
import pytest

from tests.integration.db.conftest import Db

pytestmark = pytest.mark.integration


async def test_senders_cannot_edit_or_delete_messages_of_a_deleted_chat(db: Db) -> None:
    owner, member = await db.new_user("Owner"), await db.new_user("Member")
    chat = await db.new_chat(owner, member)
    mine = await db.post(member, chat, "before the chat was deleted")
    async with db.as_user(owner) as conn:
        await conn.execute("update public.chat_sessions set deleted_at = now() where id = $1", chat)
    async with db.as_user(member) as conn:
        edited = await conn.execute("update public.chat_messages set content = 'rewritten' where id = $1", mine["id"])
        deleted = await conn.execute("update public.chat_messages set deleted_at = now() where id = $1", mine["id"])
    assert (edited, deleted) == ("UPDATE 0", "UPDATE 0")
    row = await db.pool.fetchrow("select content, deleted_at from public.chat_messages where id = $1", mine["id"])
    assert row is not None and (row["content"], row["deleted_at"]) == ("before the chat was deleted", None)


async def test_a_chat_is_deleted_at_the_servers_time_whatever_the_client_sends(db: Db) -> None:
    owner = await db.new_user("Owner")
    chat = await db.new_chat(owner)
    claimed = dt.datetime(2001, 1, 1, tzinfo=dt.UTC)
    async with db.as_user(owner) as conn:
        before = await conn.fetchval("select now()")
        stored = await conn.fetchval(
            "update public.chat_sessions set deleted_at = $2 where id = $1 returning deleted_at", chat, claimed
        )
    assert stored == before  # the transaction's time, not the client's
    async with db.as_user(owner) as conn:
        again = await conn.fetchval(
            "update public.chat_sessions set deleted_at = $2 where id = $1 returning deleted_at",
            chat,
            dt.datetime(2099, 1, 1, tzinfo=dt.UTC),
        )
    assert again == stored  # a deleted chat keeps the date it was deleted at


async def test_an_id_used_in_a_chat_one_cannot_see_is_answered_as_any_new_id(db: Db) -> None:
    """Inserting a message whose id exists in someone else's chat must answer exactly as a fresh id does,
    with a plain insert and with ignore-duplicates (the app's idempotent send): the answer must not tell
    whether the id exists."""
    alice, mallory = await db.new_user("Alice"), await db.new_user("Mallory")
    alices_chat = await db.new_chat(alice)
    secret = await db.post(alice, alices_chat, "private")
    # What PostgREST sends for upsert(..., ignore_duplicates=True) without on_conflict: the primary key.
    key = await db.pool.fetchval(
        "select string_agg(quote_ident(a.attname), ', ' order by k.n)"
        " from pg_index i cross join unnest(i.indkey) with ordinality k (attnum, n)"
        " join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum"
        " where i.indrelid = 'public.chat_messages'::regclass and i.indisprimary"
    )

    async def insert(message_id: uuid.UUID, suffix: str) -> object:
        chat = await db.new_chat(mallory)
        try:
            async with db.as_user(mallory) as conn:
                stored = await conn.fetchval(
                    f"insert into public.chat_messages (id, session_id, content) values ($1, $2, 'probe'){suffix}"
                    " returning session_id",
                    message_id,
                    chat,
                )
        except asyncpg.PostgresError as error:
            return type(error).__name__
        return "stored" if stored == chat else stored

    for suffix in ("", f" on conflict ({key}) do nothing"):
        assert await insert(secret["id"], suffix) == await insert(uuid.uuid4(), suffix) == "stored", suffix
    # Alice's message is untouched; the copies of its id are Mallory's own messages in her own chats.
    rows = await db.pool.fetch(
        "select session_id, sender_id, content from public.chat_messages where id = $1", secret["id"]
    )
    assert sorted((row["session_id"] == alices_chat, row["sender_id"] == alice, row["content"]) for row in rows) == [
        (False, False, "probe"),
        (False, False, "probe"),
        (True, True, "private"),
    ]


async def test_someone_elses_id_in_the_same_chat_is_refused_as_a_taken_key(db: Db) -> None:
    """Within one chat an id is the sender's: another member re-using it gets the unique violation a taken
    key gets (and never the other's row), with ignore-duplicates too."""
    alice, bob = await db.new_user("Alice"), await db.new_user("Bob")
    chat = await db.new_chat(alice, bob)
    hers = await db.post(alice, chat, "mine")
    for suffix in ("", " on conflict (id, session_id) do nothing"):
        with pytest.raises(asyncpg.UniqueViolationError):
            async with db.as_user(bob) as conn:
                await conn.execute(
                    f"insert into public.chat_messages (id, session_id, content) values ($1, $2, 'me too'){suffix}",
                    hers["id"],
                    chat,
                )
    assert await db.pool.fetchval("select last_seq from public.chat_sessions where id = $1", chat) == 1
