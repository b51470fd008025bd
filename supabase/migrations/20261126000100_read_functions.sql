-- Read-path functions: each answers one screen of the app in one round trip. All but the e-mail lookup
-- are security invoker, so row level security decides what they return.

-- The recent-chats list: the caller's chats that are not deleted, newest activity first, with the
-- caller's role and read position, an unread count (capped at 1000: the UI shows "999+") and the newest
-- message.
create function public.recent_chats(p_limit integer default 50)
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
  select
    s.id, s.title, s.created_by, s.created_at, s.updated_at, s.last_message_at, s.last_seq, s.last_rev,
    s.deleted_at, m.role, m.last_read_seq,
    (select count(*) from (
       select 1 from public.chat_messages x
        where x.session_id = s.id and x.seq > m.last_read_seq
          and x.deleted_at is null and x.sender_id is distinct from m.user_id
        limit 1000
     ) unread) as unread_count,
    (select to_jsonb(newest) from (
       select x.id, x.session_id, x.sender_id, x.content, x.created_at, x.edited_at, x.deleted_at, x.seq, x.rev
         from public.chat_messages x
        where x.session_id = s.id
        order by x.seq desc
        limit 1
     ) newest) as last_message
  from public.chat_members m
  join public.chat_sessions s on s.id = m.session_id
  where m.user_id = (select auth.uid()) and s.deleted_at is null
  order by coalesce(s.last_message_at, s.created_at) desc, s.id
  limit least(greatest(coalesce(p_limit, 50), 1), 500)
$$;

-- A chat with its members and their display names (the "active chat" entry), or null for a chat the
-- caller cannot see.
create function public.chat_details(p_session uuid)
returns jsonb
language sql stable security invoker set search_path = ''
as $$
  select jsonb_build_object(
    'session', to_jsonb(s),
    'members', coalesce((
      select jsonb_agg(jsonb_build_object(
               'session_id', m.session_id, 'user_id', m.user_id, 'role', m.role,
               'joined_at', m.joined_at, 'last_read_seq', m.last_read_seq,
               'display_name', p.display_name)
             order by m.joined_at, m.user_id)
        from public.chat_members m
        left join public.profiles p on p.id = m.user_id
       where m.session_id = s.id
    ), '[]'::jsonb)
  )
  from public.chat_sessions s
  where s.id = p_session
$$;

-- Find someone to add to a chat by exact e-mail address. security definer because e-mail addresses live
-- in auth.users, which clients cannot read; it returns only the public profile, and only to signed-in users.
create function public.find_profile_by_email(p_email text)
returns table (id uuid, display_name text)
language sql stable security definer set search_path = ''
as $$
  select p.id, p.display_name
    from auth.users u
    join public.profiles p on p.id = u.id
   where lower(u.email) = lower(btrim(p_email))
     and u.deleted_at is null
     and (select auth.uid()) is not null
$$;

revoke all on function public.recent_chats(integer), public.chat_details(uuid), public.find_profile_by_email(text)
  from public, anon;
grant execute on function public.recent_chats(integer), public.chat_details(uuid), public.find_profile_by_email(text)
  to authenticated, service_role;
