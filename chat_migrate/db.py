"""The Supabase database: connecting, checking it is fit for a migration, and the bookkeeping schema.

``--db-url`` is the project's direct connection (or the session pooler) as the ``postgres`` user. On a
hosted project that role is *not* a superuser: it owns the tables the project's migrations created, has
``BYPASSRLS``, may write GoTrue's ``auth.users``/``auth.identities`` rows, and may not set superuser-only
settings such as ``session_replication_role``. Everything here works within exactly that.

The bookkeeping lives in the schema ``chat_migrate``: usage is revoked from ``public`` and nothing is
granted to ``anon``, ``authenticated`` or ``service_role``, and PostgREST does not expose it.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import asyncpg

from chat_migrate.errors import MigrateError, Unavailable
from chat_migrate.source import check_url, where

SCHEMA = "chat_migrate"
LOCK_KEY = 0x63686D67  # "chmg": one chat-migrate writer per database at a time

# Row-level triggers on the tables the load writes, and what the load does about each. A trigger that
# is not listed here makes `run` refuse: it would fire once per migrated row with effects this tool
# does not reproduce (for example per-member unread counters). Add it here, and to load.py, first.
KNOWN_TRIGGERS: dict[str, dict[str, str]] = {
    "chat_messages": {
        "chat_messages_assign_order": "disabled during the load; load.py assigns seq/rev and the counters",
        "chat_messages_revise": "update only; not fired by inserts",
        "chat_messages_audit": "update/delete only; disabled during rollback (one event per chat instead)",
        "chat_messages_broadcast_insert": (
            "disabled during the load: announcing each historical message would fan out to every member"
            " (members learn about their chats from chat_members_broadcast, one broadcast per member)"
        ),
        "chat_messages_broadcast_update": "update only; not fired by inserts",
    },
    "chat_members": {
        "chat_members_audit": "disabled during the load and rollback; one audit event per chat instead",
        "chat_members_clamp_last_read_seq": "update of last_read_seq only; not fired by inserts",
        "chat_members_after_delete": "delete only (rollback); a no-op when the chat goes with its members",
        "chat_members_broadcast": "left on: each new member hears about the chat (and, on rollback, its end)",
        "chat_members_broadcast_update": "update of role/last_read_seq only; not fired by inserts",
    },
    "chat_sessions": {
        "chat_sessions_guard": "insert: zeroes the counters, which load.py then sets in one update",
        "chat_sessions_add_creator": "insert: chats are inserted without created_by, so it does nothing",
        "chat_sessions_touch_updated_at": "update of title/deleted_at only; the counter update touches neither",
        "chat_sessions_audit": "update of deleted_at/delete only; disabled during rollback",
        "chat_sessions_broadcast_update": "update of title/deleted_at only; the counter update touches neither",
        "chat_sessions_broadcast_delete": "left on: a rolled-back chat's delete reaches its open clients",
    },
}
# What the load disables for the length of each load transaction (and nothing else): the first two must
# exist (their work is what the load does set-based); the others are disabled where the schema has them.
LOAD_DISABLED = (("chat_messages", "chat_messages_assign_order"), ("chat_members", "chat_members_audit"))
LOAD_DISABLED_IF_PRESENT = (("chat_messages", "chat_messages_broadcast_insert"),)
# What rollback disables while it deletes (it writes one audit event per chat instead).
ROLLBACK_DISABLED = (
    ("chat_messages", "chat_messages_audit"),
    ("chat_members", "chat_members_audit"),
    ("chat_sessions", "chat_sessions_audit"),
)

_BOOKKEEPING = f"""
create schema if not exists {SCHEMA};
revoke all on schema {SCHEMA} from public;
comment on schema {SCHEMA} is 'chat-migrate: what each migration run created. No API role may read it.';

create table if not exists {SCHEMA}.runs (
  id bigint generated always as identity primary key,
  started_at timestamptz not null default now(),
  finished_at timestamptz,
  status text not null default 'running'
    check (status in ('running', 'done', 'failed', 'rolling_back', 'rolled_back')),
  tool_version text not null,
  source text not null,
  options jsonb not null default '{{}}',
  summary jsonb,
  rolled_back_at timestamptz,
  cleaned_up_at timestamptz
);

-- Legacy users: the account each one got, and whether this run created it or linked an existing one.
create table if not exists {SCHEMA}.users (
  legacy_id bigint primary key,
  run_id bigint not null references {SCHEMA}.runs (id),
  user_id uuid not null,
  username text,
  email text not null,
  action text not null check (action in ('created', 'linked')),
  profile_created boolean not null default false
);
create index if not exists users_run_id_idx on {SCHEMA}.users (run_id);

