-- Full-text search over messages: a generated tsvector with a GIN index, in a configuration that works
-- for any language, and search_messages(), which finds the caller's messages newest first with a
-- highlighted snippet. See docs/architecture.md section 2 ("Search").
--
-- Language-neutral: no stemming, no stop words (a stemmer is right for one language and wrong for all
-- the others, and a chat mixes them). Words are matched by prefix instead, which covers most
-- inflection in practice ("книг" finds "книга" and "книги", "house" finds "houses"). On top of the
-- `simple` configuration:
--   * NFKC (full-width Latin and digits, ligatures, Arabic presentation forms, half-width kana);
--   * lower case (the `simple` dictionary, by the database's C.UTF-8 character classes) and accents
--     removed (`unaccent`: "uber" finds "Über", "strasse" finds "Straße", "елка" finds "ёлка");
--   * Arabic: diacritics (harakat) and tatweel removed, alef forms, alef maksura and teh marbuta
--     unified, as search engines normalize Arabic;
--   * Chinese, Japanese and Korean, written without spaces between words: every run of their
--     characters is indexed as overlapping character pairs (bigrams) plus its last character alone,
--     and a query run must match as a phrase of its pairs; a single character matches as a prefix.
--     So any substring of a run is found ("中文" in "我喜欢学习中文"), which a word parser cannot do
--     (it sees the whole run as one word) and a trigram index cannot do for the one- and two-character
--     words these languages mostly use.

create extension if not exists unaccent with schema extensions;

create text search configuration private.chat_search (copy = pg_catalog.simple);
alter text search configuration private.chat_search
  alter mapping for word, hword, hword_part with extensions.unaccent, pg_catalog.simple;
comment on text search configuration private.chat_search is
  'Message search: simple (lower case, no stemming, no stop words) with accents removed.';

-- NFKC plus the Arabic normalization; what both the documents and the queries go through. (plpgsql,
-- not SQL: a SQL function called from another is planned again on every call, which made indexing a
-- message 30 times slower.)
create function private.search_normalize(p_text text) returns text
language plpgsql immutable strict parallel safe set search_path = ''
as $$
declare
  v_text text;
begin
  if pg_catalog.octet_length(p_text) = pg_catalog.char_length(p_text) then
    return p_text;  -- ASCII: nothing to normalize
  end if;
  v_text := pg_catalog.normalize(p_text, 'NFKC');
  if v_text ~ '[\u0600-\u06FF]' then
    v_text := pg_catalog.translate(
      pg_catalog.regexp_replace(v_text, '[\u0610-\u061A\u064B-\u065F\u0670\u06D6-\u06DC\u06DF-\u06E8\u06EA-\u06ED\u0640]', '', 'g'),
      U&'\0623\0625\0622\0671\0649\0629', U&'\0627\0627\0627\0627\064A\0647');
  end if;
  return v_text;
end
$$;

-- The text that is indexed: normalized, with each CJK run replaced by its bigrams and last character.
-- Text with an e-mail address or a URL also gets a copy with punctuation turned into blanks: the
-- parser keeps "bob@example.com" and "www.example.com" whole, and a search for "bob@exa" or "example"
-- must find them.
create function private.search_document(p_text text) returns text
language plpgsql immutable strict parallel safe set search_path = ''
as $$
declare
  v_text text := private.search_normalize(p_text);
begin
  if v_text ~ '[\u3005\u3006\u3040-\u30FA\u30FC-\u30FF\u3400-\u4DBF\u4E00-\u9FFF\uAC00-\uD7AF\uF900-\uFAFF\U00020000-\U0002FA1F]' then
    v_text := pg_catalog.regexp_replace(v_text, '[\u3005\u3006\u3040-\u30FA\u30FC-\u30FF\u3400-\u4DBF\u4E00-\u9FFF\uAC00-\uD7AF\uF900-\uFAFF\U00020000-\U0002FA1F]+', ' ', 'g') || ' ' || (
      select pg_catalog.string_agg(pg_catalog.substr(r.run[1], i.i, 2), ' ' order by r.ord, i.i)
        from pg_catalog.regexp_matches(v_text, '[\u3005\u3006\u3040-\u30FA\u30FC-\u30FF\u3400-\u4DBF\u4E00-\u9FFF\uAC00-\uD7AF\uF900-\uFAFF\U00020000-\U0002FA1F]+', 'g') with ordinality as r (run, ord),
             pg_catalog.generate_series(1, pg_catalog.char_length(r.run[1])) as i (i));
  end if;
  if pg_catalog.strpos(v_text, '@') > 0 or pg_catalog.strpos(v_text, '://') > 0 or pg_catalog.strpos(v_text, 'www.') > 0 then
    v_text := v_text || ' ' || pg_catalog.regexp_replace(v_text, '[[:punct:]]+', ' ', 'g');
  end if;
  return v_text;
end
$$;

-- A lexeme as a tsquery operand: quoted, with quotes and backslashes doubled (tsquery's own syntax;
-- nothing here is SQL).
create function private.tsquery_operand(p_lexeme text) returns text
language sql immutable strict parallel safe set search_path = ''
return '''' || pg_catalog.replace(pg_catalog.replace(p_lexeme, '\', '\\'), '''', '''''') || '''';

-- What a user typed as a tsquery: every word a prefix, all of them required; a CJK run a phrase of
-- its bigrams (one character: a prefix). Null when nothing searchable is left (empty, blanks,
-- punctuation only): search_messages then finds nothing. Never an error, whatever the text.
create function private.search_query(p_query text) returns tsquery
language sql immutable parallel safe set search_path = ''
begin atomic
  with normalized as (
    select private.search_normalize(coalesce(p_query, '')) as t
  ),
  runs as (
    select r.run[1] as run, r.ord
      from normalized n,
           pg_catalog.regexp_matches(
             n.t, '[\u3005\u3006\u3040-\u30FA\u30FC-\u30FF\u3400-\u4DBF\u4E00-\u9FFF\uAC00-\uD7AF\uF900-\uFAFF\U00020000-\U0002FA1F]+', 'g')
             with ordinality as r (run, ord)
  ),
  terms as (
    select 1 as kind, w.lexeme as sort_key,
           private.tsquery_operand(w.lexeme) || ':*' as term
      from normalized n,
           pg_catalog.unnest(pg_catalog.to_tsvector('private.chat_search'::regconfig, pg_catalog.regexp_replace(
             n.t, '[\u3005\u3006\u3040-\u30FA\u30FC-\u30FF\u3400-\u4DBF\u4E00-\u9FFF\uAC00-\uD7AF\uF900-\uFAFF\U00020000-\U0002FA1F]+', ' ', 'g'))) as w
    union all
    select 2, pg_catalog.lpad(r.ord::text, 10, '0'),
           case when pg_catalog.char_length(r.run) = 1 then private.tsquery_operand(r.run) || ':*'
                else '(' || (select pg_catalog.string_agg(private.tsquery_operand(pg_catalog.substr(r.run, i.i, 2)), ' <-> ' order by i.i)
                               from pg_catalog.generate_series(1, pg_catalog.char_length(r.run) - 1) as i (i)) || ')'
           end
      from runs r
  )
  select nullif(pg_catalog.string_agg(t.term, ' & ' order by t.kind, t.sort_key), '')::tsquery
    from terms t;
end;

revoke all on function private.search_normalize(text), private.search_document(text), private.tsquery_operand(text),
  private.search_query(text) from public;
-- The generated column below calls search_document as whoever inserts or updates a message.
grant execute on function private.search_normalize(text), private.search_document(text), private.tsquery_operand(text),
  private.search_query(text) to authenticated, service_role;

-- ---------------------------------------------------------------------------------------------------
-- The column and its index. Stored, so a search never re-parses a message; a soft-deleted message has
-- no text and so an empty vector (never found). Adding it rewrites the table once (an ACCESS EXCLUSIVE
-- lock for as long as that takes: about a minute per million messages on a small machine).
-- ---------------------------------------------------------------------------------------------------
alter table public.chat_messages
  add column search_vector tsvector
  generated always as (pg_catalog.to_tsvector('private.chat_search'::regconfig, private.search_document(content))) stored;
comment on column public.chat_messages.search_vector is
  'Search index of content (private.chat_search over private.search_document); never sent to clients.';

create index chat_messages_search_vector_idx on public.chat_messages using gin (search_vector);

-- Newest first within a chat, in search order: how a common word is searched (search_candidates).
create index chat_messages_session_id_created_at_idx on public.chat_messages (session_id, created_at, id);

-- Clients read it like any column (it is derived from text they can read), but nothing sends it
-- unasked: REST reads name their columns, and the broadcasts and the audit trail below leave it out.

-- Broadcasts of messages without the vector (the private-topics migration sent the whole row through
-- realtime.broadcast_changes; this sends the same payload, by realtime.send, with the vector left out).
create or replace function private.broadcast_message_change() returns trigger
language plpgsql security definer set search_path = ''
as $$
begin
  perform realtime.send(
    private.change_payload(tg_op, tg_table_name, pg_catalog.to_jsonb(new) - 'search_vector', null),
    'message', 'chat:' || new.session_id, true);
  if tg_op = 'INSERT' then
    perform private.announce_message(new);
  end if;
  return null;
end
$$;

-- The audit trail keeps old and new text, not their vectors.
create or replace function audit.record_change() returns trigger
language plpgsql security definer set search_path = ''
as $$
declare
  v_action text;
  v_session uuid;
  v_target uuid;
begin
  if tg_table_name = 'chat_members' then
    v_session := coalesce(new.session_id, old.session_id);
    v_target := coalesce(new.user_id, old.user_id);
    v_action := case tg_op
      when 'INSERT' then 'member.added'
      when 'DELETE' then 'member.removed'
      else 'member.role_changed'
    end;
    if tg_op = 'UPDATE' and new.role is not distinct from old.role then
      return null;
    end if;
  elsif tg_table_name = 'chat_sessions' then
    v_session := coalesce(new.id, old.id);
    v_target := v_session;
    if tg_op = 'DELETE' then
      v_action := 'chat.purged';
    elsif new.deleted_at is not null and old.deleted_at is null then
      v_action := 'chat.deleted';
    elsif new.deleted_at is null and old.deleted_at is not null then
      v_action := 'chat.restored';
    else
      return null;
    end if;
  elsif tg_table_name = 'chat_messages' then
    v_session := coalesce(new.session_id, old.session_id);
    v_target := coalesce(new.id, old.id);
    if tg_op = 'DELETE' then
      v_action := 'message.purged';
    elsif new.deleted_at is not null and old.deleted_at is null then
      v_action := 'message.deleted';
    elsif new.content is distinct from old.content then
      v_action := 'message.edited';
    else
      return null;
    end if;
  else
    return null;
  end if;

  insert into audit.events (actor_id, actor_role, action, session_id, target_id, old_row, new_row)
  values (
    auth.uid(),
    coalesce(auth.role(), current_user),
    v_action,
    v_session,
    v_target,
    case when tg_op in ('UPDATE', 'DELETE') then pg_catalog.to_jsonb(old) - 'search_vector' end,
    case when tg_op in ('INSERT', 'UPDATE') then pg_catalog.to_jsonb(new) - 'search_vector' end
  );
  return null;
end
$$;

-- ---------------------------------------------------------------------------------------------------
-- search_messages: the caller's messages that match p_query, newest first (created_at, then id), after
-- the keyset (p_before_at, p_before_id) of the previous page's last row; in one chat (p_chat_id) or in
-- all of the caller's chats that are not deleted. Each row has a snippet of the text with the matches
-- between U+E000 and U+E001 (plain text otherwise: the client escapes it and turns the two markers into
-- its highlight; the markers are removed from the text first, so a message cannot forge a highlight).
--
-- Security invoker: row level security decides what it returns. Why a security definer helper finds
-- the candidates: under row level security a query's own conditions that are not leakproof run only
-- after the policy's, and the full-text match (tsvector @@ tsquery) is not leakproof. So as the caller,
-- Postgres cannot use the GIN index at all: it reads every message the policy lets through and checks
-- the policy first (a seq scan of all messages, 1M policy checks; EXPLAIN in docs/architecture.md).
-- The helper runs the search as the table's owner, restricted to the caller's memberships, and returns
-- ids only; the rows themselves are read back here under the caller's policies, so a helper that
-- returned too much would still show nothing the caller may not see.
-- ---------------------------------------------------------------------------------------------------
create function private.search_candidates(
  p_query tsquery, p_chat_id uuid, p_before_at timestamptz, p_before_id uuid, p_limit integer
)
returns table (id uuid, session_id uuid, created_at timestamptz)
-- volatile: it EXPLAINs (which Postgres allows only there); it writes nothing.
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_chats uuid[];
  v_plan json;
  v_expected numeric;
  v_before_at timestamptz := coalesce(p_before_at, 'infinity'::timestamptz);
  v_before_id uuid := coalesce(p_before_id, '00000000-0000-0000-0000-000000000000'::uuid);
begin
  -- The caller's chats first (an index-only scan of their memberships), so that the search itself is
  -- bounded by what the caller may see, not by the whole table.
  select pg_catalog.array_agg(c.session_id) into v_chats
    from public.chat_members c
    join public.chat_sessions s on s.id = c.session_id
   where c.user_id = (select auth.uid()) and s.deleted_at is null
     and (p_chat_id is null or c.session_id = p_chat_id);
  if v_chats is null then
    return;
  end if;
  -- Two plans, chosen by how many of the caller's messages the planner expects to match (EXECUTE with
  -- the values bound, so it plans for this query, not for any text):
  --   * few (a rare word): read the matches from the GIN index, keep the caller's chats, sort them;
  --   * many (a common word, the first letter typed): walk each chat newest first on
  --     (session_id, created_at, id) and stop at p_limit matches per chat, then keep the newest overall.
  -- Either way the work is bounded by what the caller may see, never by the table. The SQL text is
  -- constant; only values are bound.
  execute 'explain (format json) select 1 from public.chat_messages m
            where m.session_id = any ($1) and m.search_vector @@ $2'
    into v_plan using v_chats, p_query;
  v_expected := (v_plan -> 0 -> 'Plan' ->> 'Plan Rows')::numeric;
  if v_expected > pg_catalog.cardinality(v_chats) * p_limit * 4 then
    return query execute
      'select x.id, x.session_id, x.created_at
         from pg_catalog.unnest($1) as c (id)
         cross join lateral (
           select m.id, m.session_id, m.created_at
             from public.chat_messages m
            where m.session_id = c.id and m.search_vector @@ $2 and m.deleted_at is null
              and (m.created_at, m.id) < ($3, $4)
            order by m.created_at desc, m.id desc
            limit $5) as x
        order by x.created_at desc, x.id desc
        limit $5'
      using v_chats, p_query, v_before_at, v_before_id, p_limit;
  else
    return query execute
      'select m.id, m.session_id, m.created_at
         from public.chat_messages m
        where m.session_id = any ($1) and m.search_vector @@ $2 and m.deleted_at is null
          and (m.created_at, m.id) < ($3, $4)
        order by m.created_at desc, m.id desc
        limit $5'
      using v_chats, p_query, v_before_at, v_before_id, p_limit;
  end if;
