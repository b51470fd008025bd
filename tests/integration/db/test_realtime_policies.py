"""The row level security policies on ``realtime.messages``: who may read and write which topic.

Each check is made the way Supabase Realtime makes it (lib/realtime/tenants/authorization.ex), in SQL,
not through the gateway: probe rows are inserted by a role that bypasses row level security, then,
as ``authenticated`` with the user's claims and ``realtime.topic`` set, selected back (read) and
inserted afresh (write); all in a transaction that is rolled back.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

import asyncpg
import pytest

from tests.integration.db.conftest import ALICE, ALICE_BOB_CHAT, BOB, CAROL, Db

pytestmark = pytest.mark.integration

EXTENSIONS = ("broadcast", "presence")


@dataclass(frozen=True)
class Rights:
    read: frozenset[str]
    write: frozenset[str]


NOTHING = Rights(frozenset(), frozenset())


async def rights(
    db: Db, user: uuid.UUID | None, topic: str, *, role: str = "authenticated", setting: str | None = None
) -> Rights:
    """What ``user`` may do on ``topic``; ``setting`` is ``realtime.topic`` when it differs from the topic."""
    claims = {"role": role} | ({"sub": str(user)} if user is not None else {})
    async with db.pool.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        try:
            probes = {extension: uuid.uuid4() for extension in EXTENSIONS}
            await conn.executemany(
                "insert into realtime.messages (id, topic, extension) values ($1, $2, $3)",
                [(probe, topic, extension) for extension, probe in probes.items()],
            )
            await conn.execute(
                "select set_config('role', $1, true), set_config('realtime.topic', $2, true),"
                " set_config('request.jwt.claims', $3, true), set_config('request.jwt.claim.sub', $4, true),"
                " set_config('request.jwt.claim.role', $1, true)",
                role,
                setting if setting is not None else topic,
                json.dumps(claims),
                str(user) if user is not None else "",
            )
            seen = {
                row["id"]
                for row in await conn.fetch(
                    "select id from realtime.messages where id = any($1)", list(probes.values())
                )
            }
            written = set()
            for extension in EXTENSIONS:
                try:
                    async with conn.transaction():
                        await conn.execute(
                            "insert into realtime.messages (topic, extension) values ($1, $2)", topic, extension
                        )
                    written.add(extension)
                except asyncpg.InsufficientPrivilegeError:
                    pass
        finally:
            await transaction.rollback()
    read = frozenset(extension for extension, probe in probes.items() if probe in seen)
    return Rights(read, frozenset(written))


def chat(session: uuid.UUID) -> str:
    return f"chat:{session}"


def typing(session: uuid.UUID) -> str:
    return f"chat:{session}:typing"


def user(person: uuid.UUID) -> str:
    return f"user:{person}"


MEMBER_OF_CHAT = Rights(frozenset(EXTENSIONS), frozenset({"presence"}))
MEMBER_OF_TYPING = Rights(frozenset({"broadcast"}), frozenset({"broadcast"}))
OWNER_OF_USER_TOPIC = Rights(frozenset({"broadcast"}), frozenset())


async def test_members_read_the_chat_topic_and_track_presence_but_never_broadcast_on_it(db: Db) -> None:
    assert await rights(db, ALICE, chat(ALICE_BOB_CHAT)) == MEMBER_OF_CHAT
    assert await rights(db, BOB, chat(ALICE_BOB_CHAT)) == MEMBER_OF_CHAT


async def test_members_broadcast_and_hear_typing(db: Db) -> None:
    assert await rights(db, BOB, typing(ALICE_BOB_CHAT)) == MEMBER_OF_TYPING


async def test_non_members_get_nothing_on_a_chat(db: Db) -> None:
    assert await rights(db, CAROL, chat(ALICE_BOB_CHAT)) == NOTHING
    assert await rights(db, CAROL, typing(ALICE_BOB_CHAT)) == NOTHING


async def test_a_user_topic_is_its_owners_alone_and_read_only(db: Db) -> None:
    assert await rights(db, BOB, user(BOB)) == OWNER_OF_USER_TOPIC
    assert await rights(db, CAROL, user(BOB)) == NOTHING
    assert await rights(db, ALICE, user(BOB)) == NOTHING


async def test_anon_and_tokens_without_a_user_get_nothing(db: Db) -> None:
    for topic in (chat(ALICE_BOB_CHAT), typing(ALICE_BOB_CHAT), user(BOB)):
        assert await rights(db, None, topic, role="anon") == NOTHING
        assert await rights(db, BOB, topic, role="anon") == NOTHING
        assert await rights(db, None, topic) == NOTHING


async def test_only_exact_topic_names_match(db: Db) -> None:
    upper = str(ALICE_BOB_CHAT).upper()
    for topic in (
        f"chat:{upper}",
        f"chat:{ALICE_BOB_CHAT} ",
        f" chat:{ALICE_BOB_CHAT}",
        f"chat:{ALICE_BOB_CHAT}:typing:x",
        f"chat:{ALICE_BOB_CHAT}:presence",
        f"chat:{ALICE_BOB_CHAT}\n",
        f"chat:{{{ALICE_BOB_CHAT}}}",
        f"user:{BOB}:x",
        f"chat:{str(ALICE_BOB_CHAT).replace('-', '')}",
        f"room:{ALICE_BOB_CHAT}",
        "chat:",
        "",
    ):
        assert await rights(db, BOB, topic) == NOTHING, topic


async def test_the_row_topic_must_be_the_topic_being_authorized(db: Db) -> None:
    # Bob's own chat in realtime.topic does not open another chat's rows to him.
    carols = await db.new_chat(CAROL)
    assert await rights(db, BOB, chat(carols), setting=chat(ALICE_BOB_CHAT)) == NOTHING
    assert await rights(db, BOB, chat(ALICE_BOB_CHAT), setting="") == NOTHING


async def test_a_removed_member_loses_the_topics(db: Db) -> None:
    dave = await db.new_user("Dave")
    session = await db.new_chat(ALICE, dave)
    assert await rights(db, dave, chat(session)) == MEMBER_OF_CHAT
    async with db.as_user(ALICE) as conn:
        await conn.execute("delete from public.chat_members where session_id = $1 and user_id = $2", session, dave)
    assert await rights(db, dave, chat(session)) == NOTHING
    assert await rights(db, dave, typing(session)) == NOTHING


async def test_a_deleted_chat_can_be_heard_but_not_written(db: Db) -> None:
    session = await db.new_chat(ALICE, BOB)
    async with db.as_user(ALICE) as conn:
        await conn.execute("update public.chat_sessions set deleted_at = now() where id = $1", session)
    assert await rights(db, BOB, chat(session)) == Rights(frozenset(EXTENSIONS), frozenset())
    assert await rights(db, BOB, typing(session)) == Rights(frozenset({"broadcast"}), frozenset())


async def test_service_role_bypasses_the_policies(db: Db) -> None:
    everything = Rights(frozenset(EXTENSIONS), frozenset(EXTENSIONS))
    assert await rights(db, None, chat(ALICE_BOB_CHAT), role="service_role") == everything


async def test_stored_broadcasts_are_readable_only_on_the_topic_being_authorized(db: Db) -> None:
    # Broadcasts stay in realtime.messages for days. A role with SQL access (clients have none: the
    # realtime schema is not exposed over REST) sees none of them unless realtime.topic names a topic
    # it may read, and then only that topic's.
    session, other = await db.new_chat(ALICE, BOB), await db.new_chat(ALICE)
    await db.post(ALICE, session, "stored for three days")
    await db.post(ALICE, other, "not bob's")
    assert await db.pool.fetchval("select count(*) from realtime.messages where topic = $1", chat(other)) >= 2
    async with db.as_user(BOB) as conn:
        assert await conn.fetchval("select count(*) from realtime.messages") == 0
        await conn.execute("select set_config('realtime.topic', $1, true)", chat(session))
        topics = {row["topic"] for row in await conn.fetch("select distinct topic from realtime.messages")}
        assert topics == {chat(session)}
        await conn.execute("select set_config('realtime.topic', $1, true)", chat(other))
        assert await conn.fetchval("select count(*) from realtime.messages") == 0
