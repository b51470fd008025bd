"""The schema cache: tables, columns and functions of the exposed schema, read from the PostgreSQL catalog.

Every identifier in a request is checked against this cache before it goes into SQL, and type names used
in casts come from here, never from the request. The cache is reloaded when a request names something it
does not know (a migration may have added it), at most once per request and shared by concurrent ones.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Literal

import asyncpg

SCHEMA = "public"

_TABLES_SQL = """
select c.relname, a.attname, format_type(a.atttypid, null) as type
  from pg_class c
  join pg_namespace n on n.oid = c.relnamespace
  join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
 where n.nspname = $1 and c.relkind in ('r', 'v', 'm', 'f', 'p')
 order by c.relname, a.attnum
"""

_PRIMARY_KEYS_SQL = """
select c.relname,
       array(select a.attname
               from unnest(i.indkey) with ordinality as k(attnum, ord)
               join pg_attribute a on a.attrelid = c.oid and a.attnum = k.attnum
              order by k.ord) as columns
  from pg_index i
  join pg_class c on c.oid = i.indrelid
  join pg_namespace n on n.oid = c.relnamespace
 where n.nspname = $1 and i.indisprimary
"""

_FUNCTIONS_SQL = """
select p.proname, p.proretset, p.provolatile, p.pronargdefaults, p.pronargs,
       array(select format_type(t, null)
               from unnest(coalesce(p.proallargtypes, p.proargtypes::oid[])) with ordinality as u(t, ord)
              order by ord) as arg_types,
       p.proargnames as arg_names,
       p.proargmodes::text[] as arg_modes,
       rt.typtype, rt.typrelid, p.prorettype = 'void'::regtype as is_void,
       array(select array[a.attname::text, format_type(a.atttypid, null)]
               from pg_attribute a
              where a.attrelid = rt.typrelid and a.attnum > 0 and not a.attisdropped
              order by a.attnum) as composite_columns
  from pg_proc p
  join pg_namespace n on n.oid = p.pronamespace
  join pg_type rt on rt.oid = p.prorettype
 where n.nspname = $1 and p.prokind = 'f'
"""


@dataclass(frozen=True)
class Column:
    """``type`` is PostgreSQL's own spelling (``format_type``), safe to use in a cast."""

    name: str
    type: str


@dataclass(frozen=True)
class Table:
    name: str
    columns: dict[str, Column]
    primary_key: tuple[str, ...] = ()


@dataclass(frozen=True)
class Argument:
    name: str
    type: str
    has_default: bool


@dataclass(frozen=True)
class Function:
    """A callable function of the exposed schema, as far as ``/rpc`` needs to know it.

    ``result`` says what the function returns: one scalar, one composite row (``columns`` describes it),
    or nothing; ``returns_set`` makes that a set (``setof``/``returns table``).
    """

    name: str
    arguments: tuple[Argument, ...]
    returns_set: bool
    result: Literal["scalar", "composite", "void"]
    columns: dict[str, Column]
    volatility: Literal["immutable", "stable", "volatile"]

    def accepts(self, names: frozenset[str]) -> bool:
        """Whether a call naming exactly ``names`` fits: every name known, every name without a default given."""
        known = {argument.name for argument in self.arguments}
        required = {argument.name for argument in self.arguments if not argument.has_default}
        return names <= known and required <= names


@dataclass
class Snapshot:
    tables: dict[str, Table] = field(default_factory=dict)
    functions: dict[str, list[Function]] = field(default_factory=dict)
    loaded_at: float = float("-inf")


class Catalog:
    """The cached catalog of one schema, loaded through a (superuser) pool."""

    def __init__(self, pool: asyncpg.Pool, schema: str = SCHEMA) -> None:
        self._pool = pool
        self.schema = schema
        self._snapshot = Snapshot()
        self._loading: asyncio.Task[Snapshot] | None = None

    async def table(self, name: str, *, since: float) -> Table | None:
        """The table or view ``name``; reloads once if unknown and the cache predates ``since``."""
        found = self._snapshot.tables.get(name)
        if found is None and await self.refresh(since=since):
            found = self._snapshot.tables.get(name)
        return found

    async def functions(self, name: str, *, since: float) -> list[Function]:
        found = self._snapshot.functions.get(name)
        if not found and await self.refresh(since=since):
            found = self._snapshot.functions.get(name)
        return found or []

    async def refresh(self, *, since: float) -> bool:
        """Reload unless a load began after ``since``. True when the cache may have changed."""
        if self._snapshot.loaded_at >= since:
            return False
        if self._loading is None:
            self._loading = asyncio.create_task(self._load())
        task = self._loading
        try:
            self._snapshot = await asyncio.shield(task)
        finally:
            if self._loading is task and task.done():
                self._loading = None
        return True

    def invalidate(self) -> None:
        """Forget the load time so the next unknown name reloads (after a catalog error from PostgreSQL)."""
        self._snapshot.loaded_at = float("-inf")

    async def _load(self) -> Snapshot:
        started = time.monotonic()
        async with self._pool.acquire() as conn:
            table_rows = await conn.fetch(_TABLES_SQL, self.schema)
            key_rows = await conn.fetch(_PRIMARY_KEYS_SQL, self.schema)
            function_rows = await conn.fetch(_FUNCTIONS_SQL, self.schema)
        columns: dict[str, dict[str, Column]] = {}
        for row in table_rows:
            columns.setdefault(row["relname"], {})[row["attname"]] = Column(row["attname"], row["type"])
        keys = {row["relname"]: tuple(row["columns"]) for row in key_rows}
        tables = {name: Table(name, cols, keys.get(name, ())) for name, cols in columns.items()}
        functions: dict[str, list[Function]] = {}
        for row in function_rows:
            function = _function(row)
            if function is not None:
                functions.setdefault(function.name, []).append(function)
        return Snapshot(tables, functions, started)


_VOLATILITY: dict[str, Literal["immutable", "stable", "volatile"]] = {
    "i": "immutable",
    "s": "stable",
    "v": "volatile",
}


def _function(row: asyncpg.Record) -> Function | None:
    """A function from its catalog row; None for what ``/rpc`` cannot call by name (unnamed arguments)."""
    types: list[str] = list(row["arg_types"])
    names: list[str] = list(row["arg_names"] or [""] * len(types))
    modes: list[str] = list(row["arg_modes"] or ["i"] * len(types))
    inputs = [(n, t) for n, t, m in zip(names, types, modes, strict=True) if m in ("i", "b", "v")]
    outputs = {n: Column(n, t) for n, t, m in zip(names, types, modes, strict=True) if m in ("o", "b", "t")}
    if any(not name for name, _ in inputs):
        return None
    first_default = len(inputs) - int(row["pronargdefaults"])
    arguments = tuple(Argument(name, type_, index >= first_default) for index, (name, type_) in enumerate(inputs))
    result: Literal["scalar", "composite", "void"]
    columns: dict[str, Column] = {}
    if row["is_void"]:
        result = "void"
    elif len(outputs) > 1 or any(m == "t" for m in modes):
        result, columns = "composite", outputs
    elif row["typtype"] == "c":
        result = "composite"
        columns = {name: Column(name, type_) for name, type_ in row["composite_columns"]}
    else:
        result = "scalar"
    return Function(
        name=row["proname"],
        arguments=arguments,
        returns_set=bool(row["proretset"]),
        result=result,
        columns=columns,
        volatility=_VOLATILITY.get(row["provolatile"], "volatile"),
    )
