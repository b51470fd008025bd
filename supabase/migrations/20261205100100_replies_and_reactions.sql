-- Replies and reactions. See docs/architecture.md section 2 ("Replies", "Reactions").
--
-- A reply names the message it answers (reply_to), which must be a message of the same chat: a foreign
-- key on (reply_to, session_id). A reply outlives its original's soft delete (the original row stays,
-- deleted, and shows as such).
--
-- Reactions live in message_reactions (one row per message, user and emoji). Each added or removed
-- reaction also rewrites the message's `reactions` summary (counts per emoji) and so takes the chat's
-- next `rev`, exactly like an edit: a reaction then travels with its message everywhere a message goes
-- (REST reads, the back-fill by rev, the `message` broadcast, the client's cache), and a client that
-- missed a reaction while offline repairs it with the back-fill it already does, with no second cursor.
-- What that costs: a reaction is an update of the message row (a new row version, its indexes, the
-- search vector computed again, a `message` broadcast), about what an edit costs; reactions are rarer
-- than messages. Who reacted (and whether I did) is not in the summary (it would grow with every
-- reactor and differ per reader): message_reactions() returns it for a window of messages, and a
-- compact `reaction` broadcast keeps an open chat current.

-- ---------------------------------------------------------------------------------------------------
-- (id, session_id) is unique: the target of the two composite foreign keys below. The primary key is
-- (id) or, where the scale migration ran, (id, session_id) itself; add a constraint only if none
-- covers exactly these columns.
-- ---------------------------------------------------------------------------------------------------
do $$
begin
  if not exists (
    select 1
      from pg_catalog.pg_constraint c
     where c.conrelid = 'public.chat_messages'::regclass and c.contype in ('p', 'u')
       and (select pg_catalog.array_agg(a.attname::text order by a.attname)
              from pg_catalog.pg_attribute a
             where a.attrelid = c.conrelid and a.attnum = any (c.conkey)) = array['id', 'session_id']
  ) then
    alter table public.chat_messages add constraint chat_messages_id_session_id_key unique (id, session_id);
  end if;
end
$$;

-- ---------------------------------------------------------------------------------------------------
-- Replies
-- ---------------------------------------------------------------------------------------------------
alter table public.chat_messages
  add column reply_to uuid,
  add column reactions jsonb not null default '[]'::jsonb;
comment on column public.chat_messages.reply_to is 'The message of the same chat this one answers, if any.';
comment on column public.chat_messages.reactions is
  'Reaction counts, [{"emoji", "count"}] by first reaction; maintained from message_reactions.';

-- NO ACTION (checked at the end of the statement): a chat purge deletes originals and replies in one
-- statement; a single message is never hard-deleted (clients soft-delete).
alter table public.chat_messages
  add constraint chat_messages_reply_in_same_chat
  foreign key (reply_to, session_id) references public.chat_messages (id, session_id);

-- The foreign key's check when messages are purged, and "replies to this message".
create index chat_messages_reply_to_idx on public.chat_messages (reply_to, session_id) where reply_to is not null;

alter table public.chat_messages
  add constraint chat_messages_reactions_is_array check (pg_catalog.jsonb_typeof(reactions) = 'array');

grant insert (reply_to) on table public.chat_messages to authenticated;

-- ---------------------------------------------------------------------------------------------------
-- Reactions
-- ---------------------------------------------------------------------------------------------------
create table public.message_reactions (
  session_id uuid not null,
  message_id uuid not null,
  -- auth.users, not profiles (the same rows, and the same cascade through profiles' own key): with a
  -- key to profiles, PostgREST would see message_reactions as a junction between chat_messages and
  -- profiles, and `chat_messages?select=*,profiles(...)` would become ambiguous (PGRST201).
  user_id uuid not null default auth.uid() references auth.users (id) on delete cascade,
  emoji text not null,
  created_at timestamptz not null default now(),
  primary key (session_id, message_id, user_id, emoji),
  foreign key (message_id, session_id) references public.chat_messages (id, session_id) on delete cascade,
  -- An emoji: 1 to 16 characters (the longest emoji sequences, families and flags of regions, have
  -- up to 10 code points), no blanks or control characters, no ASCII letters (so no words), and at
  -- least one character beyond ASCII (keycaps like 1️⃣ keep their ASCII digit).
  constraint message_reactions_emoji_valid check (
    pg_catalog.char_length(emoji) between 1 and 16
    and pg_catalog.octet_length(emoji) <= 64
    and emoji !~ '[[:space:][:cntrl:]]'
    and emoji !~ '[A-Za-z]'
    and emoji ~ '[^\x01-\x7F]'
  )
);
comment on table public.message_reactions is
  'One row per message, user and emoji. Adding or removing one updates chat_messages.reactions (and rev).';

-- "on delete cascade" from auth.users.
create index message_reactions_user_id_idx on public.message_reactions (user_id);

-- Reactions change their message's summary, and so its rev, under the same locks as an edit and in
-- the same order (the message row, then the chat row), so that a reaction and an edit of one message,
-- or two reactions to it, queue instead of deadlocking. The BEFORE trigger takes the message row
-- first: the foreign key's check would otherwise take a share lock on it that two reactions could each
-- hold while waiting for the other's chat lock. Not for callers that may not react there: the policy
-- refuses them afterwards, and nothing here may tell them whether the message exists.
create function private.lock_reacted_message() returns trigger
language plpgsql security definer set search_path = ''
as $$
declare
  v_row public.message_reactions := case when tg_op = 'DELETE' then old else new end;
  v_deleted timestamptz;
  v_count integer;
begin
  if auth.uid() is not null and not private.is_member(v_row.session_id) then
    return case when tg_op = 'DELETE' then old else new end;
  end if;
  select m.deleted_at into v_deleted
    from public.chat_messages m
   where m.id = v_row.message_id and m.session_id = v_row.session_id
     for update;
  if tg_op = 'INSERT' then
    if not found then
      raise exception 'message % is not in chat %', v_row.message_id, v_row.session_id
        using errcode = 'foreign_key_violation';
    end if;
    if v_deleted is not null then
      raise exception 'a deleted message cannot get reactions' using errcode = 'check_violation';
    end if;
    select pg_catalog.count(*) into v_count
      from public.message_reactions r
     where r.session_id = new.session_id and r.message_id = new.message_id and r.user_id = new.user_id;
    if v_count >= 20 then
      raise exception 'at most 20 reactions per person and message' using errcode = 'check_violation';
    end if;
  end if;
  return case when tg_op = 'DELETE' then old else new end;
end
$$;

create trigger message_reactions_lock_message
  before insert or delete on public.message_reactions
  for each row execute function private.lock_reacted_message();

-- After the change: the message's summary (which takes the chat's next rev through
-- private.revise_message, and so broadcasts the message), then the reaction itself to chat:<id>, in the
-- shape of the other row broadcasts (record on insert, old_record on delete).
create function private.apply_reaction() returns trigger
language plpgsql security definer set search_path = ''
as $$
declare
  v_row public.message_reactions := case when tg_op = 'DELETE' then old else new end;
begin
  update public.chat_messages m
     set reactions = coalesce((
           select pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('emoji', e.emoji, 'count', e.n)
                                       order by e.first_at, e.emoji)
             from (select r.emoji, pg_catalog.count(*) as n, pg_catalog.min(r.created_at) as first_at
                     from public.message_reactions r
                    where r.session_id = m.session_id and r.message_id = m.id
                    group by r.emoji) as e), '[]'::jsonb)
   where m.id = v_row.message_id and m.session_id = v_row.session_id and m.deleted_at is null;
  if not found then
    -- A deleted message (its reactions no longer show) or one being purged: nothing to announce.
    return null;
  end if;
  perform realtime.send(
    private.change_payload(
      tg_op, tg_table_name,
      case when tg_op = 'DELETE' then null else pg_catalog.to_jsonb(new) end,
      case when tg_op = 'DELETE' then pg_catalog.to_jsonb(old) end),
    'reaction', 'chat:' || v_row.session_id, true);
  return null;
