-- Realtime Authorization and Broadcast from the database: private topics for the chat tables.
-- See docs/architecture.md sections 2 and 5.
--
-- Topics (all private, i.e. joined with `config.private = true`):
--   chat:<chat id>         what happens in a chat, written only by the triggers below: messages
--                          (inserts, edits, soft deletes), the chat (rename, delete) and its members;
--                          members read it, and track presence on it.
--   chat:<chat id>:typing  typing notices, broadcast by the members' clients.
--   user:<user id>         what one user must hear about wherever they are: their memberships (added,
--                          removed, role, read position from another device), renames and deletes of
--                          their chats, and a compact activity notice per new message (see
--                          private.announce_message); only that user reads it.
--
-- Why typing has a topic of its own: Realtime checks a client's right to broadcast once per channel, not
-- per event, so anyone who may broadcast on a topic can send any event name on it. If members could
-- broadcast on chat:<id>, one could forge "message" events (another sender, another text, a made-up
-- rev) that the others could not tell from the database's. So nobody broadcasts on chat:<id> but the
-- database, and typing goes to chat:<id>:typing, where a forged event is only a forged "typing".
--
-- Who may join: Realtime inserts probe rows into realtime.messages and reads them back as the user
-- (the SELECT policy: read), and tries an insert as the user (the INSERT policy: write), with the topic
-- in realtime.topic(). This happens once per join (and again when the client sends a new access token),
-- never per message; so the policies below are one regex and at most one primary-key probe.
--
-- Realtime must already have created the `realtime` schema (it has on every Supabase project; devstack
-- creates it from devstack/sql/realtime.sql before the migrations).

do $$
begin
  if pg_catalog.to_regclass('realtime.messages') is null then
    raise exception 'realtime.messages does not exist: this migration needs Supabase Realtime''s schema'
      using hint = 'On a local Supabase, start the stack (supabase start) before applying migrations.';
  end if;
end
$$;

-- ---------------------------------------------------------------------------------------------------
-- Authorization: who may read (receive broadcasts, see presence) and write (broadcast, track presence)
-- which topic. Topic names are exact: the canonical lowercase text of a uuid, nothing around it.
-- ---------------------------------------------------------------------------------------------------
create function private.realtime_topic_allows(p_topic text, p_extension text, p_write boolean)
returns boolean
language sql stable security definer set search_path = ''
as $$
  select case
    when p_topic ~ '^user:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then
      -- Only the database writes here; its owner reads its broadcasts.
      not p_write and p_extension = 'broadcast'
        and pg_catalog.substr(p_topic, 6)::uuid = (select auth.uid())
    when p_topic ~ '^chat:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then
      -- Members read everything and track presence; broadcasts come from the database only.
      (not p_write or p_extension = 'presence')
        and exists (
          select 1 from public.chat_members m
           where m.session_id = pg_catalog.substr(p_topic, 6)::uuid and m.user_id = (select auth.uid())
             and (not p_write or not exists (
               select 1 from public.chat_sessions s where s.id = m.session_id and s.deleted_at is not null)))
    when p_topic ~ '^chat:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}:typing$' then
      -- Members broadcast typing (while the chat is not deleted) and hear each other's.
      p_extension = 'broadcast'
        and exists (
          select 1 from public.chat_members m
           where m.session_id = pg_catalog.substr(p_topic, 6, 36)::uuid and m.user_id = (select auth.uid())
             and (not p_write or not exists (
               select 1 from public.chat_sessions s where s.id = m.session_id and s.deleted_at is not null)))
    else false
  end
$$;

revoke all on function private.realtime_topic_allows(text, text, boolean) from public;
grant execute on function private.realtime_topic_allows(text, text, boolean) to authenticated;

-- Both policies also require the row's topic to be the one being authorized, so that a role with SQL
-- access could never read other topics' stored broadcasts by setting realtime.topic.
create policy "realtime: read own topics" on realtime.messages
  for select to authenticated
  using (topic = (select realtime.topic()) and private.realtime_topic_allows(topic, extension, false));

