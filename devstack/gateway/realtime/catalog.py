"""What realtime needs to know about tables and types, read from the Postgres catalog."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

import asyncpg

from devstack.gateway.realtime.wal import PgType, TypeRegistry

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    AnyConnection: TypeAlias = asyncpg.Connection[Any] | PoolConnectionProxy[Any]
    """A connection of its own or one borrowed from a pool."""

PUBLICATION = "supabase_realtime"


@dataclass(frozen=True, slots=True)
class ColumnInfo:
    """Attributes:
    name: The column name.
    type_oid: ``atttypid``.
    typname: The type's ``typname``, as Realtime lists it in ``columns``.
    base_typname: For a domain, its base type's name (what filters compare as); else ``typname``.
    cast_type: The type as SQL text with its modifier (``format_type(atttypid, atttypmod)``:
        ``character(2)``, ``numeric(5,2)``), used to cast filter values to what the column stores.
    plain_cast_type: The type without a modifier, schema-qualified and quoted (``pg_catalog.bpchar``;
        not ``character``, which means ``char(1)``): what a value is as written, before any cut.
    """

    name: str
    type_oid: int
    typname: str
    base_typname: str
    cast_type: str
    plain_cast_type: str = ""


@dataclass(frozen=True, slots=True)
class TableInfo:
    """One table: its columns in order, its primary key, whether row level security is on."""

    oid: int
    schema: str
    name: str
    columns: tuple[ColumnInfo, ...]
    pk: tuple[str, ...]
    rls_enabled: bool
    published: bool

    def column(self, name: str) -> ColumnInfo | None:
        for column in self.columns:
            if column.name == name:
                return column
        return None

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"


@dataclass
class Catalog:
    """The published tables and ``pg_type``, replaced as a whole on every refresh.

    Attributes:
        published: ``(schema, table)`` → table, for the tables in the ``supabase_realtime`` publication.
        types: Every type in the database, to render values.
    """

    published: dict[tuple[str, str], TableInfo] = field(default_factory=dict)
    types: TypeRegistry = field(default_factory=TypeRegistry)


_TABLES_SQL = """
select c.oid::int8 as oid, n.nspname as schema, c.relname as name, c.relrowsecurity as rls,
       exists (select from pg_catalog.pg_publication_tables p
                where p.pubname = $1 and p.schemaname = n.nspname and p.tablename = c.relname) as published,
       coalesce((
         select array_agg(a.attname::text order by a.attnum)
           from pg_catalog.pg_attribute a
          where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped), '{}') as column_names,
       coalesce((
         select array_agg(a.atttypid::int8 order by a.attnum)
           from pg_catalog.pg_attribute a
          where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped), '{}') as column_types,
       coalesce((
         select array_agg(pg_catalog.format_type(a.atttypid, a.atttypmod) order by a.attnum)
           from pg_catalog.pg_attribute a
          where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped), '{}') as cast_types,
       coalesce((
         select array_agg(pg_catalog.quote_ident(tn.nspname) || '.' || pg_catalog.quote_ident(t.typname)
                          order by a.attnum)
           from pg_catalog.pg_attribute a
           join pg_catalog.pg_type t on t.oid = a.atttypid
           join pg_catalog.pg_namespace tn on tn.oid = t.typnamespace
          where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped), '{}') as plain_cast_types,
       coalesce((
         select array_agg(a.attname::text order by array_position(i.indkey::int2[], a.attnum))
           from pg_catalog.pg_index i
           join pg_catalog.pg_attribute a on a.attrelid = i.indrelid and a.attnum = any(i.indkey::int2[])
          where i.indrelid = c.oid and i.indisprimary), '{}') as pk
  from pg_catalog.pg_class c
  join pg_catalog.pg_namespace n on n.oid = c.relnamespace
 where c.relkind in ('r', 'p')
"""

_TYPES_SQL = """
select oid::int8, typname::text, typtype::text, typcategory::text, typelem::int8, typbasetype::int8
  from pg_catalog.pg_type
"""


async def load(conn: AnyConnection) -> Catalog:
    """Read the published tables and every type."""
    types = TypeRegistry(
        PgType(int(row[0]), row[1], row[2], row[3], int(row[4]), int(row[5])) for row in await conn.fetch(_TYPES_SQL)
    )
    rows = await conn.fetch(
        _TABLES_SQL + " and exists (select from pg_catalog.pg_publication_tables p"
        " where p.pubname = $1 and p.schemaname = n.nspname and p.tablename = c.relname)",
        PUBLICATION,
    )
    published = {}
    for row in rows:
        table = _table(row, types)
        published[(table.schema, table.name)] = table
    return Catalog(published=published, types=types)


async def describe(conn: AnyConnection, schema: str, name: str, types: TypeRegistry) -> TableInfo | None:
    """One table (published or not), or None when there is no such table."""
    row = await conn.fetchrow(_TABLES_SQL + " and n.nspname = $2 and c.relname = $3", PUBLICATION, schema, name)
    return _table(row, types) if row is not None else None


def _table(row: asyncpg.Record, types: TypeRegistry) -> TableInfo:
    columns = []
    for name, type_oid, cast_type, plain_cast_type in zip(
        row["column_names"], row["column_types"], row["cast_types"], row["plain_cast_types"], strict=True
    ):
        own = types.get(int(type_oid))
        base = types.resolve(int(type_oid))
        columns.append(
            ColumnInfo(
                name=name,
                type_oid=int(type_oid),
                typname=own.name if own is not None else cast_type,
                base_typname=base.name if base is not None else cast_type,
                cast_type=cast_type,
                plain_cast_type=plain_cast_type,
            )
        )
    return TableInfo(
        oid=int(row["oid"]),
        schema=row["schema"],
        name=row["name"],
        columns=tuple(columns),
        pk=tuple(row["pk"]),
        rls_enabled=bool(row["rls"]),
        published=bool(row["published"]),
    )