-- Legacy rooms: the chat each one became. The run created the chat row and, in it, exactly the
-- messages with seq 1..messages (seq is assigned by the load, and later posts get higher numbers).
create table if not exists {SCHEMA}.chats (
  legacy_room text primary key,
  run_id bigint not null references {SCHEMA}.runs (id),
  session_id uuid not null unique,
  title text not null,
  legacy_size bigint not null,
  messages bigint not null,
  quarantined bigint not null,
  members integer not null,
  migrated_at timestamptz not null default now()
);
create index if not exists chats_run_id_idx on {SCHEMA}.chats (run_id);

create table if not exists {SCHEMA}.members (
  session_id uuid not null,
  user_id uuid not null,
  run_id bigint not null references {SCHEMA}.runs (id),
  primary key (session_id, user_id)
);
create index if not exists members_run_id_idx on {SCHEMA}.members (run_id);

-- What was left out, and why (the member itself stays in Redis and in the backup file).
create table if not exists {SCHEMA}.quarantine (
  run_id bigint not null references {SCHEMA}.runs (id),
  legacy_room text not null,
  position bigint,
  category text not null,
  detail text not null,
  member bytea
);
create index if not exists quarantine_run_id_idx on {SCHEMA}.quarantine (run_id);

revoke all on all tables in schema {SCHEMA} from public;
"""

_API_ROLES = ("anon", "authenticated", "service_role")


def _where(url: str) -> str:
    return where(url, 5432)


async def connect(url: str, *, connect_timeout: float = 15.0) -> asyncpg.Connection:
    """A connection with the session settings the migration wants, or :class:`Unavailable` in plain words."""
    check_url(url, "--db-url", ("postgresql", "postgres"))
    address = _where(url)
    try:
        conn: asyncpg.Connection = await asyncpg.connect(url, timeout=connect_timeout, command_timeout=None)
    except asyncpg.InvalidPasswordError:
        user = urlsplit(url).username or "the user"
        raise Unavailable(f"the database at {address} refused the password for {user} (check --db-url)") from None
    except asyncpg.InvalidAuthorizationSpecificationError as error:
        raise Unavailable(f"the database at {address} refused the connection: {error}") from None
    except asyncpg.InvalidCatalogNameError as error:
        raise Unavailable(f"the database at {address} says: {error}") from None
    except (OSError, TimeoutError, socket.gaierror) as error:
        reason = getattr(error, "strerror", None) or str(error) or type(error).__name__
        raise Unavailable(f"cannot reach the database at {address}: {reason}") from None
    except (asyncpg.PostgresError, asyncpg.InterfaceError, ValueError) as error:
        raise Unavailable(f"cannot connect to the database at {address}: {error}") from None
    # All user-settable: no superuser needed. jit only costs time on the load's one-off statements; a
    # lost commit after a server crash is redone by the next run, since each batch commits together
    # with its bookkeeping.
    await conn.execute(
        "set jit = off; set synchronous_commit = off; set work_mem = '64MB';"
        " set statement_timeout = 0; set lock_timeout = '60s'; set idle_in_transaction_session_timeout = 0"
    )
    return conn


@dataclass(frozen=True)
class Fitness:
    """What the preflight found out about the database and the role."""

    role: str
    superuser: bool
    auth_user_columns: frozenset[str]
    unknown_triggers: tuple[str, ...]
    bookkeeping: bool
    load_disabled: tuple[tuple[str, str], ...] = LOAD_DISABLED


_REQUIRED_TABLES = (
    ("public", "profiles"),
    ("public", "chat_sessions"),
    ("public", "chat_members"),
    ("public", "chat_messages"),
    ("auth", "users"),
    ("auth", "identities"),
    ("audit", "events"),
)


async def preflight(conn: asyncpg.Connection, *, write: bool) -> Fitness:
    """Check the schema (and, to ``write``, the role's privileges); raise :class:`Unavailable` if unfit."""
    found = await conn.fetch(
        "select n.nspname, c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace"
        " where c.relkind in ('r', 'p') and (n.nspname, c.relname) in"
        " (select * from unnest($1::text[], $2::text[]))",
        [schema for schema, _ in _REQUIRED_TABLES],
        [name for _, name in _REQUIRED_TABLES],
    )
    have = {(row["nspname"], row["relname"]) for row in found}
    missing = [f"{schema}.{name}" for schema, name in _REQUIRED_TABLES if (schema, name) not in have]
    if missing:
        raise Unavailable(
            f"the database has no desktop-chat schema ({', '.join(missing)} missing); apply the project's"
            " migrations first (supabase db push)"
        )
    triggers = await conn.fetch(
        "select c.relname, t.tgname from pg_trigger t join pg_class c on c.oid = t.tgrelid"
        " join pg_namespace n on n.oid = c.relnamespace"
        " where n.nspname = 'public' and c.relname = any($1::text[]) and not t.tgisinternal"
        " and (t.tgtype & 1) = 1",  # row-level; statement-level triggers fire once per statement
        list(KNOWN_TRIGGERS),
    )
    names = {(row["relname"], row["tgname"]) for row in triggers}
    unknown = tuple(sorted(f"{table}.{name}" for table, name in names if name not in KNOWN_TRIGGERS[table]))
    for table, name in LOAD_DISABLED:
        if (table, name) not in names:
            raise Unavailable(f"public.{table} has no trigger {name}: not the schema this chat-migrate knows")
    role = await conn.fetchrow("select current_user as name, rolsuper from pg_roles where rolname = current_user")
    assert role is not None
    columns = await conn.fetch(
        "select column_name from information_schema.columns where table_schema = 'auth' and table_name = 'users'"
    )
    bookkeeping = bool(await conn.fetchval("select exists (select from pg_namespace where nspname = $1)", SCHEMA))
    fitness = Fitness(
        role=role["name"],
        superuser=role["rolsuper"],
        auth_user_columns=frozenset(row["column_name"] for row in columns),
        unknown_triggers=unknown,
        bookkeeping=bookkeeping,
        load_disabled=LOAD_DISABLED + tuple(t for t in LOAD_DISABLED_IF_PRESENT if t in names),
    )
    if write:
        await _check_privileges(conn, fitness)
    return fitness


async def _check_privileges(conn: asyncpg.Connection, fitness: Fitness) -> None:
    row = await conn.fetchrow(
        """
        select
          bool_and(pg_has_role(current_user, c.relowner, 'USAGE')) filter (where c.relname in
            ('chat_messages', 'chat_members', 'chat_sessions') and n.nspname = 'public') as owns_tables,
          has_table_privilege('auth.users', 'insert, select, delete') as auth_users,
          has_table_privilege('auth.identities', 'insert, select') as auth_identities,
          has_table_privilege('audit.events', 'insert') as audit,
          has_database_privilege(current_database(), 'create') as can_create,
          has_database_privilege(current_database(), 'temporary') as can_temp
        from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = 'public'
        """
    )
    assert row is not None
    role = fitness.role
    if not row["owns_tables"]:
        raise Unavailable(
            f"{role} does not own public.chat_messages; connect as the role that ran the project's migrations"
            " (postgres on Supabase)"
        )
    if not (row["auth_users"] and row["auth_identities"]):
        raise Unavailable(f"{role} may not write auth.users and auth.identities (connect as postgres)")
    if not row["audit"]:
        raise Unavailable(f"{role} may not insert into audit.events")
    if not row["can_temp"]:
        raise Unavailable(f"{role} may not create temporary tables in this database")
    if not fitness.bookkeeping and not row["can_create"]:
        raise Unavailable(f"{role} may not create the {SCHEMA} schema in this database")


async def ensure_bookkeeping(conn: asyncpg.Connection) -> None:
    """Create the bookkeeping schema if needed, and make sure no API role can read it."""
    async with conn.transaction():
        await conn.execute(_BOOKKEEPING)
        present = await conn.fetch("select rolname from pg_roles where rolname = any($1::text[])", list(_API_ROLES))
        for role in present:
            # Identifiers from a fixed list, checked against the catalog just above.
            await conn.execute(f'revoke all on schema {SCHEMA} from "{role["rolname"]}"')
            await conn.execute(f'revoke all on all tables in schema {SCHEMA} from "{role["rolname"]}"')


async def take_lock(conn: asyncpg.Connection) -> None:
    """One writer at a time per database; a crashed writer's lock went with its connection."""
    if not await conn.fetchval("select pg_try_advisory_lock($1)", LOCK_KEY):
        raise MigrateError("another chat-migrate run, rollback or cleanup is working on this database right now")


async def set_triggers(conn: asyncpg.Connection, triggers: tuple[tuple[str, str], ...], *, enabled: bool) -> None:
    """Enable or disable named triggers; only ever inside a transaction, so a crash re-enables them."""
    verb = "enable" if enabled else "disable"
    for table, name in triggers:
        # Identifiers from the fixed lists above, never from input.
        await conn.execute(f'alter table public."{table}" {verb} trigger "{name}"')
