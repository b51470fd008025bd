"""The gateway's private objects in the database, installed idempotently at start-up.

Schema ``_realtime`` (not exposed by the REST gateway, usable only by the API login role):

- ``wake()``: a statement-level AFTER trigger on every published table that sends a ``NOTIFY`` when a
  statement changed it. The notification is delivered at commit, so the change capture wakes up right
  after a commit instead of polling the replication slot in a tight loop.
- ``wake_on_ddl()``: an event trigger for any DDL (``ALTER PUBLICATION``, ``CREATE TABLE``, ``GRANT``,
  ...), so a table added to the publication gets its wake trigger, and cached privileges are dropped,
  without waiting for the periodic refresh.
- ``visible_rows(roles, claims, table, keys)``: see ``authz``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from devstack.gateway.realtime.catalog import PUBLICATION

if TYPE_CHECKING:
    from devstack.gateway.realtime.catalog import AnyConnection

WAKE_CHANNEL = "devstack_realtime_wake"
DDL_PAYLOAD = "ddl"
TRIGGER_NAME = "devstack_realtime_wake"
EVENT_TRIGGER_NAME = "devstack_realtime_ddl"

_INSTALL_SQL = f"""
create schema if not exists _realtime;
revoke all on schema _realtime from public;

create or replace function _realtime.wake() returns trigger
language plpgsql set search_path = ''
as $$
begin
  perform pg_catalog.pg_notify('{WAKE_CHANNEL}', '');
  return null;
end
$$;

create or replace function _realtime.wake_on_ddl() returns event_trigger
language plpgsql set search_path = ''
as $$
begin
  perform pg_catalog.pg_notify('{WAKE_CHANNEL}', '{DDL_PAYLOAD}');
end
$$;

-- Which rows each subscriber group may select: (grp, idx) pairs, 1-based into p_roles/p_claims and
-- p_keys (primary keys as {{"column": "text"}} objects). For each group the role and claims are set
-- exactly as for a PostgREST request, local to the caller's transaction (one statement in
-- autocommit), then the rows are looked up. Security invoker on purpose: the caller must be allowed
-- to become each role, and each lookup runs with that role's rights only. The lookup is a nested loop
-- of primary-key probes (lateral, limit 1), never a scan that would evaluate the policies on every
-- row; it is prepared once per session and table (Postgres re-plans it when the role or table changes).
-- Keys are cast with the column's type modifier: format_type(oid, null) spells char(2) as "character",
-- which a cast reads as char(1).
drop function if exists _realtime.visible_rows(text, text, oid, jsonb);
create or replace function _realtime.visible_rows(p_roles text[], p_claims text[], p_table oid, p_keys jsonb)
returns table (grp integer, idx integer)
language plpgsql volatile
as $$
declare
  v_name text := 'devstack_realtime_visible_' || p_table;
  v_sql text;
  v_key smallint[] := (select x.indkey::int2[] from pg_catalog.pg_index x
                        where x.indrelid = p_table and x.indisprimary);
begin
  if v_key is null then
    raise exception 'table % has no primary key', p_table::regclass;
  end if;
  for g in 1 .. coalesce(pg_catalog.array_length(p_roles, 1), 0) loop
    -- Like a REST select of the key: table or column grants on the key columns will do.
    if (select pg_catalog.bool_and(pg_catalog.has_column_privilege(p_roles[g], p_table, k, 'SELECT'))
          from pg_catalog.unnest(v_key) as k) then
      for v_attempt in 1 .. 2 loop
        begin
          perform pg_catalog.set_config('role', p_roles[g], true);
          perform pg_catalog.set_config('request.jwt.claims', p_claims[g], true);
          -- Prepared as the group's role: the lookup needs that role's schema rights, not ours.
          if not exists (select from pg_catalog.pg_prepared_statements s where s.name = v_name) then
            select pg_catalog.format(
                     'prepare %I(jsonb, integer) as select $2, k.i::integer'
                     ' from pg_catalog.jsonb_array_elements($1) with ordinality as k(v, i)'
                     ' cross join lateral (select from %I.%I t where %s limit 1) as found',
                     v_name, n.nspname, c.relname,
                     pg_catalog.string_agg(
                       pg_catalog.format('t.%I = (k.v ->> %L)::%s', a.attname, a.attname,
                                         pg_catalog.format_type(a.atttypid, a.atttypmod)),
                       ' and '))
              into v_sql
              from pg_catalog.pg_class c
              join pg_catalog.pg_namespace n on n.oid = c.relnamespace
              join pg_catalog.pg_attribute a on a.attrelid = c.oid and a.attnum = any(v_key)
             where c.oid = p_table
             group by n.nspname, c.relname;
            execute v_sql;
          end if;
          return query execute pg_catalog.format('execute %I(%L, %s)', v_name, p_keys, g);
          exit;
        exception
          when insufficient_privilege then
            -- No usage on the table's schema, say: this group sees none of the rows, as over REST.
            exit;
          when undefined_column or undefined_table or datatype_mismatch or feature_not_supported then
            -- The table changed under the prepared lookup (a key column renamed, say): prepare it
            -- afresh, once.
            if exists (select from pg_catalog.pg_prepared_statements s where s.name = v_name) then
              execute pg_catalog.format('deallocate %I', v_name);
            end if;
            if v_attempt = 2 then
              raise;
            end if;
        end;
      end loop;
    end if;
  end loop;