end
$$;

-- The snippet of a found message: ts_headline's best passage (about 30 words) with every match
-- marked. For CJK, whose runs ts_headline takes for one word each, a window of 120 characters around
-- the first occurrence of one of the query's runs, with each run marked where it occurs literally.
create function private.search_snippet(p_content text, p_query tsquery, p_text text) returns text
language plpgsql immutable parallel safe set search_path = ''
as $$
declare
  v_text text := pg_catalog.translate(p_content, U&'\E000\E001', U&'\FFFD\FFFD');
  v_options text := 'StartSel=' || U&'\E000' || ', StopSel=' || U&'\E001';
  v_runs text[];
  v_run text;
  v_first integer;
  v_start integer;
  v_snippet text;
begin
  select pg_catalog.array_agg(r.run[1] order by pg_catalog.char_length(r.run[1]) desc, r.ord) into v_runs
    from pg_catalog.regexp_matches(
           private.search_normalize(coalesce(p_text, '')),
           '[\u3005\u3006\u3040-\u30FA\u30FC-\u30FF\u3400-\u4DBF\u4E00-\u9FFF\uAC00-\uD7AF\uF900-\uFAFF\U00020000-\U0002FA1F]+', 'g')
         with ordinality as r (run, ord);
  if v_runs is null then
    return pg_catalog.ts_headline('private.chat_search'::regconfig, v_text, p_query,
                                  v_options || ', MaxWords=30, MinWords=12');
  end if;
  select pg_catalog.min(x.pos) into v_first
    from (select pg_catalog.strpos(v_text, r.run) as pos from pg_catalog.unnest(v_runs) as r (run)) as x
   where x.pos > 0;
  v_start := greatest(coalesce(v_first, 1) - 30, 1);
  v_snippet := pg_catalog.ts_headline('private.chat_search'::regconfig, pg_catalog.substr(v_text, v_start, 120), p_query,
                                      v_options || ', HighlightAll=true');
  -- Longest runs first, and a run already inside markers is left alone.
  foreach v_run in array v_runs loop
    v_snippet := pg_catalog.regexp_replace(
      v_snippet, '(^|[^' || U&'\E000' || '])(' || v_run || ')', '\1' || U&'\E000' || '\2' || U&'\E001', 'g');
  end loop;
  return case when v_start > 1 then '… ' else '' end || v_snippet
         || case when v_start + 120 <= pg_catalog.char_length(v_text) then ' …' else '' end;
