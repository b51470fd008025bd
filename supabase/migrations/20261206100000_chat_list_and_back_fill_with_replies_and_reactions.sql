-- The chat list's newest message and the back-fill's messages carry the columns a message has since
-- replies and reactions (20261205100100_replies_and_reactions.sql): reply_to and the reaction counts. A
-- message back-filled without them would lose its reactions in the client's cache until its next
-- change. Same signatures and results otherwise (see 20261204100000_scale_with_the_account.sql).

create or replace function public.chat_list(
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
                         x.seq, x.rev, x.reply_to, x.reactions
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

create or replace function public.changes_since(p_chats uuid[], p_revs bigint[], p_limit integer default 500)
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
                       x.seq, x.rev, x.reply_to, x.reactions
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
