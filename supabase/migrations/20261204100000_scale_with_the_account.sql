-- Scale with the account: a chat list read from an index, unread counts as arithmetic, paged members,
-- one back-fill call for many chats, and a message insert that does little under its chat's lock.
-- Also three schema fixes: edits in deleted chats, the server's clock for a chat's deletion, and ids
-- that no longer tell whether a message exists in a chat one cannot see. See docs/architecture.md
-- sections 2, 3 and 5.

-- ---------------------------------------------------------------------------------------------------
-- chat_inbox: one row per membership, what the chat list sorts and counts by.
--
-- Why not columns on chat_members: chat_members is in the realtime publication and every member may
-- read every member's row, so a counter bumped by each message would be pushed (postgres_changes) to
-- every online member, and so would an activity timestamp touched on every member row. The inbox is
-- read only by its own user and is not published.
--
--   activity_at  the chat's activity (its newest message's time, or its creation) as of the last
--                fan-out: the message trigger touches every member's row only for the first message of
--                each 2-second window (whatever the chat's size), so a busy chat rewrites its members'
--                rows at most once every 2 s and the list order lags the newest message by under 2 s.
--   own_unread   the member's own messages above their read position, so that
--                unread = last_seq - last_read_seq - own_unread is exact and O(1) (own messages never
--                count as unread). Bumped on the sender's row by each message (one row, under the chat
--                lock), lowered when the read position moves past own messages.
--
-- Soft-deleted messages count as unread until read (they show as "Message deleted"); excluding them
-- would need a counter per reader touched by every delete.
-- ---------------------------------------------------------------------------------------------------
create table public.chat_inbox (
  session_id uuid not null,
  user_id uuid not null,
  activity_at timestamptz not null,
  own_unread bigint not null default 0,
  primary key (session_id, user_id),
  foreign key (session_id, user_id) references public.chat_members (session_id, user_id) on delete cascade,
  constraint chat_inbox_own_unread_nonnegative check (own_unread >= 0)
) with (fillfactor = 80);  -- room on the page for the own_unread bumps to stay HOT updates
comment on table public.chat_inbox is
  'Per membership: the chat list''s sort key (activity_at, coarse to 2 s) and own messages above the read position.';

-- The chat list: a user's chats by activity, newest first, read backwards from this index.
create index chat_inbox_user_id_activity_at_idx on public.chat_inbox (user_id, activity_at, session_id);

-- Members of a chat in the order they joined (the members dialog pages through it).
create index chat_members_session_id_joined_at_idx on public.chat_members (session_id, joined_at, user_id);

-- Own messages of a member in a chat by seq: what a read-position move subtracts from own_unread. It
-- replaces the plain sender index (sender_id stays the leading column for "on delete set null").
create index chat_messages_sender_id_session_id_seq_idx on public.chat_messages (sender_id, session_id, seq);
drop index public.chat_messages_sender_id_idx;

insert into public.chat_inbox (session_id, user_id, activity_at, own_unread)
select m.session_id, m.user_id, coalesce(s.last_message_at, s.created_at),
       (select pg_catalog.count(*) from public.chat_messages x
         where x.sender_id = m.user_id and x.session_id = m.session_id and x.seq > m.last_read_seq)
  from public.chat_members m
  join public.chat_sessions s on s.id = m.session_id
 where s.deleted_at is null;

revoke all on table public.chat_inbox from anon, authenticated, service_role;
grant select on table public.chat_inbox to authenticated;
grant select, insert, update, delete on table public.chat_inbox to service_role;
alter table public.chat_inbox enable row level security;
create policy "inbox: own rows" on public.chat_inbox
  for select to authenticated
  using (user_id = (select auth.uid()));