end
$$;

create trigger message_reactions_apply
  after insert or delete on public.message_reactions
  for each row execute function private.apply_reaction();

-- Edits and soft deletes as before, plus: a change of the reaction summary takes the next rev (like an
-- edit, without edited_at), a soft delete clears the summary, and reply_to never changes.
create or replace function private.revise_message() returns trigger
language plpgsql security definer set search_path = ''
as $$
begin
  -- sender_id may only become null, through "on delete set null" when the sender's profile goes.
  if new.id <> old.id or new.session_id <> old.session_id or new.seq <> old.seq
     or new.created_at <> old.created_at or new.reply_to is distinct from old.reply_to
     or (new.sender_id is distinct from old.sender_id and new.sender_id is not null) then
    raise exception 'id, chat, sender, seq, created_at and reply_to of a message cannot change'
      using errcode = 'check_violation';
  end if;
  if old.deleted_at is not null then
    if new.deleted_at is null then
      raise exception 'a deleted message cannot be restored' using errcode = 'check_violation';
    end if;
    if new.content is distinct from old.content then
      raise exception 'a deleted message cannot be edited' using errcode = 'check_violation';
    end if;
    new.rev := old.rev;
    new.reactions := old.reactions;
    return new;
  end if;

  if new.deleted_at is not null then
    -- The server's clock, not the client's, dates the deletion.
    new.deleted_at := now();
    new.content := '';
    new.reactions := '[]'::jsonb;
  elsif new.content is distinct from old.content then
    new.edited_at := now();
  elsif new.reactions is distinct from old.reactions then
    new.edited_at := old.edited_at;
  else
    new.edited_at := old.edited_at;
    new.rev := old.rev;
    return new;
  end if;

  update public.chat_sessions s set last_rev = s.last_rev + 1
   where s.id = new.session_id
   returning s.last_rev into new.rev;
  return new;
