"""Data sets for ``bench_scale``: many chats, many unread messages, many members, on the schema before this
work and after it, written as the ``postgres`` superuser in a few set-based statements.

Messages are loaded as a bulk loader loads them (``chat_migrate`` does the same): the per-message order
trigger and the broadcast triggers are switched off for the load, ``seq``/``rev`` are numbered in the
statement, and the counters the trigger keeps (the chat's ``last_seq``/``last_rev``/``last_message_at``,
the inbox's ``activity_at``) are set once afterwards. Then the fill waits until the gateway has read the
WAL it wrote, so that no measurement shares the machine with that work.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

import asyncpg

LOAD_TRIGGERS = (
    ("chat_messages", "chat_messages_assign_order"),
    ("chat_messages", "chat_messages_broadcast_insert"),
    ("chat_members", "chat_members_broadcast"),
)
CHATS_PER_STATEMENT = 50


@dataclass
class Account:
    """A user, their chats (chat n, 1-based, is the n-th most recent) and their partner in them."""

    user: uuid.UUID
    partner: uuid.UUID
    chats: list[uuid.UUID] = field(default_factory=list)
    per_chat: int = 1  # messages in each chat


async def has_inbox(conn: asyncpg.Connection) -> bool:
    """Whether the schema has the chat inbox (this work's migration) or is the one before it."""
    return bool(await conn.fetchval("select to_regclass('public.chat_inbox') is not null"))


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


async def load_triggers(conn: asyncpg.Connection, *, enabled: bool) -> None:
    """Switch the per-message and broadcast triggers on or off (superuser; for loading only)."""
    verb = "enable" if enabled else "disable"
    for table, trigger in LOAD_TRIGGERS:
        if await conn.fetchval(
            "select exists (select from pg_trigger where tgname = $1 and tgrelid = $2::regclass)",
            trigger,
            f"public.{table}",
        ):
            await conn.execute(f"alter table public.{table} {verb} trigger {trigger}")


async def broadcast_triggers(conn: asyncpg.Connection, *, enabled: bool) -> None:
    """Switch the private-topics broadcast triggers of messages on or off (superuser; a benchmark's reference)."""
    verb = "enable" if enabled else "disable"
    for trigger in ("chat_messages_broadcast_insert", "chat_messages_broadcast_update"):
        await conn.execute(f"alter table public.chat_messages {verb} trigger {trigger}")


async def account(
    conn: asyncpg.Connection, count: int, *, title: str, unread: int = 0, user: uuid.UUID | None = None
) -> Account:
    """A user in ``count`` two-person chats with one partner, titled ``<title> <n>``; each chat has
    ``unread + 1`` messages from the partner (chat n's newest n minutes old), of which the user has read
    all but ``unread``."""
    if user is None:
        [user] = await users(conn, 1, f"{title} owner")
    [partner] = await users(conn, 1, f"{title} partner")
    chats = [uuid.uuid4() for _ in range(count)]
    per_chat = unread + 1
    await conn.execute(
        "insert into public.chat_sessions (id, title, created_by, created_at)"
        " select c, $2 || ' ' || n, $3, now() - interval '60 days' from unnest($1::uuid[]) with ordinality t (c, n)",
        chats,
        title,
        user,
    )
    await conn.execute(
        "insert into public.chat_members (session_id, user_id, role, joined_at)"
        " select c, $2, 'member', now() - interval '60 days' from unnest($1::uuid[]) c",
        chats,
        partner,
    )
    await load_triggers(conn, enabled=False)
    try:
        for start in range(0, count, CHATS_PER_STATEMENT):
            await conn.execute(
                "insert into public.chat_messages (session_id, sender_id, content, created_at, seq, rev)"
                " select c, $2, 'message ' || g || ' of ' || $4 || ' ' || (n + $5),"
                "        now() - (n + $5) * interval '1 minute' - ($3 - g) * interval '1 millisecond', g, g"
                " from unnest($1::uuid[]) with ordinality as t (c, n), generate_series(1, $3) g",
                chats[start : start + CHATS_PER_STATEMENT],
                partner,
                per_chat,
                title,
                start,
            )
    finally:
        await load_triggers(conn, enabled=True)
    # The counters the order trigger would have kept, set once.
    await conn.execute(
        "update public.chat_sessions s"
        " set last_seq = $2, last_rev = $2, last_message_at = now() - t.n * interval '1 minute'"
        " from unnest($1::uuid[]) with ordinality t (c, n) where s.id = t.c",
        chats,
        per_chat,
    )
    if await has_inbox(conn):
        await conn.execute(
            "update public.chat_inbox i set activity_at = s.last_message_at"
            " from public.chat_sessions s where s.id = i.session_id and s.id = any($1::uuid[])",
            chats,
        )
    await conn.execute(
        "update public.chat_members set last_read_seq = $3 where session_id = any($1::uuid[]) and user_id = $2",
        chats,
        user,
        per_chat - unread,
    )
    await conn.execute(
        "update public.chat_members set last_read_seq = $3 where session_id = any($1::uuid[]) and user_id = $2",
        chats,
        partner,
        per_chat,
    )
    return Account(user=user, partner=partner, chats=chats, per_chat=per_chat)


async def chat_with_members(
    conn: asyncpg.Connection, owner: uuid.UUID, members: Sequence[uuid.UUID], title: str
) -> uuid.UUID:
    """A chat created by ``owner`` with ``members`` added in one statement (joined in that order), and one
    message from each of the last 20 of them (the chat's recent senders)."""
    chat = uuid.uuid4()
    await conn.execute(
        "insert into public.chat_sessions (id, title, created_by) values ($1, $2, $3)", chat, title, owner
    )
    others = [member for member in members if member != owner]
    await conn.execute(
        "insert into public.chat_members (session_id, user_id, joined_at)"
        " select $1, u, now() + n * interval '1 millisecond' from unnest($2::uuid[]) with ordinality as t (u, n)",
        chat,
        others,
    )
    await conn.execute(
        "insert into public.chat_messages (session_id, sender_id, content)"
        " select $1, u, 'hello from ' || u from unnest($2::uuid[]) u",
        chat,
        others[-20:],
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