end
$$;

create function public.search_messages(
  p_query text,
  p_chat_id uuid default null,
  p_before_at timestamptz default null,
  p_before_id uuid default null,
  p_limit integer default 30
)
returns table (
  id uuid,
  chat_id uuid,
  seq bigint,
  sender_id uuid,
  created_at timestamptz,
  edited_at timestamptz,
  snippet text
)
-- volatile because search_candidates is; it writes nothing (PostgREST calls it with POST either way).
language plpgsql volatile security invoker set search_path = ''
as $$
declare
  v_query tsquery;
  v_limit integer := least(greatest(coalesce(p_limit, 30), 1), 100);
begin
  if pg_catalog.char_length(p_query) > 500 then
    raise exception 'the search text is % characters long; the limit is 500', pg_catalog.char_length(p_query)
      using errcode = 'invalid_parameter_value';
  end if;
  if p_before_id is not null and p_before_at is null then
    raise exception 'p_before_id needs p_before_at (the keyset is both)' using errcode = 'invalid_parameter_value';
  end if;
  v_query := private.search_query(p_query);
  if v_query is null then
    return;
  end if;
  return query
    select m.id, m.session_id, m.seq, m.sender_id, m.created_at, m.edited_at,
           private.search_snippet(m.content, v_query, p_query)
      from private.search_candidates(v_query, p_chat_id, p_before_at, p_before_id, v_limit) c
      join public.chat_messages m on m.id = c.id and m.session_id = c.session_id
     where m.deleted_at is null
     order by m.created_at desc, m.id desc;
end
$$;

revoke all on function private.search_candidates(tsquery, uuid, timestamptz, uuid, integer),
  private.search_snippet(text, tsquery, text) from public;
grant execute on function private.search_candidates(tsquery, uuid, timestamptz, uuid, integer),
  private.search_snippet(text, tsquery, text) to authenticated, service_role;
revoke all on function public.search_messages(text, uuid, timestamptz, uuid, integer) from public, anon;
grant execute on function public.search_messages(text, uuid, timestamptz, uuid, integer) to authenticated, service_role;