end
$$;

revoke all on function private.lock_reacted_message(), private.apply_reaction(), private.revise_message() from public;

-- ---------------------------------------------------------------------------------------------------
-- Privileges and row level security: members see the reactions of their chats; everyone adds and
-- removes only their own, only where they may post (member of a chat that is not deleted); nobody
-- updates (a reaction is there or not). The toggle is idempotent for an outbox: add is
-- `insert ... on conflict do nothing`, remove is a delete by the full key.
-- ---------------------------------------------------------------------------------------------------
revoke all on table public.message_reactions from anon, authenticated, service_role;
grant select on table public.message_reactions to authenticated;
grant insert (session_id, message_id, user_id, emoji) on table public.message_reactions to authenticated;
grant delete on table public.message_reactions to authenticated;
grant select, insert, delete on table public.message_reactions to service_role;

alter table public.message_reactions enable row level security;

create policy "reactions: members read" on public.message_reactions
  for select to authenticated
  using (private.is_member(session_id));

create policy "reactions: members react as themselves" on public.message_reactions
  for insert to authenticated
  with check (user_id = (select auth.uid()) and private.can_post(session_id));

create policy "reactions: remove own" on public.message_reactions
  for delete to authenticated
  using (user_id = (select auth.uid()) and private.can_post(session_id));

-- ---------------------------------------------------------------------------------------------------
-- Who reacted to a window of messages: for each message of p_session with seq in [p_from_seq,
-- p_to_seq] (at most 500) that has reactions and is not deleted, one row per emoji with its count,
-- whether the caller is among them, and the first p_users reactors (by time) with their names.
-- Security invoker: row level security decides (nothing for a chat the caller is not in).
-- ---------------------------------------------------------------------------------------------------
create function public.message_reactions(
  p_session uuid, p_from_seq bigint, p_to_seq bigint, p_users integer default 10
)
returns table (message_id uuid, seq bigint, emoji text, count bigint, mine boolean, users jsonb)
language plpgsql stable security invoker set search_path = ''
as $$
declare
  v_users integer := least(greatest(coalesce(p_users, 10), 0), 100);
begin
  if p_from_seq is null or p_to_seq is null or p_to_seq < p_from_seq then
    raise exception 'p_from_seq and p_to_seq must name a range of seq' using errcode = 'invalid_parameter_value';
  end if;
  if p_to_seq - p_from_seq >= 500 then
    raise exception 'at most 500 messages at a time' using errcode = 'invalid_parameter_value';
  end if;
  return query
    select m.id, m.seq, e.emoji, e.n, e.mine, e.users
      from public.chat_messages m
      cross join lateral (
        select r.emoji, pg_catalog.count(*) as n,
               pg_catalog.bool_or(r.user_id = (select auth.uid())) as mine,
               coalesce(pg_catalog.jsonb_agg(
                          pg_catalog.jsonb_build_object('user_id', r.user_id, 'display_name', p.display_name)
                          order by r.created_at, r.user_id)
                        filter (where r.rank <= v_users), '[]'::jsonb) as users,
               pg_catalog.min(r.created_at) as first_at
          from (select x.*, pg_catalog.row_number() over (partition by x.emoji order by x.created_at, x.user_id) as rank
                  from public.message_reactions x
                 where x.session_id = m.session_id and x.message_id = m.id) as r
          left join public.profiles p on p.id = r.user_id
         group by r.emoji
      ) as e
     where m.session_id = p_session and m.seq between p_from_seq and p_to_seq
       and m.deleted_at is null and m.reactions <> '[]'::jsonb
     order by m.seq, e.first_at, e.emoji;
end
$$;

revoke all on function public.message_reactions(uuid, bigint, bigint, integer) from public, anon;
grant execute on function public.message_reactions(uuid, bigint, bigint, integer) to authenticated, service_role;