create policy "realtime: write presence and typing" on realtime.messages
  for insert to authenticated
  with check (topic = (select realtime.topic()) and private.realtime_topic_allows(topic, extension, true));

-- ---------------------------------------------------------------------------------------------------
-- Broadcast from the database. The trigger functions are security definer: realtime.send writes
-- realtime.messages with its caller's rights, and the owner (`postgres`, which bypasses row level
-- security on Supabase) may write any topic, where the user who made the change may not. realtime.send
-- turns a failure into a WARNING, never into a failed write: a broadcast is a fast path, the `rev`
-- back-fill is what makes a client complete.
-- ---------------------------------------------------------------------------------------------------

-- The payload shape of realtime.broadcast_changes, for rows sent to several topics at once.
create function private.change_payload(p_operation text, p_table text, p_record jsonb, p_old_record jsonb)
returns jsonb
language sql immutable set search_path = ''
as $$
  select pg_catalog.jsonb_build_object(
    'old_record', p_old_record, 'record', p_record, 'operation', p_operation, 'table', p_table, 'schema', 'public')
$$;

-- One private broadcast to each member's user:<id> topic, as one set-based insert into
-- realtime.messages: the rows realtime.send would write, without a function call, a subtransaction and
-- a SET per member (bench/bench_realtime_authz.py measures the difference). Returns the rows written.
create function private.broadcast_to_members(p_session uuid, p_event text, p_payload jsonb)
returns integer
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_rows integer;
begin
  insert into realtime.messages (id, topic, extension, event, payload, private)
  select x.id, 'user:' || x.user_id, 'broadcast', p_event,
         p_payload || pg_catalog.jsonb_build_object('id', x.id), true
    from (select pg_catalog.gen_random_uuid() as id, m.user_id
            from public.chat_members m
           where m.session_id = p_session) as x;
  get diagnostics v_rows = row_count;
  return v_rows;
exception when others then
  raise warning 'broadcast to the members of chat % failed: %', p_session, sqlerrm;
  return 0;
end
$$;

-- The activity notice of a new message, to each member's user topic: enough to move the chat up the
-- list, count unread (last_seq - last_read_seq), and show a notification. Chats of up to 50 members
-- hear about every message. In bigger chats a notice goes out for the first message of each 2-second
-- window (the previous message is in another window): at most one fan-out per chat every 2 s, whatever
-- the message rate, where one per message would write members × messages/s rows (10,000 rows/s for
-- 500 members at 20 messages/s) and count as many Realtime events against the project's quota (500 a
-- second on Pro; events over it are dropped). A notice carries the chat's newest seq and rev, so the
-- next one corrects every count; what the window leaves out until then, the app's consistency probe
-- and the open chat's own topic show.
create function private.announce_message(p_message public.chat_messages)
returns integer
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_members integer;
  v_previous timestamptz;
begin
  select pg_catalog.count(*) into v_members
    from (select 1 from public.chat_members m where m.session_id = p_message.session_id limit 51) as bounded;
  if v_members > 50 then
    select x.created_at into v_previous
      from public.chat_messages x
     where x.session_id = p_message.session_id and x.seq = p_message.seq - 1;
    if v_previous is not null
       and pg_catalog.floor(extract(epoch from v_previous) / 2) = pg_catalog.floor(extract(epoch from p_message.created_at) / 2)
    then
      return 0;
    end if;
  end if;
  return private.broadcast_to_members(
    p_message.session_id, 'activity',
    pg_catalog.jsonb_build_object(
      'chat_id', p_message.session_id,
      'message_id', p_message.id,
      'sender_id', p_message.sender_id,
      'seq', p_message.seq,
      'rev', p_message.rev,
      'created_at', p_message.created_at,
      'preview', pg_catalog.left(p_message.content, 100)));
end
$$;

