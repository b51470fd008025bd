"""Helpers to act as a given user exactly as PostgREST would: ``set local role`` plus JWT claims."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg
import pytest

from tests.conftest import StackHandle

ALICE = uuid.UUID("a11ce000-0000-4000-8000-000000000001")
BOB = uuid.UUID("b0b00000-0000-4000-8000-000000000002")
CAROL = uuid.UUID("ca201000-0000-4000-8000-000000000003")
ALICE_BOB_CHAT = uuid.UUID("c0000000-0000-4000-8000-00000000a0b0")
FALCON_CHAT = uuid.UUID("c0000000-0000-4000-8000-0000000f1c01")
BOOK_CLUB_CHAT = uuid.UUID("c0000000-0000-4000-8000-00000000b0ca")


@dataclass
class Db:
    """A superuser pool plus ``as_user`` transactions that run under row level security."""

    pool: asyncpg.Pool

    @asynccontextmanager
    async def as_user(self, user: uuid.UUID | None, role: str = "authenticated") -> AsyncIterator[asyncpg.Connection]:
        """A transaction as ``role`` with ``sub = user``; committed when the block succeeds."""
        async with self.pool.acquire() as conn, conn.transaction():
            claims = {"role": role, "aud": "authenticated"}
            if user is not None:
                claims["sub"] = str(user)
            await conn.execute(
                "select set_config('role', $1, true), set_config('request.jwt.claims', $2, true)",
                role,
                json.dumps(claims),
            )
            yield conn

    async def new_user(self, name: str) -> uuid.UUID:
        """A fresh auth user (its profile comes from the sign-up trigger)."""
        user_id = uuid.uuid4()
        await self.pool.execute(
            "insert into auth.users (id, aud, role, email, raw_user_meta_data)"
            " values ($1, 'authenticated', 'authenticated', $2, jsonb_build_object('display_name', $3::text))",
            user_id,
            f"{name}-{user_id.hex[:8]}@example.com",
            name,
        )
        return user_id

    async def new_chat(self, owner: uuid.UUID, *members: uuid.UUID, title: str = "test chat") -> uuid.UUID:
        """A chat created by ``owner`` through RLS, with ``members`` added by the owner."""
        chat_id = uuid.uuid4()
        async with self.as_user(owner) as conn:
            await conn.execute("insert into public.chat_sessions (id, title) values ($1, $2)", chat_id, title)
            for member in members:
                await conn.execute(
                    "insert into public.chat_members (session_id, user_id) values ($1, $2)", chat_id, member
                )
        return chat_id

    async def post(self, user: uuid.UUID, chat: uuid.UUID, content: str = "hello") -> asyncpg.Record:
        async with self.as_user(user) as conn:
            row = await conn.fetchrow(
                "insert into public.chat_messages (id, session_id, content) values ($1, $2, $3)"
                " returning id, seq, rev, sender_id",
                uuid.uuid4(),
                chat,
                content,
            )
        assert row is not None
        return row


@pytest.fixture
async def db(stack: StackHandle) -> AsyncIterator[Db]:
    pool = await asyncpg.create_pool(stack.db_url, min_size=1, max_size=12)
    try:
        yield Db(pool)
    finally:
        await pool.close()
