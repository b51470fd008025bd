"""Accounts with many chats, written straight into the database as the ``postgres`` superuser (set-based, so
a thousand chats take a moment), for tests that need more chats than the API makes quickly."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import asyncpg

PASSWORD = "password123"


@dataclass(frozen=True)
class Rooms:
    """A user who can sign in (``PASSWORD``), in chats titled ``Room 0001`` (the newest) onwards, each
    with one message from the same partner."""

    email: str
    user: uuid.UUID
    partner: uuid.UUID
    chats: tuple[uuid.UUID, ...]


async def user_in_rooms(db_url: str, rooms: int) -> Rooms:
    """A new user in ``rooms`` two-person chats; chat n's message is n minutes old."""
    email = f"rooms-{uuid.uuid4().hex[:8]}@example.com"
    user, partner = uuid.uuid4(), uuid.uuid4()
    chats = [uuid.uuid4() for _ in range(rooms)]
    conn = await asyncpg.connect(db_url)
    try:
        # As supabase/seed.sql writes users (GoTrue's token columns empty, not NULL), with a cheaper hash.
        await conn.execute(
            "insert into auth.users (instance_id, id, aud, role, email, encrypted_password, email_confirmed_at,"
            " confirmation_token, recovery_token, email_change_token_new, email_change,"
            " raw_app_meta_data, raw_user_meta_data, created_at, updated_at)"
            " select '00000000-0000-0000-0000-000000000000', u.id, 'authenticated', 'authenticated', u.email,"
            " extensions.crypt($5, extensions.gen_salt('bf', 4)), now(), '', '', '', '',"
            ' \'{"provider":"email","providers":["email"]}\'::jsonb, jsonb_build_object(\'display_name\', u.name),'
            " now(), now()"
            " from (values ($1::uuid, $2::text, 'Rooms'), ($3::uuid, $4::text, 'Partner')) u (id, email, name)",
            user,
            email,
            partner,
            f"partner-{email}",
            PASSWORD,
        )
        await conn.execute(
            "insert into public.chat_sessions (id, title, created_by, created_at)"
            " select c, 'Room ' || lpad(n::text, 4, '0'), $2, now() - interval '60 days'"
            " from unnest($1::uuid[]) with ordinality t (c, n)",
            chats,
            user,
        )
        await conn.execute(
            "insert into public.chat_members (session_id, user_id) select c, $2 from unnest($1::uuid[]) c",
            chats,
            partner,
        )
        await conn.execute(
            "insert into public.chat_messages (session_id, sender_id, content, created_at)"
            " select c, $2, 'hello from room ' || n, now() - n * interval '1 minute'"
            " from unnest($1::uuid[]) with ordinality t (c, n)",
            chats,
            partner,
        )
    finally:
        await conn.close()
    return Rooms(email=email, user=user, partner=partner, chats=tuple(chats))
