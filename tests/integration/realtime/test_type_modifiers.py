"""Columns with a length or precision (``char(2)``, ``numeric(5,2)``, ...): filters and RLS checks use it.

A cast to ``format_type(atttypid, NULL)`` reads ``char(2)`` as ``character``, i.e. ``char(1)``: filter
operands and primary keys were cut to one character, so ``iso=eq.DZ`` matched nothing and, on a table
with row level security, no change of a ``char(2)``-keyed row reached anyone.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from realtime import RealtimePostgresChangesListenEvent as Event
from realtime import RealtimeSubscribeStates as State

from devstack.gateway.realtime import catalog as catalog_module
from tests.integration.realtime.conftest import Db, Inbox, Realtime, subscribe

pytestmark = pytest.mark.integration


@pytest.fixture
async def countries(db: Db) -> AsyncIterator[str]:
    """A published table keyed by ``char(2)``, with row level security (everyone may read)."""
    schema = f"rt_typmod_{uuid.uuid4().hex[:8]}"
    await db.pool.execute(
        f"""
        create schema {schema};
        create domain {schema}.code2 as char(2);
        create table {schema}.countries (
          iso char(2) primary key, alias {schema}.code2, name varchar(12), area numeric(5,2),
          founded timestamp(0), tags char(2)[], padded char(5)
        );
        alter table {schema}.countries enable row level security;
        create policy readable on {schema}.countries for select using (true);
        grant usage on schema {schema} to anon;
        grant select on {schema}.countries to anon;
        alter publication supabase_realtime add table {schema}.countries;
        """
    )
    try:
        yield schema
    finally:
        await db.pool.execute(f"alter publication supabase_realtime drop table {schema}.countries")
        await db.pool.execute(f"drop schema {schema} cascade")


async def test_filters_and_row_checks_use_the_type_modifier(rt: Realtime, db: Db, countries: str) -> None:
    anon = await rt.client()
    filters = {
        "all": "",
        "eq": "iso=eq.DZ",
        "in": "iso=in.(AL,DZ)",
        "gt": "iso=gt.TG",
        "domain": "alias=eq.DZ",
        "varchar": "name=eq.Algeria",
        "numeric": "area=eq.10.5",
        "timestamp": "founded=eq.1962-07-05 00:00:00",
        "array": 'tags=eq."{ab,c}"',  # quoted: a comma separates conditions
        "padded": "padded=eq.ab",
    }
    inboxes = {name: Inbox() for name in filters}
    channel = anon.channel("typmod")
    for name, condition in filters.items():
        channel.on_postgres_changes(
            Event.Insert, inboxes[name], schema=countries, table="countries", filter=condition or None
        )
    await subscribe(channel)

    rows = [
        ("AL", "AL", "Albania", "28.75", "1912-11-28 00:00:00", "{al}", "al"),
        ("DZ", "DZ", "Algeria", "10.5", "1962-07-05 00:00:00", "{ab,c}", "ab"),
        ("TG", "TG", "Togo", "56.79", "1960-04-27 00:00:00", "{tg}", "tg"),
        ("TN", "TN", "Tunisia", "163.61", "1956-03-20 00:00:00", "{tn}", "tn"),
    ]
    for row in rows:
        await db.pool.execute(
            f"insert into {countries}.countries (iso, alias, name, area, founded, tags, padded)"
            " values ($1, $2, $3, $4::text::numeric, $5::text::timestamp, $6::text::char(2)[], $7)",
            *row,
        )
    # Row level security is checked by primary key: every row reaches the unfiltered binding.
    await inboxes["all"].until(lambda payload: payload["data"]["record"]["iso"] == "TN")

    def seen(name: str) -> list[str]:
        return [payload["data"]["record"]["iso"] for payload in inboxes[name].items]

    assert seen("all") == ["AL", "DZ", "TG", "TN"]
    assert seen("eq") == ["DZ"]
    assert seen("in") == ["AL", "DZ"]
    assert seen("gt") == ["TN"]
    assert seen("domain") == ["DZ"]
    assert seen("varchar") == ["DZ"]
    assert seen("numeric") == ["DZ"]
    assert seen("timestamp") == ["DZ"]
    assert seen("array") == ["DZ"]
    assert seen("padded") == ["DZ"]
    assert inboxes["eq"].items[0]["data"]["record"]["padded"] == "ab   "  # as PostgREST renders char(5)


async def test_a_filter_value_longer_than_the_column_is_refused(rt: Realtime, countries: str) -> None:
    """An explicit cast would silently cut ``DZX`` to ``DZ`` and match the wrong rows: a join error instead."""
    anon = await rt.client()
    statuses = Inbox()
    channel = anon.channel("too-long").on_postgres_changes(
        Event.Insert, lambda payload: None, schema=countries, table="countries", filter="iso=eq.DZX"
    )
    await channel.subscribe(statuses)
    status, error = await statuses.next()
    assert status == State.CHANNEL_ERROR
    assert "value too long for type character(2)" in str(error)


async def test_one_byte_catalog_columns_are_read_as_text(db: Db, countries: str) -> None:
    """asyncpg returns ``"char"`` columns (``typtype``, ``typcategory``, ...) as bytes: the catalog casts them,
    so that a domain resolves to its base type and an array type is known as one."""
    async with db.pool.acquire() as conn:
        catalog = await catalog_module.load(conn)
        table = await catalog_module.describe(conn, countries, "countries", catalog.types)
    assert table is not None
    alias, tags = table.column("alias"), table.column("tags")
    assert alias is not None and tags is not None
    assert (alias.typname, alias.base_typname) == ("code2", "bpchar")  # the domain resolved by typtype 'd'
    array_type = catalog.types.get(tags.type_oid)
    assert array_type is not None and array_type.category == "A" and array_type.kind == "b"
    assert table.column("iso") == table.columns[0] and table.columns[0].cast_type == "character(2)"
    assert table.columns[0].plain_cast_type == "pg_catalog.bpchar"
