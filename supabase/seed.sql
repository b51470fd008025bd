-- Demo data: three users (password "password123") and a few chats with history.
-- Works with `supabase db reset` on a real local Supabase and with `devstack up` / `devstack reset`.

insert into auth.users (
  instance_id, id, aud, role, email, encrypted_password, email_confirmed_at,
  confirmation_token, recovery_token, email_change_token_new, email_change,
  raw_app_meta_data, raw_user_meta_data, created_at, updated_at
)
select
  '00000000-0000-0000-0000-000000000000', u.id, 'authenticated', 'authenticated', u.email,
  extensions.crypt('password123', extensions.gen_salt('bf', 10)), now(),
  '', '', '', '',
  '{"provider":"email","providers":["email"]}'::jsonb,
  jsonb_build_object('display_name', u.display_name),
  now() - interval '30 days', now() - interval '30 days'
from (values
  ('a11ce000-0000-4000-8000-000000000001'::uuid, 'alice@example.com', 'Alice'),
  ('b0b00000-0000-4000-8000-000000000002'::uuid, 'bob@example.com', 'Bob'),
  ('ca201000-0000-4000-8000-000000000003'::uuid, 'carol@example.com', 'Carol')
) as u (id, email, display_name);

insert into auth.identities (id, provider_id, user_id, identity_data, provider, last_sign_in_at, created_at, updated_at)
select u.id, u.id::text, u.id,
       jsonb_build_object('sub', u.id::text, 'email', u.email, 'email_verified', true),
       'email', now(), now(), now()
from auth.users u
where u.email in ('alice@example.com', 'bob@example.com', 'carol@example.com');

-- Chats. The creator becomes owner through a trigger.
insert into public.chat_sessions (id, title, created_by, created_at) values
  ('c0000000-0000-4000-8000-00000000a0b0', 'Alice & Bob', 'a11ce000-0000-4000-8000-000000000001', now() - interval '20 days'),
  ('c0000000-0000-4000-8000-0000000f1c01', 'Project Falcon', 'a11ce000-0000-4000-8000-000000000001', now() - interval '14 days'),
  ('c0000000-0000-4000-8000-00000000b0ca', 'Book club', 'ca201000-0000-4000-8000-000000000003', now() - interval '7 days');

insert into public.chat_members (session_id, user_id, role, joined_at) values
  ('c0000000-0000-4000-8000-00000000a0b0', 'b0b00000-0000-4000-8000-000000000002', 'member', now() - interval '20 days'),
  ('c0000000-0000-4000-8000-0000000f1c01', 'b0b00000-0000-4000-8000-000000000002', 'member', now() - interval '14 days'),
  ('c0000000-0000-4000-8000-0000000f1c01', 'ca201000-0000-4000-8000-000000000003', 'member', now() - interval '14 days'),
  ('c0000000-0000-4000-8000-00000000b0ca', 'b0b00000-0000-4000-8000-000000000002', 'member', now() - interval '7 days');

-- History, oldest first: the insert trigger numbers messages in insertion order.
insert into public.chat_messages (session_id, sender_id, content, created_at)
select m.session_id, m.sender_id, m.content, now() - m.age
from (values
  (1, 'c0000000-0000-4000-8000-00000000a0b0'::uuid, 'a11ce000-0000-4000-8000-000000000001'::uuid, 'Hi Bob! Did you get the slides?', interval '2 days 3 hours'),
  (2, 'c0000000-0000-4000-8000-00000000a0b0', 'b0b00000-0000-4000-8000-000000000002', 'Yes, thanks. Looking at them tonight.', interval '2 days 2 hours'),
  (3, 'c0000000-0000-4000-8000-00000000a0b0', 'a11ce000-0000-4000-8000-000000000001', 'Great. Slide 7 still needs numbers.', interval '2 days 1 hour'),
  (4, 'c0000000-0000-4000-8000-00000000a0b0', 'b0b00000-0000-4000-8000-000000000002', 'I''ll fill them in tomorrow morning.', interval '1 day 20 hours'),
  (5, 'c0000000-0000-4000-8000-00000000a0b0', 'a11ce000-0000-4000-8000-000000000001', 'Lunch on Friday?', interval '3 hours'),
  (6, 'c0000000-0000-4000-8000-0000000f1c01', 'a11ce000-0000-4000-8000-000000000001', 'Welcome to Project Falcon, everyone.', interval '13 days'),
  (7, 'c0000000-0000-4000-8000-0000000f1c01', 'ca201000-0000-4000-8000-000000000003', 'Glad to be here. Where is the spec?', interval '13 days' - interval '10 minutes'),
  (8, 'c0000000-0000-4000-8000-0000000f1c01', 'a11ce000-0000-4000-8000-000000000001', 'In the shared drive, folder "falcon".', interval '13 days' - interval '20 minutes'),
  (9, 'c0000000-0000-4000-8000-0000000f1c01', 'b0b00000-0000-4000-8000-000000000002', 'The build is green again.', interval '1 day'),
  (10, 'c0000000-0000-4000-8000-0000000f1c01', 'ca201000-0000-4000-8000-000000000003', 'Nice! Release candidate next week then.', interval '23 hours'),
  (11, 'c0000000-0000-4000-8000-00000000b0ca', 'ca201000-0000-4000-8000-000000000003', 'Next book: "The Left Hand of Darkness"?', interval '6 days'),
  (12, 'c0000000-0000-4000-8000-00000000b0ca', 'b0b00000-0000-4000-8000-000000000002', 'Sounds good to me.', interval '5 days')
) as m (n, session_id, sender_id, content, age)
order by m.n;

-- Everyone has read their chats up to the second-newest message, so each has something unread.
update public.chat_members cm
   set last_read_seq = greatest(s.last_seq - 1, 0)
  from public.chat_sessions s
 where s.id = cm.session_id;
