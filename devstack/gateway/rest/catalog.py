"""The schema cache: tables, columns, relationships and functions of the exposed schema, from the catalog.

Every identifier in a request is checked against this cache before it goes into SQL, and type names used
in casts come from here, never from the request. The cache is reloaded when a request names something it
does not know (a migration may have added it), at most once per request and shared by concurrent ones.

Two spellings of a column's type are kept, because PostgREST uses both:

* ``type``, PostgreSQL's own ``format_type(atttypid, atttypmod)`` (``character(2)``, ``numeric(10,2)``):
  what a written value becomes, so ``json_to_recordset`` applies the length and precision and a value
  that does not fit is refused (22001) instead of being cut;
* ``cast``, the schema-qualified name of the type without its modifier (``pg_catalog.bpchar``): what a
  filter operand becomes, the way PostgREST's untyped literal resolves, so ``iso=eq.DZA`` is compared as
  written rather than cut to ``DZ``. (``format_type(atttypid, null)`` says ``character``, which in a cast
  means ``character(1)``: that was the bug.)

Catalog columns of type ``"char"`` (``relkind``, ``typtype``, ``provolatile``, ...) come back from asyncpg
as ``bytes``; every query here casts them to ``text`` in SQL so comparisons in Python see strings.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Literal

import asyncpg

from devstack.gateway.rest.errors import RestError

log = logging.getLogger(__name__)

SCHEMA = "public"
# Schemas whose types a cast (``select=col::type``) may name, as PostgREST's search path finds them.
CAST_SCHEMAS = ("pg_catalog", SCHEMA, "extensions")

_TABLES_SQL = """
select c.relname::text, c.relkind::text as kind, a.attname::text,
       pg_catalog.format_type(a.atttypid, a.atttypmod) as type,
       pg_catalog.quote_ident(tn.nspname) || '.' || pg_catalog.quote_ident(t.typname) as cast,
       case when t.typname in ('json', 'jsonb') then t.typname::text end as json,
       case when a.attgenerated = '' then pg_catalog.pg_get_expr(d.adbin, d.adrelid) end as default_expr
  from pg_catalog.pg_class c
  join pg_catalog.pg_namespace n on n.oid = c.relnamespace
  join pg_catalog.pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
  join pg_catalog.pg_type t on t.oid = a.atttypid
  join pg_catalog.pg_namespace tn on tn.oid = t.typnamespace
  left join pg_catalog.pg_attrdef d on d.adrelid = c.oid and d.adnum = a.attnum
 where n.nspname = $1 and c.relkind in ('r', 'v', 'm', 'f', 'p')
 order by c.relname, a.attnum
"""

_PRIMARY_KEYS_SQL = """
select c.relname::text,
       array(select a.attname::text
               from pg_catalog.unnest(i.indkey) with ordinality as k(attnum, ord)
               join pg_catalog.pg_attribute a on a.attrelid = c.oid and a.attnum = k.attnum
              order by k.ord) as columns
  from pg_catalog.pg_index i
  join pg_catalog.pg_class c on c.oid = i.indrelid
  join pg_catalog.pg_namespace n on n.oid = c.relnamespace
 where n.nspname = $1 and i.indisprimary
"""

# Foreign keys between two tables of the schema. A key whose columns are also a primary key or unique
# constraint of their table makes a one-to-one relationship (PostgREST's rule).
_FOREIGN_KEYS_SQL = """
select k.conname::text as name, src.relname::text as table, dst.relname::text as foreign_table,
       array(select a.attname::text
               from pg_catalog.unnest(k.conkey) with ordinality as u(attnum, ord)
               join pg_catalog.pg_attribute a on a.attrelid = k.conrelid and a.attnum = u.attnum
              order by u.ord) as columns,
       array(select a.attname::text
               from pg_catalog.unnest(k.confkey) with ordinality as u(attnum, ord)
               join pg_catalog.pg_attribute a on a.attrelid = k.confrelid and a.attnum = u.attnum
              order by u.ord) as foreign_columns,
       exists (select from pg_catalog.pg_constraint u
                where u.conrelid = k.conrelid and u.contype in ('p', 'u')
                  and (select array_agg(x order by x) from pg_catalog.unnest(u.conkey) as x)
                    = (select array_agg(x order by x) from pg_catalog.unnest(k.conkey) as x)) as one_to_one
  from pg_catalog.pg_constraint k
  join pg_catalog.pg_class src on src.oid = k.conrelid
  join pg_catalog.pg_class dst on dst.oid = k.confrelid
 where k.contype = 'f' and k.conparentid = 0
   and src.relnamespace = $1::regnamespace and dst.relnamespace = $1::regnamespace
 order by src.relname, k.conname
