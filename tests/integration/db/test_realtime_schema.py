"""devstack's ``realtime`` schema objects (devstack/sql/realtime.sql) have Supabase's shapes.

The expected signatures and columns are those of a Supabase project's database (Supabase Realtime's
tenant migrations); project migrations and triggers are written against them.
"""

from __future__ import annotations

import datetime as dt
import json

import asyncpg
import pytest

from devstack import migrate
from devstack.gateway.realtime import broadcasts
from tests.conftest import StackHandle
from tests.integration.db.conftest import Db

pytestmark = pytest.mark.integration


async def test_functions_have_supabases_signatures(db: Db) -> None:
    rows = await db.pool.fetch(
        "select p.proname, pg_get_function_arguments(p.oid) as args, pg_get_function_result(p.oid) as result,"
        " pg_get_userbyid(p.proowner) as owner, p.prosecdef from pg_proc p"
        " where p.pronamespace = 'realtime'::regnamespace order by 1"
    )
    found = {row["proname"]: (row["args"], row["result"], row["owner"], row["prosecdef"]) for row in rows}
    owner = "supabase_realtime_admin"
    assert found == {
        "broadcast_changes": (
            "topic_name text, event_name text, operation text, table_name text, table_schema text,"
            " new record, old record, level text DEFAULT 'ROW'::text",
            "void",
            owner,
            False,
        ),
        "send": ("payload jsonb, event text, topic text, private boolean DEFAULT true", "void", owner, False),
        "send_binary": ("payload bytea, event text, topic text, private boolean DEFAULT true", "void", owner, False),
        "topic": ("", "text", owner, False),
    }


async def test_messages_has_supabases_columns_partitioning_and_grants(db: Db) -> None:
    columns = await db.pool.fetch(
        "select attname, format_type(atttypid, atttypmod) as type, attnotnull from pg_attribute"
        " where attrelid = 'realtime.messages'::regclass and attnum > 0 and not attisdropped order by attnum"
    )
    assert [(row["attname"], row["type"], row["attnotnull"]) for row in columns] == [
        ("topic", "text", True),
        ("extension", "text", True),
        ("payload", "jsonb", False),
        ("event", "text", False),
        ("private", "boolean", False),
        ("updated_at", "timestamp without time zone", True),
        ("inserted_at", "timestamp without time zone", True),
        ("id", "uuid", True),
        ("binary_payload", "bytea", False),
    ]
    table = await db.pool.fetchrow(
        "select c.relkind::text, c.relrowsecurity, pg_get_userbyid(c.relowner) as owner,"
        " pg_get_partkeydef(c.oid) as partition_key,"
        " (select pg_get_constraintdef(k.oid) from pg_constraint k where k.conrelid = c.oid and k.contype = 'p') as pk"
        " from pg_class c where c.oid = 'realtime.messages'::regclass"
    )
    assert table is not None
    assert dict(table) == {
        "relkind": "p",
        "relrowsecurity": True,
        "owner": "supabase_realtime_admin",
        "partition_key": "RANGE (inserted_at)",
        "pk": "PRIMARY KEY (id, inserted_at)",
    }
    for role in ("anon", "authenticated", "service_role"):
        privileges = await db.pool.fetchval(
            "select array_agg(p order by p) from unnest(array['SELECT', 'INSERT', 'UPDATE', 'DELETE']) p"
            " where has_table_privilege($1, 'realtime.messages', p)",
            role,
        )
        assert privileges == ["INSERT", "SELECT", "UPDATE"], role


async def test_send_and_broadcast_changes_write_supabases_payloads(db: Db) -> None:
    async with db.pool.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        try:
            await conn.execute("select realtime.send('{\"a\": 1}', 'ev', 'room:1', false)")
            assert await conn.fetchval("select realtime.topic()") == "room:1"  # set for the rest of the transaction
            await conn.execute("select realtime.send('{\"id\": \"mine\"}', 'ev', 'room:2')")
            await conn.execute(
                "select realtime.broadcast_changes('room:3', 'changed', 'UPDATE', 't', 's', row(1, 'x'), null)"
            )
            rows = await conn.fetch(
                "select topic, event, private, extension, payload, id from realtime.messages"
                " where topic in ('room:1', 'room:2', 'room:3') order by topic"
            )
            with pytest.raises(asyncpg.RaiseError, match="Failed to process the row: Unexpected operation type"):
                async with conn.transaction():
                    await conn.execute("select realtime.broadcast_changes('t', 'e', 'TRUNCATE', 't', 's', null, null)")
            # A send that fails inside (no topic) is a WARNING for the caller, never an error.
            await conn.execute("set local client_min_messages = error")
            await conn.execute("select realtime.send('{}', 'e', null)")
        finally:
            await transaction.rollback()
    ids = [str(row["id"]) for row in rows]
    assert [
        (row["topic"], row["event"], row["private"], row["extension"], json.loads(row["payload"])) for row in rows
    ] == [
        ("room:1", "ev", False, "broadcast", {"a": 1, "id": ids[0]}),
        ("room:2", "ev", True, "broadcast", {"id": "mine"}),
        (
            "room:3",
            "changed",
            True,
            "broadcast",
            {
                "id": ids[2],
                "operation": "UPDATE",
                "table": "t",
                "schema": "s",
                "record": {"f1": 1, "f2": "x"},
                "old_record": None,
            },
        ),
    ]


async def test_the_realtime_objects_apply_again_without_error(stack: StackHandle) -> None:
    # devstack up applies baseline.sql and realtime.sql on every start.
    report = await migrate.apply(stack.db_url, stack.config.supabase_dir)
    assert report.applied == []


async def test_partitions_are_kept_ahead_and_old_ones_dropped(db: Db) -> None:
    today: dt.date = await db.pool.fetchval("select current_date")  # the server's day (UTC), not ours
    old = today - dt.timedelta(days=10)
    name = f"messages_{old:%Y_%m_%d}"
    await db.pool.execute(
        f"create table realtime.{name} partition of realtime.messages"
        f" for values from ('{old}') to ('{old + dt.timedelta(days=1)}')"
    )
    async with db.pool.acquire() as conn:
        await broadcasts.maintain_partitions(conn)
    partitions = {
        row["relname"]
        for row in await db.pool.fetch(
            "select c.relname from pg_inherits i join pg_class c on c.oid = i.inhrelid"
            " where i.inhparent = 'realtime.messages'::regclass"
        )
    }
    assert name not in partitions
    for offset in range(-1, broadcasts.DAYS_AHEAD + 1):
        assert f"messages_{today + dt.timedelta(days=offset):%Y_%m_%d}" in partitions
