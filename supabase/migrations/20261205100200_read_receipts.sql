-- Read receipts from chat_members.last_read_seq: who has read how far, for a chat of any size, and a
-- compact live `read` event for small chats. See docs/architecture.md section 2 ("Read receipts").
--
-- A member has read message s when their last_read_seq >= s. A sender's own message does not count
-- as read by its sender. In a one-to-one chat the other member's position is the second tick; in a
-- group, "Seen by N" is the number of other members at or past s, with names on hover.
--
-- Live: a read-position change also goes to chat:<id> as a `read` event
-- {chat_id, user_id, last_read_seq} when the chat has at most 50 members (the threshold of the
-- activity notices), so an open chat updates its ticks and counts. In a bigger chat every member's
-- reading would be a broadcast to every online member (members x reads), so there the app asks
-- read_receipts() again when it shows a window (opening the chat, scrolling, coming back to it).
-- The member's own user:<id> topic still gets the full `member` row, as before.

create or replace function private.broadcast_member_change() returns trigger
language plpgsql security definer set search_path = ''
as $$
declare
  v_session uuid := coalesce(new.session_id, old.session_id);
  v_user uuid := coalesce(new.user_id, old.user_id);
  v_new public.chat_members := case when tg_op = 'DELETE' then null else new end;
  v_old public.chat_members := case when tg_op = 'INSERT' then null else old end;
  v_members integer;
begin
  if tg_op = 'UPDATE' and new.role is not distinct from old.role then
    perform realtime.broadcast_changes('user:' || v_user, 'member', tg_op, tg_table_name, tg_table_schema, new, null);
    if new.last_read_seq is distinct from old.last_read_seq then
      select pg_catalog.count(*) into v_members
        from (select 1 from public.chat_members m where m.session_id = v_session limit 51) as bounded;
      if v_members <= 50 then
        perform realtime.send(
          pg_catalog.jsonb_build_object('chat_id', v_session, 'user_id', v_user, 'last_read_seq', new.last_read_seq),
          'read', 'chat:' || v_session, true);
      end if;
    end if;
    return null;
  end if;
  perform realtime.broadcast_changes(
    'chat:' || v_session, 'member', tg_op, tg_table_name, tg_table_schema, v_new, v_old);
  perform realtime.broadcast_changes(
    'user:' || v_user, 'member', tg_op, tg_table_name, tg_table_schema, v_new, v_old);
  return null;
end
$$;

-- The read positions of a chat's members, furthest first, at most p_limit (up to 500) of them, with
-- the number of members: all a small chat needs to draw its ticks and "Seen by" (and to keep them
-- current from `read` events). Empty for a chat the caller is not in. security definer with one
-- membership check (as chat_details): as the caller, the member policy would run once per member.
create function public.read_positions(p_session uuid, p_limit integer default 100)
returns table (user_id uuid, last_read_seq bigint, member_count bigint)
language sql stable security definer set search_path = ''
as $$
  select m.user_id, m.last_read_seq,
         (select pg_catalog.count(*) from public.chat_members c where c.session_id = p_session)
    from public.chat_members m
   where m.session_id = p_session
     and exists (select 1 from public.chat_members me
                  where me.session_id = p_session and me.user_id = (select auth.uid()))
   order by m.last_read_seq desc, m.user_id
   limit least(greatest(coalesce(p_limit, 100), 1), 500)
$$;

-- For each message of p_session with seq in [p_from_seq, p_to_seq] (at most 500): how many members
-- other than its sender have read it, and how many members other than its sender there are. One pass
-- over the members whatever the window (positions counted per distinct value, then summed from the
-- top), so a chat of thousands answers as fast as a small one. Empty for a chat the caller is not in.
create function public.read_receipts(p_session uuid, p_from_seq bigint, p_to_seq bigint)
returns table (seq bigint, read_count bigint, member_count bigint)
language plpgsql stable security definer set search_path = ''
as $$
begin
  if p_from_seq is null or p_to_seq is null or p_to_seq < p_from_seq then
    raise exception 'p_from_seq and p_to_seq must name a range of seq' using errcode = 'invalid_parameter_value';
  end if;
  if p_to_seq - p_from_seq >= 500 then
    raise exception 'at most 500 messages at a time' using errcode = 'invalid_parameter_value';
  end if;
  if not exists (select 1 from public.chat_members me
                  where me.session_id = p_session and me.user_id = (select auth.uid())) then
    return;
  end if;
  return query
    with positions as (
      -- Positions below the window read none of it; above it, all of it.
      select least(m.last_read_seq, p_to_seq) as pos, pg_catalog.count(*) as n
        from public.chat_members m
       where m.session_id = p_session and m.last_read_seq >= p_from_seq
       group by 1
    ),
    total as (
      select pg_catalog.count(*) as n from public.chat_members m where m.session_id = p_session
    )
    select x.seq,
           (select coalesce(pg_catalog.sum(p.n), 0)::bigint from positions p where p.pos >= x.seq)
             - case when x.sender_id is not null and exists (
                      select 1 from public.chat_members s
                       where s.session_id = p_session and s.user_id = x.sender_id and s.last_read_seq >= x.seq)
                    then 1 else 0 end,
           (select t.n from total t)
             - case when x.sender_id is not null and exists (
                      select 1 from public.chat_members s where s.session_id = p_session and s.user_id = x.sender_id)
                    then 1 else 0 end
      from public.chat_messages x
     where x.session_id = p_session and x.seq between p_from_seq and p_to_seq
     order by x.seq;
end
$$;

-- Who has read message p_seq of p_session (its sender left out), furthest reader first, at most
-- p_limit (up to 100) of them with their names: the "Seen by" tooltip. Empty for a chat the caller is
-- not in.
create function public.message_readers(p_session uuid, p_seq bigint, p_limit integer default 20)
returns table (user_id uuid, display_name text, last_read_seq bigint)
language sql stable security definer set search_path = ''
as $$
  select m.user_id, p.display_name, m.last_read_seq
    from public.chat_members m
    left join public.profiles p on p.id = m.user_id
   where m.session_id = p_session and m.last_read_seq >= p_seq
     and m.user_id is distinct from (
       select x.sender_id from public.chat_messages x where x.session_id = p_session and x.seq = p_seq)
     and exists (select 1 from public.chat_members me
                  where me.session_id = p_session and me.user_id = (select auth.uid()))
   order by m.last_read_seq desc, m.user_id
   limit least(greatest(coalesce(p_limit, 20), 1), 100)
$$;

revoke all on function public.read_positions(uuid, integer), public.read_receipts(uuid, bigint, bigint),
  public.message_readers(uuid, bigint, integer) from public, anon;
grant execute on function public.read_positions(uuid, integer), public.read_receipts(uuid, bigint, bigint),
  public.message_readers(uuid, bigint, integer) to authenticated, service_role;