"""

_FUNCTIONS_SQL = """
select p.proname::text, p.proretset, p.provolatile::text as volatility, p.pronargdefaults,
       array(select pg_catalog.quote_ident(tn.nspname) || '.' || pg_catalog.quote_ident(t.typname)
               from pg_catalog.unnest(coalesce(p.proallargtypes, p.proargtypes::oid[])) with ordinality as u(t, ord)
               join pg_catalog.pg_type t on t.oid = u.t
               join pg_catalog.pg_namespace tn on tn.oid = t.typnamespace
              order by ord) as arg_casts,
       array(select pg_catalog.format_type(u.t, null)
               from pg_catalog.unnest(coalesce(p.proallargtypes, p.proargtypes::oid[])) with ordinality as u(t, ord)
              order by ord) as arg_types,
       p.proargnames::text[] as arg_names,
       p.proargmodes::text[] as arg_modes,
       rt.typtype::text as return_kind, p.prorettype = 'pg_catalog.void'::regtype as is_void,
       (select rc.relname::text from pg_catalog.pg_class rc
         where rc.oid = rt.typrelid and rc.relnamespace = p.pronamespace
           and rc.relkind in ('r', 'v', 'm', 'f', 'p')) as return_table,
       array(select array[a.attname::text, pg_catalog.format_type(a.atttypid, a.atttypmod),
                          pg_catalog.quote_ident(tn.nspname) || '.' || pg_catalog.quote_ident(t.typname),
                          case when t.typname in ('json', 'jsonb') then t.typname::text else '' end]
               from pg_catalog.pg_attribute a
               join pg_catalog.pg_type t on t.oid = a.atttypid
               join pg_catalog.pg_namespace tn on tn.oid = t.typnamespace
              where a.attrelid = rt.typrelid and a.attnum > 0 and not a.attisdropped
              order by a.attnum) as composite_columns,
       pg_catalog.quote_ident(rtn.nspname) || '.' || pg_catalog.quote_ident(rt.typname) as return_cast,
       case when rt.typname in ('json', 'jsonb') then rt.typname::text end as return_json
  from pg_catalog.pg_proc p
  join pg_catalog.pg_namespace n on n.oid = p.pronamespace
  join pg_catalog.pg_type rt on rt.oid = p.prorettype
  join pg_catalog.pg_namespace rtn on rtn.oid = rt.typnamespace
 where n.nspname = $1 and p.prokind = 'f'
"""

# Type names a cast may use: every type of the cast schemas by its own name, qualified in the SQL.
_TYPES_SQL = """
select t.typname::text, pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(t.typname) as spelling
  from pg_catalog.pg_type t
  join pg_catalog.pg_namespace n on n.oid = t.typnamespace
 where n.nspname = any($1::text[]) and t.typtype in ('b', 'd', 'e', 'r', 'm', 'c') and t.typelem = 0
 order by array_position($1::text[], n.nspname::text) desc
"""

# What PostgREST applies per request for the role it switches to (``alter role ... set``), as it reads them:
# the settings of every role the login role is a member of, those a user may set.
_ROLE_SETTINGS_SQL = """
with settings as (
  select r.rolname::text as role, pg_catalog.unnest(r.rolconfig) as setting
    from pg_catalog.pg_auth_members m
    join pg_catalog.pg_roles r on r.oid = m.roleid
   where m.member = $1::regrole
)
select s.role, pg_catalog.split_part(s.setting, '=', 1) as key,
       pg_catalog.substr(s.setting, pg_catalog.strpos(s.setting, '=') + 1) as value
  from settings s
  join pg_catalog.pg_settings p on p.name = pg_catalog.split_part(s.setting, '=', 1)
 where p.context = 'user' or pg_catalog.has_parameter_privilege($1::regrole, p.name, 'set')
 order by s.role, key