end
$$;

revoke all on function _realtime.wake(), _realtime.wake_on_ddl(),
  _realtime.visible_rows(text[], text[], oid, jsonb) from public;

do $$
begin
  if not exists (select from pg_catalog.pg_event_trigger where evtname = '{EVENT_TRIGGER_NAME}') then
    create event trigger {EVENT_TRIGGER_NAME} on ddl_command_end execute function _realtime.wake_on_ddl();
  end if;
end
$$;
"""  # noqa: S608 - only this module's constants are interpolated

_SYNC_TRIGGERS_SQL = f"""
do $$
declare
  r record;
begin
  -- A table dropped or locked by someone else meanwhile is skipped, not an error: the next sync
  -- (after the next DDL) sees the catalog as it is then.
  set local lock_timeout = '1s';
  -- Published tables without the wake trigger get it ...
  for r in
    select p.schemaname, p.tablename
      from pg_catalog.pg_publication_tables p
     where p.pubname = '{PUBLICATION}'
       and not exists (
         select from pg_catalog.pg_trigger t
          join pg_catalog.pg_class c on c.oid = t.tgrelid
          join pg_catalog.pg_namespace n on n.oid = c.relnamespace
          where n.nspname = p.schemaname and c.relname = p.tablename and t.tgname = '{TRIGGER_NAME}')
  loop
    begin
      execute pg_catalog.format(
        'create trigger {TRIGGER_NAME} after insert or update or delete on %I.%I'
        ' for each statement execute function _realtime.wake()', r.schemaname, r.tablename);
    exception when undefined_table or lock_not_available or duplicate_object then
      null;
    end;
  end loop;
  -- ... and tables that left the publication lose it.
  for r in
    select n.nspname, c.relname
      from pg_catalog.pg_trigger t
      join pg_catalog.pg_class c on c.oid = t.tgrelid
      join pg_catalog.pg_namespace n on n.oid = c.relnamespace
     where t.tgname = '{TRIGGER_NAME}'
       and not exists (
         select from pg_catalog.pg_publication_tables p
          where p.pubname = '{PUBLICATION}' and p.schemaname = n.nspname and p.tablename = c.relname)
  loop
    begin
      execute pg_catalog.format('drop trigger if exists {TRIGGER_NAME} on %I.%I', r.nspname, r.relname);
    exception when undefined_table or lock_not_available then
      null;
    end;
  end loop;
end
$$;
"""  # noqa: S608 - only this module's constants are interpolated


async def install(conn: AnyConnection, api_role: str) -> None:
    """Create or update ``_realtime`` and let ``api_role`` (the API pool's login) use ``visible_rows``."""
    async with conn.transaction():
        # Several gateways starting at once (tests) would race on "create or replace".
        await conn.execute("select pg_advisory_xact_lock(hashtext('devstack_realtime_install'))")
        await conn.execute(_INSTALL_SQL)
        role = await conn.fetchval("select quote_ident($1)", api_role)
        await conn.execute(f"grant usage on schema _realtime to {role}")
        await conn.execute(f"grant execute on function _realtime.visible_rows(text[], text[], oid, jsonb) to {role}")


async def sync_triggers(conn: AnyConnection) -> None:
    """Give every published table the wake trigger, and take it from tables no longer published."""
    async with conn.transaction():
        await conn.execute("select pg_advisory_xact_lock(hashtext('devstack_realtime_install'))")
        await conn.execute(_SYNC_TRIGGERS_SQL)
