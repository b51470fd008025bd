"""``_realtime.visible_rows``, the one place realtime asks Postgres who may see which rows.

Called as the gateway calls it: on the ``authenticator`` login, several subscriber groups per call.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from tests.conftest import StackHandle
from tests.integration.realtime.conftest import ALICE, BOB, CAROL, Db

pytestmark = pytest.mark.integration

VISIBLE_ROWS = "select grp, idx from _realtime.visible_rows($1::text[], $2::text[], $3::oid, $4::jsonb)"


def claims(user: uuid.UUID | None, role: str = "authenticated") -> str:
    return json.dumps({"sub": str(user), "role": role} if user else {"role": role})


@pytest.fixture
async def authenticator(stack: StackHandle) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(stack.config.role_db_url("authenticator"))
    try:
        yield conn
    finally:
        await conn.close()


async def test_each_group_sees_what_rls_lets_it_see(authenticator: asyncpg.Connection, db: Db) -> None:
    alice_and_bob, carols = await db.new_chat(ALICE, BOB), await db.new_chat(CAROL)
    first = (await db.post(ALICE, alice_and_bob))["id"]
    second = (await db.post(CAROL, carols))["id"]
    missing = uuid.uuid4()
    table = await db.pool.fetchval("select 'public.chat_messages'::regclass::oid")
    # chat_messages' key is (id, session_id): a message id is unique within its chat.
    keys = json.dumps(
        [
            {"id": str(first), "session_id": str(alice_and_bob)},
            {"id": str(second), "session_id": str(carols)},
            {"id": str(missing), "session_id": str(carols)},
        ]
    )
    groups = [
        ("authenticated", claims(ALICE)),
        ("anon", claims(None, "anon")),  # no privilege on the table at all
        ("authenticated", claims(CAROL)),
        ("service_role", claims(None, "service_role")),  # bypasses RLS
        ("authenticated", claims(BOB)),
    ]
    for _ in range(2):  # the second call runs the statement prepared by the first
        rows = await authenticator.fetch(VISIBLE_ROWS, [g[0] for g in groups], [g[1] for g in groups], table, keys)
        seen = sorted((row["grp"], row["idx"]) for row in rows)
        assert seen == [(1, 1), (3, 2), (4, 1), (4, 2), (5, 1)]
    # The role switches end with the statement: the login is itself again.
    assert await authenticator.fetchval("select current_user") == "authenticator"


async def test_a_composite_key(authenticator: asyncpg.Connection, db: Db) -> None:
    chat = await db.new_chat(ALICE, BOB)
    table = await db.pool.fetchval("select 'public.chat_members'::regclass::oid")
    keys = json.dumps(
        [{"session_id": str(chat), "user_id": str(BOB)}, {"session_id": str(chat), "user_id": str(CAROL)}]
    )
    rows = await authenticator.fetch(
        VISIBLE_ROWS, ["authenticated", "authenticated"], [claims(BOB), claims(CAROL)], table, keys
    )
    assert [(row["grp"], row["idx"]) for row in rows] == [(1, 1)]


async def test_the_api_roles_cannot_call_it(db: Db) -> None:
    for role in ("anon", "authenticated"):
        async with db.pool.acquire() as conn, conn.transaction():
            await conn.execute(f"set local role {role}")
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.fetch(VISIBLE_ROWS, [role], ["{}"], 0, "[]")


async def test_a_table_changed_under_the_prepared_lookup(authenticator: asyncpg.Connection, db: Db) -> None:
    await db.pool.execute(
        """
        create schema rt_authz;
        create table rt_authz.notes (id int primary key, owner uuid not null);
        alter table rt_authz.notes enable row level security;
        create policy own on rt_authz.notes for select to authenticated using (owner = (select auth.uid()));
        grant usage on schema rt_authz to authenticated;
        grant select on rt_authz.notes to authenticated;
        """
    )
    try:
        await db.pool.execute("insert into rt_authz.notes values (1, $1), (2, $2)", ALICE, BOB)
        table = await db.pool.fetchval("select 'rt_authz.notes'::regclass::oid")
        keys = json.dumps([{"id": "1"}, {"id": "2"}])
        args = (["authenticated", "authenticated"], [claims(ALICE), claims(BOB)], table)
        assert sorted(tuple(r) for r in await authenticator.fetch(VISIBLE_ROWS, *args, keys)) == [(1, 1), (2, 2)]
        # The key column is renamed: the statement prepared by the call above must not stay broken.
        await db.pool.execute("alter table rt_authz.notes rename column id to note_id")
        keys = json.dumps([{"note_id": "1"}, {"note_id": "2"}])
        assert sorted(tuple(r) for r in await authenticator.fetch(VISIBLE_ROWS, *args, keys)) == [(1, 1), (2, 2)]
    finally:
        await db.pool.execute("drop schema rt_authz cascade")