"""

# The SQL spellings of the standard type names, which are keywords rather than catalog names (and must not
# be quoted: "int" is no type, int is). They win over a catalog type of the same name ("char").
SQL_TYPE_NAMES = {
    "int": "integer",
    "integer": "integer",
    "smallint": "smallint",
    "bigint": "bigint",
    "real": "real",
    "float": "double precision",
    "double precision": "double precision",
    "dec": "numeric",
    "decimal": "numeric",
    "numeric": "numeric",
    "boolean": "boolean",
    "char": "character",
    "character": "character",
    "varchar": "character varying",
    "character varying": "character varying",
    "nchar": "character",
    "national character": "character",
    "bit": "bit",
    "bit varying": "bit varying",
    "timestamp": "timestamp without time zone",
    "timestamp without time zone": "timestamp without time zone",
    "timestamp with time zone": "timestamp with time zone",
    "time": "time without time zone",
    "time without time zone": "time without time zone",
    "time with time zone": "time with time zone",
    "interval": "interval",
}

JsonKind = Literal["json", "jsonb"] | None
Cardinality = Literal["m2o", "o2m", "o2o", "m2m"]


@dataclass(frozen=True)
class Column:
    """A column (or a function's output column) and the two spellings of its type (see the module docstring).

    Attributes:
        name: The column name.
        type: ``format_type(atttypid, atttypmod)``, for values written into the column.
        cast: The type without modifier, qualified, for filter operands compared with the column.
        json: ``json``/``jsonb`` when the column is one (JSON paths then need no ``to_jsonb``).
        default: The column default's SQL (``pg_get_expr``), for ``Prefer: missing=default``.
    """

    name: str
    type: str
    cast: str = ""
    json: JsonKind = None
    default: str | None = None

    def __post_init__(self) -> None:
        if not self.cast:
            object.__setattr__(self, "cast", self.type)


@dataclass(frozen=True)
class Table:
    name: str
    columns: dict[str, Column]
    primary_key: tuple[str, ...] = ()
    is_view: bool = False


@dataclass(frozen=True)
class Relationship:
    """A way to embed ``foreign_table`` in rows of ``table``, from one foreign key (or two, through a junction).

    ``columns`` pairs a column of ``table`` with the column of ``foreign_table`` it joins; for many-to-many
    they pair ``table`` with the junction (``columns``) and the junction with ``foreign_table``
    (``junction_columns``). ``parent`` marks the side of a one-to-one that the key points at.
    """

    table: str
    foreign_table: str
    cardinality: Cardinality
    constraint: str
    columns: tuple[tuple[str, str], ...]
    junction: str | None = None
    junction_constraint: str | None = None
    junction_columns: tuple[tuple[str, str], ...] = ()
    parent: bool = False

    @property
    def to_one(self) -> bool:
        return self.cardinality in ("m2o", "o2o")

    @property
    def is_self(self) -> bool:
        return self.table == self.foreign_table


@dataclass(frozen=True)
class Argument:
    """A named input of a function: ``type`` for SQL (qualified, no modifier), ``display`` for messages."""

    name: str
    type: str
    has_default: bool
    display: str = ""


@dataclass(frozen=True)
class Function:
    """A callable function of the exposed schema, as far as ``/rpc`` needs to know it.

    ``result`` says what the function returns: one scalar, one composite row (``columns`` describes it),
    or nothing; ``returns_set`` makes that a set (``setof``/``returns table``). ``table`` names the table
    whose row type a function returns, so its rows can embed that table's relationships. ``scalar``
    describes a scalar result's type (its cast spelling and JSON kind).
    """

    name: str
    arguments: tuple[Argument, ...]
    returns_set: bool
    result: Literal["scalar", "composite", "void"]
    columns: dict[str, Column]
    volatility: Literal["immutable", "stable", "volatile"]
    table: str | None = None
    scalar: Column | None = None

    def accepts(self, names: frozenset[str]) -> bool:
        """Whether a call naming exactly ``names`` fits: every name known, every name without a default given."""
        known = {argument.name for argument in self.arguments}
        required = {argument.name for argument in self.arguments if not argument.has_default}
        return names <= known and required <= names


@dataclass
class Snapshot:
    tables: dict[str, Table] = field(default_factory=dict)
    relationships: dict[str, list[Relationship]] = field(default_factory=dict)
    functions: dict[str, list[Function]] = field(default_factory=dict)
    types: dict[str, str] = field(default_factory=dict)
    role_settings: dict[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)
    loaded_at: float = float("-inf")


class Catalog:
    """The cached catalog of one schema, loaded through a (superuser) pool.

    ``login_role`` is the role REST requests log in as; the settings of the roles it switches to are
    read for it.
    """

    def __init__(self, pool: asyncpg.Pool, schema: str = SCHEMA, *, login_role: str = "authenticator") -> None:
        self._pool = pool
        self.schema = schema
        self.login_role = login_role
        self._snapshot = Snapshot()
        self._loading: asyncio.Task[Snapshot] | None = None

    @property
    def snapshot(self) -> Snapshot:
        return self._snapshot

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

    def role_settings(self, role: str) -> tuple[tuple[str, str], ...]:
        return self._snapshot.role_settings.get(role, ())

    async def refresh(self, *, since: float) -> bool:
        """Reload unless a load began after ``since``. True when the cache may have changed."""
        if self._snapshot.loaded_at >= since:
            return False
        if self._loading is None:
            self._loading = asyncio.create_task(self._load())
        task = self._loading
        try:
            self._snapshot = await asyncio.shield(task)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError):
            # The database is away (stopped, restarting): PostgREST has no schema cache to answer from.
            log.warning("loading the schema cache failed", exc_info=True)
            raise RestError(503, "PGRST002", "Could not query the database for the schema cache. Retrying.") from None
        finally:
            if self._loading is task and task.done():
                self._loading = None
        return True

    def invalidate(self) -> None:
        """Forget the load time so the next unknown name reloads (after a catalog error from PostgreSQL)."""
        self._snapshot.loaded_at = float("-inf")

    async def _load(self) -> Snapshot:
        started = time.monotonic()
        async with self._pool.acquire() as conn, conn.transaction(readonly=True):
            # Defaults and type names come out schema-qualified wherever that matters.
            await conn.execute("set local search_path = ''")
            table_rows = await conn.fetch(_TABLES_SQL, self.schema)
            key_rows = await conn.fetch(_PRIMARY_KEYS_SQL, self.schema)
            fk_rows = await conn.fetch(_FOREIGN_KEYS_SQL, self.schema)
            function_rows = await conn.fetch(_FUNCTIONS_SQL, self.schema)
            type_rows = await conn.fetch(_TYPES_SQL, list(CAST_SCHEMAS))
            role_rows = await conn.fetch(_ROLE_SETTINGS_SQL, self.login_role)
        columns: dict[str, dict[str, Column]] = {}
        views: set[str] = set()
        for row in table_rows:
            columns.setdefault(row["relname"], {})[row["attname"]] = Column(
                row["attname"], row["type"], row["cast"], row["json"], row["default_expr"]
            )
            if row["kind"] in ("v", "m"):
                views.add(row["relname"])
        keys = {row["relname"]: tuple(row["columns"]) for row in key_rows}
        tables = {name: Table(name, cols, keys.get(name, ()), name in views) for name, cols in columns.items()}
        functions: dict[str, list[Function]] = {}
        for row in function_rows:
            function = _function(row)
            if function is not None:
                functions.setdefault(function.name, []).append(function)
        types: dict[str, str] = {row["typname"]: row["spelling"] for row in type_rows}
        types.update(SQL_TYPE_NAMES)
        settings: dict[str, list[tuple[str, str]]] = {}
        for row in role_rows:
            settings.setdefault(row["role"], []).append((row["key"], row["value"]))
        return Snapshot(
            tables=tables,
            relationships=relationships(fk_rows, tables),
            functions=functions,
            types=types,
            role_settings={role: tuple(pairs) for role, pairs in settings.items()},
            loaded_at=started,
        )


def relationships(rows: list[asyncpg.Record], tables: dict[str, Table]) -> dict[str, list[Relationship]]:
    """Every embedding each table allows, PostgREST's way.

    A foreign key from ``a`` to ``b`` lets ``a`` embed ``b`` (many-to-one, or one-to-one when the key is
    unique) and ``b`` embed ``a`` (one-to-many, or one-to-one). A table with keys to two tables whose
    columns all belong to its primary key is a junction: the two tables embed each other many-to-many.
    """
    direct: list[Relationship] = []
    for row in rows:
        pairs = tuple(zip(row["columns"], row["foreign_columns"], strict=True))
        one = bool(row["one_to_one"])
        direct.append(Relationship(row["table"], row["foreign_table"], "o2o" if one else "m2o", row["name"], pairs))
    found: list[Relationship] = list(direct)
    for rel in direct:
        swapped = tuple((b, a) for a, b in rel.columns)
        cardinality: Cardinality = "o2o" if rel.cardinality == "o2o" else "o2m"
        found.append(Relationship(rel.foreign_table, rel.table, cardinality, rel.constraint, swapped, parent=True))
    for first in direct:
        for second in direct:
            if first.table != second.table or first.constraint == second.constraint:
                continue
            junction = tables.get(first.table)
            key = set(junction.primary_key) if junction else set()
            used = {c for c, _ in first.columns} | {c for c, _ in second.columns}
            if first.cardinality == "m2o" and second.cardinality == "m2o" and used <= key:
                found.append(
                    Relationship(
                        table=first.foreign_table,
                        foreign_table=second.foreign_table,
                        cardinality="m2m",
                        constraint=first.constraint,
                        # origin column -> junction column, then junction column -> target column
                        columns=tuple((b, a) for a, b in first.columns),
                        junction=first.table,
                        junction_constraint=second.constraint,
                        junction_columns=second.columns,
                    )
                )
    by_table: dict[str, list[Relationship]] = {}
    for rel in found:
        by_table.setdefault(rel.table, []).append(rel)
    return by_table


_VOLATILITY: dict[str, Literal["immutable", "stable", "volatile"]] = {
    "i": "immutable",
    "s": "stable",
    "v": "volatile",
}


def _function(row: asyncpg.Record) -> Function | None:
    """A function from its catalog row; None for what ``/rpc`` cannot call by name (unnamed arguments)."""
    casts: list[str] = list(row["arg_casts"])
    types: list[str] = list(row["arg_types"])
    names: list[str] = list(row["arg_names"] or [""] * len(casts))
    modes: list[str] = list(row["arg_modes"] or ["i"] * len(casts))
    inputs = [(n, c, t) for n, c, t, m in zip(names, casts, types, modes, strict=True) if m in ("i", "b", "v")]
    outputs = {
        n: Column(n, t, c) for n, t, c, m in zip(names, types, casts, modes, strict=True) if m in ("o", "b", "t")
    }
    if any(not name for name, _, _ in inputs):
        return None
    first_default = len(inputs) - int(row["pronargdefaults"])
    arguments = tuple(
        Argument(name, cast, index >= first_default, display) for index, (name, cast, display) in enumerate(inputs)
    )
    result: Literal["scalar", "composite", "void"]
    columns: dict[str, Column] = {}
    scalar = None
    if row["is_void"]:
        result = "void"
    elif len(outputs) > 1 or any(m == "t" for m in modes):
        result, columns = "composite", outputs
    elif row["return_kind"] == "c":
        result = "composite"
        columns = {
            name: Column(name, type_, cast, json or None) for name, type_, cast, json in row["composite_columns"]
        }
    else:
        result = "scalar"
        scalar = Column("", row["return_cast"], row["return_cast"], row["return_json"])
    return Function(
        name=row["proname"],
        arguments=arguments,
        returns_set=bool(row["proretset"]),
        result=result,
        columns=columns,
        volatility=_VOLATILITY.get(row["volatility"], "volatile"),
        table=row["return_table"] if result == "composite" else None,
        scalar=scalar,
    )