-- New members get their inbox row; removed ones lose it through the foreign key. Statement-level, with
-- the new rows as a transition table: one insert per statement, however many members it added (a bulk
-- loader that inserts members after setting the chat's counters needs to do nothing more).
create function private.open_inboxes() returns trigger
language plpgsql security definer set search_path = ''
as $$
begin
  insert into public.chat_inbox (session_id, user_id, activity_at, own_unread)
  select a.session_id, a.user_id, coalesce(s.last_message_at, s.created_at),
         (select pg_catalog.count(*) from public.chat_messages x
           where x.sender_id = a.user_id and x.session_id = a.session_id and x.seq > a.last_read_seq)
    from added a
    join public.chat_sessions s on s.id = a.session_id
   where s.deleted_at is null;
  return null;
end
$$;

create trigger chat_members_open_inboxes
  after insert on public.chat_members
  referencing new table as added
  for each statement execute function private.open_inboxes();

-- ---------------------------------------------------------------------------------------------------
-- Message ids are unique per chat: the primary key is (id, session_id). With a global key, an insert
-- of an id that exists in a chat one cannot see failed (or, with ON CONFLICT DO NOTHING, answered
-- "nothing inserted"), which told whether that id existed anywhere. Lookups by id alone still use the
-- key's leading column.
-- ---------------------------------------------------------------------------------------------------
alter table public.chat_messages drop constraint chat_messages_pkey;
alter table public.chat_messages add constraint chat_messages_pkey primary key (id, session_id);

-- ---------------------------------------------------------------------------------------------------
-- The message insert. Under the chat row's lock (held until commit) it does only what needs the lock:
-- the duplicate check, the counters, the sender's own_unread bump, and once per 2-second window the
-- members' activity. (The broadcasts of the private-topics migration follow in AFTER triggers.)
-- ---------------------------------------------------------------------------------------------------
create or replace function private.assign_message_order() returns trigger
language plpgsql security definer set search_path = ''
as $$
declare
  v_previous timestamptz;
  v_seq bigint;
  v_rev bigint;
  v_sender uuid;
begin
  -- Lock first, then look for the id: a concurrent insert of the same id has committed by the time we
  -- hold the lock, so a retried send never consumes a seq (ON CONFLICT DO NOTHING stays gap-free).
  select s.last_message_at into v_previous
    from public.chat_sessions s
   where s.id = new.session_id and s.deleted_at is null
     for no key update;
  if not found then
    raise exception 'chat % does not exist or has been deleted', new.session_id
      using errcode = 'foreign_key_violation';
  end if;

  select m.seq, m.rev, m.sender_id into v_seq, v_rev, v_sender
    from public.chat_messages m
   where m.id = new.id and m.session_id = new.session_id;
  if found then
    if v_sender is distinct from new.sender_id then
      -- Someone else's message in this chat: refused as a plain insert of a taken key is.
      raise exception 'duplicate key value violates unique constraint "chat_messages_pkey"'
        using errcode = 'unique_violation', constraint = 'chat_messages_pkey', table = 'chat_messages',
              schema = 'public';
    end if;
    -- A retried send: keep the existing order so the row passes NOT NULL and hits the primary key.
    new.seq := v_seq;
    new.rev := v_rev;
    return new;
  end if;

  update public.chat_sessions s
     set last_seq = s.last_seq + 1,
         last_rev = s.last_rev + 1,
         last_message_at = greatest(coalesce(s.last_message_at, new.created_at), new.created_at)
   where s.id = new.session_id
   returning s.last_seq, s.last_rev into v_seq, v_rev;
  new.seq := v_seq;
  new.rev := v_rev;
  if new.content is not null and new.deleted_at is not null then
    new.content := '';
  end if;

  if v_previous is null
     or pg_catalog.floor(extract(epoch from new.created_at) / 2) > pg_catalog.floor(extract(epoch from v_previous) / 2)
  then
    -- The first message of a 2-second window: every member's list position moves (one set-based update).
    update public.chat_inbox i
       set activity_at = greatest(i.activity_at, new.created_at),
           own_unread = i.own_unread + case when i.user_id = new.sender_id then 1 else 0 end
     where i.session_id = new.session_id;
  elsif new.sender_id is not null then
    update public.chat_inbox i
       set own_unread = i.own_unread + 1
     where i.session_id = new.session_id and i.user_id = new.sender_id;
  end if;
  return new;
end
$$;

-- last_read_seq only moves forward and never past the chat's newest message; own messages it passes no
-- longer count in own_unread. Counting them uses the snapshot that saw last_seq, in which every message
-- up to last_seq is visible; own_unread itself is read from the row's latest version, so a concurrent
-- send of the same member is neither lost nor counted twice.
create or replace function private.clamp_last_read_seq() returns trigger
language plpgsql security definer set search_path = ''
as $$
declare
  v_last bigint;
begin
  select s.last_seq into v_last from public.chat_sessions s where s.id = new.session_id;
  new.last_read_seq := least(greatest(old.last_read_seq, new.last_read_seq), coalesce(v_last, 0));
  if new.last_read_seq > old.last_read_seq then
    update public.chat_inbox i
       set own_unread = greatest(i.own_unread - (
             select pg_catalog.count(*) from public.chat_messages x
              where x.sender_id = new.user_id and x.session_id = new.session_id
                and x.seq > old.last_read_seq and x.seq <= new.last_read_seq), 0)
     where i.session_id = new.session_id and i.user_id = new.user_id and i.own_unread > 0;
  end if;
  return new;
end
$$;

-- ---------------------------------------------------------------------------------------------------
-- Chats: the counters are the server's (as before), and so is the date of a deletion. A deleted chat
-- keeps the date it was deleted at; setting deleted_at back to null restores it. A deleted chat has no
-- inbox rows, so that the chat list's page is the inbox's page (nothing filtered after the LIMIT);
-- a restored one gets them back. security definer: clients cannot write chat_inbox.
-- ---------------------------------------------------------------------------------------------------
create or replace function private.guard_chat_session() returns trigger
language plpgsql security definer set search_path = ''
as $$
begin
  if tg_op = 'INSERT' then
    new.last_seq := 0;
    new.last_rev := 0;
    new.last_message_at := null;
  elsif new.deleted_at is not null then
    new.deleted_at := coalesce(old.deleted_at, now());
    if old.deleted_at is null then
      delete from public.chat_inbox i where i.session_id = new.id;
    end if;
  elsif old.deleted_at is not null then
    insert into public.chat_inbox (session_id, user_id, activity_at, own_unread)
    select m.session_id, m.user_id, coalesce(new.last_message_at, new.created_at),
           (select pg_catalog.count(*) from public.chat_messages x
             where x.sender_id = m.user_id and x.session_id = m.session_id and x.seq > m.last_read_seq)
      from public.chat_members m
     where m.session_id = new.id
    on conflict do nothing;
  end if;
  return new;
end
$$;

drop trigger chat_sessions_guard on public.chat_sessions;
create trigger chat_sessions_guard
  before insert or update of deleted_at on public.chat_sessions
  for each row execute function private.guard_chat_session();

-- ---------------------------------------------------------------------------------------------------
-- Row level security that reads one's own rows without a function call. A security definer function
-- is a call per row, and each call parses the JWT claims again; the EXISTS below is a primary-key
-- probe of chat_members per row. OFFSET 0 keeps it that: without it the planner may turn the EXISTS
-- into a hash of all of the caller's memberships, built for every query (O(the caller's chats), 0.7 ms
-- at 5,000 chats), where the probe costs a few microseconds per row returned.
-- ---------------------------------------------------------------------------------------------------
alter policy "members: members see each other" on public.chat_members
  using (user_id = (select auth.uid()) or private.is_member(session_id));