-- Messages: inserts, edits and soft deletes (each takes a new rev) to chat:<id>, with the new row only:
-- an edit or delete must not send the old text around again. New messages are also announced to the
-- members' user topics. Hard deletes happen only when a chat is purged, whose own event covers them.
create function private.broadcast_message_change() returns trigger
language plpgsql security definer set search_path = ''
as $$
begin
  perform realtime.broadcast_changes(
    'chat:' || new.session_id, 'message', tg_op, tg_table_name, tg_table_schema, new, null);
  if tg_op = 'INSERT' then
    perform private.announce_message(new);
  end if;
  return null;
end
$$;

create trigger chat_messages_broadcast_insert
  after insert on public.chat_messages
  for each row execute function private.broadcast_message_change();

create trigger chat_messages_broadcast_update
  after update on public.chat_messages
  for each row when (new.rev is distinct from old.rev)
  execute function private.broadcast_message_change();

-- Chats: a rename or (soft) delete to chat:<id> and to every member's user topic (the chat list shows
-- titles); a purge to chat:<id> (its members' removals reach their user topics one by one). The counter
-- bumps of every new message do not broadcast.
create function private.broadcast_chat_change() returns trigger
language plpgsql security definer set search_path = ''
as $$
begin
  if tg_op = 'DELETE' then
    perform realtime.broadcast_changes('chat:' || old.id, 'chat', tg_op, tg_table_name, tg_table_schema, null, old);
  else
    perform realtime.broadcast_changes('chat:' || new.id, 'chat', tg_op, tg_table_name, tg_table_schema, new, null);
    perform private.broadcast_to_members(
      new.id, 'chat', private.change_payload(tg_op, tg_table_name, pg_catalog.to_jsonb(new), null));
  end if;
  return null;
end
$$;

create trigger chat_sessions_broadcast_update
  after update of title, deleted_at on public.chat_sessions
  for each row
  when (old.title is distinct from new.title or old.deleted_at is distinct from new.deleted_at)
  execute function private.broadcast_chat_change();

create trigger chat_sessions_broadcast_delete
  after delete on public.chat_sessions
  for each row execute function private.broadcast_chat_change();

-- Members: an addition, removal or role change to chat:<id> (the member list) and to the member's own
-- user topic (a new member learns about the chat; a removed one leaves it). A read position change goes
-- to the member's own topic only: their other devices update the unread count, nobody else cares.
create function private.broadcast_member_change() returns trigger
language plpgsql security definer set search_path = ''
as $$
declare
  v_session uuid := coalesce(new.session_id, old.session_id);
  v_user uuid := coalesce(new.user_id, old.user_id);
  v_new public.chat_members := case when tg_op = 'DELETE' then null else new end;
  v_old public.chat_members := case when tg_op = 'INSERT' then null else old end;
begin
  if tg_op = 'UPDATE' and new.role is not distinct from old.role then
    perform realtime.broadcast_changes('user:' || v_user, 'member', tg_op, tg_table_name, tg_table_schema, new, null);
    return null;
  end if;
  perform realtime.broadcast_changes(
    'chat:' || v_session, 'member', tg_op, tg_table_name, tg_table_schema, v_new, v_old);
  perform realtime.broadcast_changes(
    'user:' || v_user, 'member', tg_op, tg_table_name, tg_table_schema, v_new, v_old);
  return null;
end
$$;

create trigger chat_members_broadcast
  after insert or delete on public.chat_members
  for each row execute function private.broadcast_member_change();

create trigger chat_members_broadcast_update
  after update on public.chat_members
  for each row
  when (old.role is distinct from new.role or old.last_read_seq is distinct from new.last_read_seq)
  execute function private.broadcast_member_change();

revoke all on function private.change_payload(text, text, jsonb, jsonb),
  private.broadcast_to_members(uuid, text, jsonb), private.announce_message(public.chat_messages),
  private.broadcast_message_change(), private.broadcast_chat_change(), private.broadcast_member_change()
  from public;
