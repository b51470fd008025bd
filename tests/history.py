"""Long chat histories written straight into the database (tests and benchmarks of jumping far back).

Inserting 100,000 messages through the API (or even row by row in SQL with every trigger) takes minutes;
one ``INSERT … SELECT generate_series`` with the triggers off for this session (``session_replication_role
= replica``: no seq/rev numbering, no audit, no broadcast) takes seconds. The rows are numbered here as
the triggers would have numbered them, and the chat's counters are set once.

Realtime reads the WAL, so it would push every one of those rows to every member signed in at that moment:
write the history *before* the members' apps subscribe, and ``write_history`` waits until each logical
slot (the gateway's change capture) has moved past it, so a later subscriber never receives it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

import asyncpg

HISTORY_SQL = """
insert into public.chat_messages (id, session_id, sender_id, content, created_at, seq, rev)
select gen_random_uuid(), $1::uuid, ($2::uuid[])[1 + (g / 3) % array_length($2::uuid[], 1)],
       format($3::text, g), now() - make_interval(secs => ($5::int - g) * 37), g, $6::bigint + (g - $4::int)
from generate_series($4::int, $5::int) g
"""


async def write_history(
    db_url: str,
    chat_id: uuid.UUID,
    senders: Sequence[uuid.UUID],
    count: int,
    *,
    text: str = "line %s of the long history",
    within: float = 120.0,
) -> None:
    """Append ``count`` messages to ``chat_id`` (seq after its newest), from ``senders`` in turns of three,
    37 s apart and ending now; ``text`` is a ``format`` pattern given the seq. Waits until realtime's
    slots have passed the rows (see the module docstring)."""
    conn = await asyncpg.connect(db_url)
    try:
        async with conn.transaction():
            await conn.execute("set local session_replication_role = replica")
            row = await conn.fetchrow(
                "select last_seq, last_rev from public.chat_sessions where id = $1 for update", chat_id
            )
            if row is None:
                raise ValueError(f"no chat {chat_id}")
            first, rev = row["last_seq"] + 1, row["last_rev"] + 1
            last = first + count - 1
            await conn.execute(HISTORY_SQL, chat_id, list(senders), text, first, last, rev)
            await conn.execute(
                "update public.chat_sessions set last_seq = $2, last_rev = $3,"
                " last_message_at = now(), updated_at = now() where id = $1",
                chat_id,
                last,
                rev + count - 1,
            )
        written = await conn.fetchval("select pg_current_wal_lsn()")
        await conn.execute("analyze public.chat_messages")
        async with asyncio.timeout(within):
            while await conn.fetchval(  # noqa: ASYNC110 - polling the database, nothing to wait on here
                "select count(*) from pg_replication_slots"
                " where plugin = 'wal2json' and confirmed_flush_lsn < $1::pg_lsn",
                written,
            ):
                await asyncio.sleep(0.1)
    finally:
        await conn.close()
