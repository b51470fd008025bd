"""Data sets for ``bench_scale`` (and the scale tests): many chats, many unread, many members, written as
the ``postgres`` superuser in a few set-based statements through the schema's own triggers.

The broadcast triggers of the private-topics migration are switched off while filling (a hundred
thousand historical messages would otherwise write several hundred thousand ``realtime.messages`` rows
and keep the gateway's WAL reader busy long after), and the fill waits until the gateway has read the
WAL it wrote, so that no measurement shares the machine with that work.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

import asyncpg

BROADCAST_TRIGGERS = (
    ("chat_messages", "chat_messages_broadcast_insert"),
    ("chat_members", "chat_members_broadcast"),
)
BATCH = 250  # messages of one chat per statement (each bumps the chat row; a long chain gets slow)


@dataclass
class Account:
    """A user with chats: who they are, their chats (newest activity first) and who else is in them."""

    user: uuid.UUID
    chats: list[uuid.UUID] = field(default_factory=list)
    partner: uuid.UUID | None = None


async def users(conn: asyncpg.Connection, count: int, prefix: str = "bench") -> list[uuid.UUID]:
    """``count`` new auth users (their profiles come from the sign-up trigger), named ``<prefix> <n>``."""
    ids = [uuid.uuid4() for _ in range(count)]
    await conn.execute(
        "insert into auth.users (id, aud, role, email, raw_user_meta_data)"
        " select u, 'authenticated', 'authenticated', $2 || '-' || replace(u::text, '-', '') || '@example.com',"
        "        jsonb_build_object('display_name', $2 || ' ' || n)"
        " from unnest($1::uuid[]) with ordinality as t (u, n)",
        ids,
        prefix,
    )
    return ids


async def broadcasts(conn: asyncpg.Connection, *, enabled: bool) -> None:
    """Switch the database broadcast triggers on or off (superuser; for filling only)."""
    verb = "enable" if enabled else "disable"
    for table, trigger in BROADCAST_TRIGGERS:
        exists = await conn.fetchval(
            "select exists (select from pg_trigger where tgname = $1 and tgrelid = $2::regclass)",
            trigger,
            f"public.{table}",
        )
        if exists:
            await conn.execute(f"alter table public.{table} {verb} trigger {trigger}")


async def account_with_chats(
    conn: asyncpg.Connection,
    count: int,
    *,
    title: str = "Chat",
    unread: int = 0,
    user: uuid.UUID | None = None,
    partner: uuid.UUID | None = None,
) -> Account:
    """A user in ``count`` two-person chats with one partner; each chat has ``unread + 1`` messages from the
    partner, the user has read all but the last ``unread`` of them. Chat n (1-based) is titled
    ``<title> <n>`` and its newest message is n minutes old, so chat 1 is the most recent."""
    if user is None:
        [user] = await users(conn, 1, "owner")
    if partner is None:
        [partner] = await users(conn, 1, "partner")
    chats = [uuid.uuid4() for _ in range(count)]
    await conn.execute(
        "insert into public.chat_sessions (id, title, created_by, created_at)"
        " select c, $2 || ' ' || n, $3, now() - interval '30 days' - n * interval '1 minute'"
        " from unnest($1::uuid[]) with ordinality as t (c, n)",
        chats,
        title,
        user,
    )
    await conn.execute(
        "insert into public.chat_members (session_id, user_id, role, joined_at)"
        " select c, $2, 'member', now() - interval '30 days' from unnest($1::uuid[]) c",
        chats,
        partner,
    )
    per_chat = unread + 1
    # Chats in groups whose messages stay within BATCH per statement; chat n's messages end n minutes ago.
    group = max(1, BATCH // per_chat)
    for start in range(0, count, group):
        await conn.execute(
            "insert into public.chat_messages (session_id, sender_id, content, created_at)"
            " select c, $2, 'message ' || g || ' in ' || $4 || ' ' || (n + $5),"
            "        now() - (n + $5) * interval '1 minute' - ($3 - g) * interval '1 millisecond'"
            " from unnest($1::uuid[]) with ordinality as t (c, n), generate_series(1, $3) g"
            " order by n, g",
            chats[start : start + group],
            partner,
            per_chat,
            title,
            start,
        )
    await conn.execute(
        "update public.chat_members m set last_read_seq = s.last_seq - $3"
        " from public.chat_sessions s where s.id = m.session_id and m.session_id = any($1::uuid[]) and m.user_id = $2",
        chats,
        user,
        unread,
    )
    return Account(user=user, chats=chats, partner=partner)


async def chat_with_members(
    conn: asyncpg.Connection, owner: uuid.UUID, members: Sequence[uuid.UUID], title: str = "Big chat"
) -> uuid.UUID:
    """A chat created by ``owner`` with ``members`` added in one statement, and one message from each of
    the last 20 members."""
    chat = uuid.uuid4()
    await conn.execute(
        "insert into public.chat_sessions (id, title, created_by) values ($1, $2, $3)", chat, title, owner
    )
    await conn.execute(
        "insert into public.chat_members (session_id, user_id, joined_at)"
        " select $1, u, now() - interval '1 day' + n * interval '1 millisecond'"
        " from unnest($2::uuid[]) with ordinality as t (u, n) where u <> $3",
        chat,
        list(members),
        owner,
    )
    await conn.execute(
        "insert into public.chat_messages (session_id, sender_id, content)"
        " select $1, u, 'hello from ' || u from unnest($2::uuid[]) u",
        chat,
        list(members[-20:]),
    )
    return chat


async def wait_for_wal_reader(conn: asyncpg.Connection, patience: float = 600.0) -> float:
    """Wait until every logical slot (the gateway's) has read the WAL written so far; seconds waited."""
    started = time.perf_counter()
    target = await conn.fetchval("select pg_current_wal_lsn()")
    while time.perf_counter() - started < patience:
        behind = await conn.fetchval(
            "select count(*) from pg_replication_slots where slot_type = 'logical'"
            " and coalesce(confirmed_flush_lsn, '0/0') < $1::pg_lsn",
            target,
        )
        if not behind:
            return time.perf_counter() - started
        await asyncio.sleep(0.5)
    raise TimeoutError("the gateway did not read the WAL in time")
