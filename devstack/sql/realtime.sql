-- devstack realtime: the `realtime` schema objects that a Supabase project's database has (created there
-- by Supabase Realtime's own migrations) and that project migrations use: `realtime.messages`,
-- `realtime.topic()`, `realtime.send(...)`, `realtime.send_binary(...)` and
-- `realtime.broadcast_changes(...)`, with Supabase's names, signatures, owners, grants and payload shapes
-- (docs/architecture.md section 6). Written for this stack from the behaviour of supabase/realtime;
-- applied by `devstack/migrate.py` right after baseline.sql, on every `up`, so it is idempotent.
--
-- Not here, on purpose: `realtime.subscription` and the postgres_changes functions (the gateway reads
-- the WAL with wal2json and authorizes with its own `_realtime` objects instead), and the
-- `supabase_realtime_messages_publication` (the gateway's slot decodes every table).

do $$
begin
  -- Owns the realtime objects on Supabase; no login, and it does not bypass row level security.
  if not exists (select from pg_catalog.pg_roles where rolname = 'supabase_realtime_admin') then
    create role supabase_realtime_admin nologin noinherit;
  end if;
end
$$;

create schema if not exists realtime;
grant usage on schema realtime to anon, authenticated, service_role;
grant all on schema realtime to supabase_realtime_admin;

-- ---------------------------------------------------------------------------------------------------
-- realtime.messages: what Realtime Authorization probes (policies on this table decide who may join a
-- private channel and write to it) and what Broadcast from the database writes (every row inserted is
-- sent to the subscribers of its topic). On Supabase it is partitioned by day on `inserted_at`, the
-- partitions are created a few days ahead and dropped after three days; the gateway does the same here
-- (devstack/gateway/realtime/broadcasts.py). An insert for a day without a partition fails.
-- ---------------------------------------------------------------------------------------------------
create table if not exists realtime.messages (
  topic text not null,
  extension text not null,
  payload jsonb,
  event text,
  private boolean default false,
  updated_at timestamp without time zone not null default now(),
  inserted_at timestamp without time zone not null default now(),
  id uuid not null default gen_random_uuid(),
  binary_payload bytea,
  constraint messages_pkey primary key (id, inserted_at)
) partition by range (inserted_at);

do $$
begin
  if not exists (
    select from pg_catalog.pg_constraint
     where conrelid = 'realtime.messages'::regclass and conname = 'messages_payload_exclusive'
  ) then
    alter table realtime.messages
      add constraint messages_payload_exclusive check (payload is null or binary_payload is null) not valid;
  end if;
end
$$;

-- The index Realtime's broadcast replay reads.
create index if not exists messages_inserted_at_topic_index on only realtime.messages
  (inserted_at desc, topic) where extension = 'broadcast' and private is true;

alter table realtime.messages enable row level security;
alter table realtime.messages owner to supabase_realtime_admin;
grant select, insert, update on table realtime.messages to anon, authenticated, service_role;

-- Today's partition and its neighbours (the gateway keeps this window moving), so that migrations, the
-- seed and tests can broadcast before the gateway's first maintenance run.
do $$
declare
  v_day date;
  v_name text;
begin
  for v_day in select pg_catalog.generate_series(current_date - 1, current_date + 3, interval '1 day')::date loop
    v_name := 'messages_' || pg_catalog.to_char(v_day, 'YYYY_MM_DD');
    if pg_catalog.to_regclass('realtime.' || v_name) is null then
      execute pg_catalog.format(
        'create table realtime.%I partition of realtime.messages for values from (%L) to (%L)',
        v_name, v_day, v_day + 1);
      execute pg_catalog.format('alter table realtime.%I owner to supabase_realtime_admin', v_name);
    end if;
  end loop;
end
$$;

-- ---------------------------------------------------------------------------------------------------
-- realtime.topic(): the topic being authorized. Realtime sets `realtime.topic` (with the role and the
-- JWT claims) before it probes the policies of realtime.messages, so policies can name the topic.
-- ---------------------------------------------------------------------------------------------------
create or replace function realtime.topic() returns text
language sql stable
as $$
  select nullif(pg_catalog.current_setting('realtime.topic', true), '')::text
$$;

-- ---------------------------------------------------------------------------------------------------
-- realtime.send(payload, event, topic, private): one broadcast message, written as a row of
-- realtime.messages under the caller's rights (so the caller needs insert rights through a policy, or
-- to bypass row level security, as a `security definer` trigger function owned by `postgres` does). The
-- payload gets an `id` (the row's id) unless it has one. A failure never reaches the caller: it becomes
-- a WARNING and the message is lost, exactly as on Supabase.
-- ---------------------------------------------------------------------------------------------------
create or replace function realtime.send(payload jsonb, event text, topic text, private boolean default true)
returns void
language plpgsql
as $$
declare
  v_id uuid := gen_random_uuid();
begin
  begin
    -- The topic stays set for the rest of the transaction, as on Supabase (SET LOCAL).
    perform pg_catalog.set_config('realtime.topic', topic, true);
    insert into realtime.messages (id, payload, event, topic, private, extension)
    values (
      v_id,
      case when payload ? 'id' then payload else pg_catalog.jsonb_set(payload, '{id}', pg_catalog.to_jsonb(v_id)) end,
      event, topic, private, 'broadcast');
  exception when others then
    raise warning 'WarnSendingBroadcastMessage: %', sqlerrm;
  end;
end
$$;

-- The binary variant (V2 serializer clients only; the V1 JSON sockets this gateway serves cannot carry
-- it, so the gateway does not deliver these rows).
create or replace function realtime.send_binary(payload bytea, event text, topic text, private boolean default true)
returns void
language plpgsql
as $$
declare
  v_id uuid := gen_random_uuid();
begin
  begin
    perform pg_catalog.set_config('realtime.topic', topic, true);
    insert into realtime.messages (id, binary_payload, event, topic, private, extension)
    values (v_id, payload, event, topic, private, 'broadcast');
  exception when others then
    raise warning 'WarnSendingBroadcastMessage: %', sqlerrm;
  end;
end
$$;

-- ---------------------------------------------------------------------------------------------------
-- realtime.broadcast_changes(...): a row change as a private broadcast, for row-level triggers. The
-- payload is {"schema", "table", "operation", "record", "old_record"} (records as to_jsonb renders them,
-- null where the operation has none) plus the `id` realtime.send adds.
-- ---------------------------------------------------------------------------------------------------
create or replace function realtime.broadcast_changes(
  topic_name text, event_name text, operation text, table_name text, table_schema text,
  new record, old record, level text default 'ROW'
) returns void
language plpgsql
as $$
begin
  if level = 'STATEMENT' then
    raise exception 'function can only be triggered for each row, not for each statement';
  end if;
  if operation not in ('INSERT', 'UPDATE', 'DELETE') then
    raise exception 'Unexpected operation type: %', operation;
  end if;
  perform realtime.send(
    pg_catalog.jsonb_build_object(
      'old_record', old, 'record', new, 'operation', operation, 'table', table_name, 'schema', table_schema),
    event_name, topic_name);
exception when others then
  raise exception 'Failed to process the row: %', sqlerrm;
end
$$;

alter function realtime.topic() owner to supabase_realtime_admin;
alter function realtime.send(jsonb, text, text, boolean) owner to supabase_realtime_admin;
alter function realtime.send_binary(bytea, text, text, boolean) owner to supabase_realtime_admin;
alter function realtime.broadcast_changes(text, text, text, text, text, record, record, text)
  owner to supabase_realtime_admin;
