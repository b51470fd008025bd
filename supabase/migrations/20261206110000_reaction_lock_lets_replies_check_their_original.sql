-- A reaction locked its message "for update", which conflicts with the key-share lock a reply's foreign
-- key check takes on its original. A reply inserted while its author's transaction held the chat row
-- (every insert takes it for the seq) and a reaction to the original waiting for that chat row then
-- deadlocked (40P01): the app's outbox sends a reply and a reaction at the same moment after an
-- offline spell. "for no key update" is what an edit's UPDATE takes: it still queues reactions and
-- edits of one message behind each other (they conflict with each other), but not a reply's check.

create or replace function private.lock_reacted_message() returns trigger
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
     for no key update;
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