alter policy "chats: members read" on public.chat_sessions
  using (
    created_by = (select auth.uid())
    or exists (
      select 1 from public.chat_members m
       where m.session_id = chat_sessions.id and m.user_id = (select auth.uid())
      offset 0
    )
  );

alter policy "messages: members read" on public.chat_messages
  using (
    exists (
      select 1 from public.chat_members m
       where m.session_id = chat_messages.session_id and m.user_id = (select auth.uid())
      offset 0
    )
  );

-- Members post, and senders edit and delete their own messages, only while they may post there: a
-- member of a chat that is not deleted (before, an edit checked membership only, so a deleted chat's
-- messages could still be edited). The check is written out rather than private.can_post(): a message
-- insert evaluates it while it holds its chat's row lock, and the function call costs 90 us of the
-- 0.8 ms a send holds the lock for (bench/bench_scale.py's notes; 16 members).
alter policy "messages: members post as themselves" on public.chat_messages
  with check (
    sender_id = (select auth.uid())
    and exists (
      select 1 from public.chat_members m
        join public.chat_sessions s on s.id = m.session_id
       where m.session_id = chat_messages.session_id and m.user_id = (select auth.uid()) and s.deleted_at is null
      offset 0
    )
  );

alter policy "messages: senders edit and delete their own" on public.chat_messages
  using (
    sender_id = (select auth.uid())
    and exists (
      select 1 from public.chat_members m
        join public.chat_sessions s on s.id = m.session_id
       where m.session_id = chat_messages.session_id and m.user_id = (select auth.uid()) and s.deleted_at is null
      offset 0
    )
  )
  with check (
    sender_id = (select auth.uid())
    and exists (
      select 1 from public.chat_members m
        join public.chat_sessions s on s.id = m.session_id
       where m.session_id = chat_messages.session_id and m.user_id = (select auth.uid()) and s.deleted_at is null
      offset 0
    )
  );

-- ---------------------------------------------------------------------------------------------------
-- The chat list, a page at a time: the caller's chats that are not deleted, by activity (newest first),
-- after the keyset (p_before_activity, p_before_id) of the last row of the previous page. p_search keeps
-- the chats whose title contains it (any case), over all of the caller's chats; p_ids asks for those
-- chats only (whatever their place). The unread count is arithmetic; last_message is the newest
-- message (a probe of (session_id, seq)); activity_at is the sort key to page on.
-- ---------------------------------------------------------------------------------------------------
create function public.chat_list(
  p_limit integer default 50,
  p_before_activity timestamptz default null,
  p_before_id uuid default null,
  p_search text default null,
  p_ids uuid[] default null
)
returns table (
  id uuid,
  title text,
  created_by uuid,
  created_at timestamptz,
  updated_at timestamptz,
  last_message_at timestamptz,
  last_seq bigint,
  last_rev bigint,
  deleted_at timestamptz,
  role text,
  last_read_seq bigint,
  unread_count bigint,
  last_message jsonb,
  activity_at timestamptz
)
language plpgsql stable security invoker set search_path = ''
as $$
declare
  v_limit integer := least(greatest(coalesce(p_limit, 50), 1), 500);
  v_search text := pg_catalog.lower(pg_catalog.btrim(coalesce(p_search, '')));
  -- No keyset: after everything.
  v_activity timestamptz := coalesce(p_before_activity, 'infinity'::timestamptz);
  v_id uuid := coalesce(p_before_id, 'ffffffff-ffff-ffff-ffff-ffffffffffff'::uuid);
begin
  if coalesce(pg_catalog.array_length(p_ids, 1), 0) > 500 then
    raise exception 'at most 500 chats at a time' using errcode = 'invalid_parameter_value';
  end if;
  -- Two steps, each forced into its shape: first the chats (a page of the caller's inbox index read
  -- backwards from the keyset and stopped at the LIMIT; or, for a search, the same walk keeping
  -- titles that match, O(the caller's chats) at worst; or the ids asked for), then each chat's row by
  -- primary keys (a LATERAL ... LIMIT 1 cannot be turned into a join). The planner estimates a user's
  -- chats from the average user (a few), so left to itself it reads all of a heavy user's memberships.
  -- Deleted chats have no inbox rows, so a page's LIMIT is the page's.
  return query
    with page as (
      select i.session_id
        from public.chat_inbox i
       where p_ids is null and v_search = ''
         and i.user_id = (select auth.uid()) and (i.activity_at, i.session_id) < (v_activity, v_id)
       order by i.activity_at desc, i.session_id desc
       limit v_limit
    ),
    found as (
      -- Each title by a probe (a scalar subquery), in the inbox's order, until a page matched: as a join,
      -- the planner may hash every chat of the database to search one user's.
      select i.session_id
        from public.chat_inbox i
       where p_ids is null and v_search <> ''
         and i.user_id = (select auth.uid()) and (i.activity_at, i.session_id) < (v_activity, v_id)
         and pg_catalog.strpos(
               pg_catalog.lower((select t.title from public.chat_sessions t where t.id = i.session_id)), v_search
             ) > 0
       order by i.activity_at desc, i.session_id desc
       limit v_limit
    ),
    asked as (
      select distinct w.session_id from unnest(p_ids) as w (session_id)
    ),
    chats as (
      select page.session_id from page
      union all select found.session_id from found
      union all select asked.session_id from asked
    )
    select c.*
      from chats
      cross join lateral (
        select s.id, s.title, s.created_by, s.created_at, s.updated_at, s.last_message_at, s.last_seq, s.last_rev,
               s.deleted_at, m.role, m.last_read_seq,
               greatest(s.last_seq - m.last_read_seq - i.own_unread, 0),
               (select pg_catalog.to_jsonb(x) from (
                  select x.id, x.session_id, x.sender_id, x.content, x.created_at, x.edited_at, x.deleted_at,
                         x.seq, x.rev
                    from public.chat_messages x
                   where x.session_id = s.id and x.seq = s.last_seq) x),
               i.activity_at
          from public.chat_inbox i
          join public.chat_members m on m.session_id = i.session_id and m.user_id = (select auth.uid())
          join public.chat_sessions s on s.id = i.session_id
         where i.session_id = chats.session_id and i.user_id = (select auth.uid()) and s.deleted_at is null
         limit 1
      ) c
     order by c.activity_at desc, c.id desc;
end
$$;

-- The first page, as before (same columns; the app now calls chat_list).
create or replace function public.recent_chats(p_limit integer default 50)
returns table (
  id uuid,
  title text,
  created_by uuid,
  created_at timestamptz,
  updated_at timestamptz,
  last_message_at timestamptz,
  last_seq bigint,
  last_rev bigint,
  deleted_at timestamptz,
  role text,
  last_read_seq bigint,
  unread_count bigint,
  last_message jsonb
)
language sql stable security invoker set search_path = ''
as $$
  select c.id, c.title, c.created_by, c.created_at, c.updated_at, c.last_message_at, c.last_seq, c.last_rev,
         c.deleted_at, c.role, c.last_read_seq, c.unread_count, c.last_message
    from public.chat_list(p_limit) c
$$;

-- ---------------------------------------------------------------------------------------------------
-- Chat details and members. security definer: the caller's membership is checked once, and every
-- member of the chat shares it with the caller, so their profiles are visible by that one check (the
-- profiles policy would run shares_chat_with once per member). Read positions of others are not
-- details: a read-position change must not make anyone's cached details stale.
-- ---------------------------------------------------------------------------------------------------

-- The chat, its member count, and the members the chat view needs names for: the first
-- p_member_limit members by joining order, and whoever sent one of the newest 200 messages.
drop function public.chat_details(uuid);
create function public.chat_details(p_session uuid, p_member_limit integer default 100)
returns jsonb
language sql stable security definer set search_path = ''
as $$
  with chat as (
    select s.* from public.chat_sessions s
     where s.id = p_session
       and exists (select 1 from public.chat_members me
                    where me.session_id = p_session and me.user_id = (select auth.uid()))
  ),
  first_members as (
    select m.session_id, m.user_id, m.role, m.joined_at
      from public.chat_members m
     where m.session_id = p_session
     order by m.joined_at, m.user_id
     limit least(greatest(coalesce(p_member_limit, 100), 1), 500)
  ),
  -- The newest 200 messages by seq range (an index range of (session_id, seq), whatever the chat's
  -- size), and each sender's membership by primary key.
  recent_senders as (
    select distinct x.sender_id
      from chat c
      join public.chat_messages x on x.session_id = c.id and x.seq > c.last_seq - 200
     where x.sender_id is not null
  ),
  shown as (
    select * from first_members
    union
    select m.session_id, m.user_id, m.role, m.joined_at
      from recent_senders r
      cross join lateral (
        select m.session_id, m.user_id, m.role, m.joined_at from public.chat_members m
         where m.session_id = p_session and m.user_id = r.sender_id
         limit 1  -- at most one row anyway (the primary key); the LIMIT keeps it a probe, not a join
      ) m
  )
  select pg_catalog.jsonb_build_object(
    'session', pg_catalog.to_jsonb(c),
    'member_count', (select pg_catalog.count(*) from public.chat_members m where m.session_id = p_session),
    -- Each name by a probe of its profile (a scalar subquery): as a join, the planner may hash all profiles.
    'members', coalesce((
      select pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
               'session_id', w.session_id, 'user_id', w.user_id, 'role', w.role, 'joined_at', w.joined_at,
               'display_name', (select p.display_name from public.profiles p where p.id = w.user_id))
             order by w.joined_at, w.user_id)
        from shown w
    ), '[]'::jsonb)
  )
  from chat c
$$;

-- Members of a chat by joining order, a page at a time after (p_after_joined_at, p_after_user); empty
-- for a chat the caller is not in. The first page (no keyset) also counts the members, the others
-- leave member_count null.
create function public.chat_members_page(
  p_session uuid,
  p_after_joined_at timestamptz default null,
  p_after_user uuid default null,
  p_limit integer default 100
)
returns table (session_id uuid, user_id uuid, role text, joined_at timestamptz, display_name text, member_count bigint)
language sql stable security definer set search_path = ''
as $$
  select m.session_id, m.user_id, m.role, m.joined_at,
         (select p.display_name from public.profiles p where p.id = m.user_id),  -- a probe per member shown
         case when p_after_joined_at is null
              then (select pg_catalog.count(*) from public.chat_members c where c.session_id = p_session) end
    from public.chat_members m
   where m.session_id = p_session
     and exists (select 1 from public.chat_members me
                  where me.session_id = p_session and me.user_id = (select auth.uid()))
     and (m.joined_at, m.user_id)
         > (coalesce(p_after_joined_at, '-infinity'::timestamptz),
            coalesce(p_after_user, '00000000-0000-0000-0000-000000000000'::uuid))
   order by m.joined_at, m.user_id
   limit least(greatest(coalesce(p_limit, 100), 1), 500)
$$;

-- ---------------------------------------------------------------------------------------------------
-- Back-fill of many chats in one call: for each (chat, rev) pair, the chat's messages whose rev is above
-- rev, by rev. Chats whose last_rev has not moved are skipped (no row); chats the caller can no longer
-- see (left, removed, deleted, purged) come back once with gone = true. At most p_limit messages in
-- all, taken chat by chat in the order given; a chat with more left (or reached when the budget is
-- spent) has more = true, and the caller asks again from the last rev it got. One snapshot (the
-- function is stable): last_rev and the messages agree.
-- ---------------------------------------------------------------------------------------------------
create function public.changes_since(p_chats uuid[], p_revs bigint[], p_limit integer default 500)
returns table (chat_id uuid, last_rev bigint, last_seq bigint, gone boolean, more boolean, messages jsonb)
language plpgsql stable security invoker set search_path = ''
as $$
declare
  v_budget integer := least(greatest(coalesce(p_limit, 500), 1), 1000);
  v_chat record;
  v_newest bigint;
  v_count integer;
begin
  if coalesce(pg_catalog.array_length(p_chats, 1), 0) <> coalesce(pg_catalog.array_length(p_revs, 1), 0) then
    raise exception 'p_chats and p_revs must have the same length' using errcode = 'invalid_parameter_value';
  end if;
  if coalesce(pg_catalog.array_length(p_chats, 1), 0) > 1000 then
    raise exception 'at most 1000 chats at a time' using errcode = 'invalid_parameter_value';
  end if;
  for v_chat in
    -- Each chat by a probe of its primary key (LATERAL ... LIMIT 1), never a hash of every chat.
    select w.chat_id, w.rev, s.last_rev, s.last_seq, (s.id is null or s.deleted_at is not null) as gone
      from unnest(p_chats, p_revs) with ordinality as w (chat_id, rev, ord)
      left join lateral (
        select s.id, s.last_rev, s.last_seq, s.deleted_at from public.chat_sessions s where s.id = w.chat_id limit 1
      ) s on true
     where s.id is null or s.deleted_at is not null or s.last_rev > coalesce(w.rev, 0)
     order by w.ord
  loop
    chat_id := v_chat.chat_id;
    gone := v_chat.gone;
    if v_chat.gone then
      last_rev := null;
      last_seq := null;
      more := false;
      messages := '[]'::jsonb;
    else
      last_rev := v_chat.last_rev;
      last_seq := v_chat.last_seq;
      messages := '[]'::jsonb;
      v_newest := coalesce(v_chat.rev, 0);
      if v_budget > 0 then
        select coalesce(pg_catalog.jsonb_agg(pg_catalog.to_jsonb(x) order by x.rev), '[]'::jsonb),
               coalesce(max(x.rev), coalesce(v_chat.rev, 0)), pg_catalog.count(*)
          into messages, v_newest, v_count
          from (select x.id, x.session_id, x.sender_id, x.content, x.created_at, x.edited_at, x.deleted_at,
                       x.seq, x.rev
                  from public.chat_messages x
                 where x.session_id = v_chat.chat_id and x.rev > coalesce(v_chat.rev, 0)
                 order by x.rev
                 limit v_budget) x;
        v_budget := v_budget - v_count;
      end if;
      more := v_newest < v_chat.last_rev;
    end if;
    return next;
  end loop;
end
$$;

revoke all on function public.chat_list(integer, timestamptz, uuid, text, uuid[]),
  public.chat_details(uuid, integer), public.chat_members_page(uuid, timestamptz, uuid, integer),
  public.changes_since(uuid[], bigint[], integer)
  from public, anon;
grant execute on function public.chat_list(integer, timestamptz, uuid, text, uuid[]),
  public.chat_details(uuid, integer), public.chat_members_page(uuid, timestamptz, uuid, integer),
  public.changes_since(uuid[], bigint[], integer)
  to authenticated, service_role;
revoke all on function private.open_inboxes() from public;
