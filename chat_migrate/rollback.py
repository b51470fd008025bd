"""``rollback``: remove exactly what one run created, and leave the database as it was before it.

What a run created is in the bookkeeping: the chats (and in them the messages with ``seq`` 1..n and the
recorded memberships), the users it created (with their identities and profiles, which go with them)
and profiles it added for linked users. Users that existed before are left alone. Runs are undone
newest first: a later run may have put messages from this run's users into its own chats.

Before deleting anything it checks whether people have used the migrated data since: messages posted
into migrated chats, and messages, chats or memberships of migrated users elsewhere. Those would be
deleted too, so it refuses unless ``--force``.

Chats go in batches, each transaction deleting the chats (their members and messages follow by
cascade) with the audit triggers off, writing one ``chat.migration_rolled_back`` audit event per chat,
and removing the bookkeeping rows; users last. A rollback that is interrupted is finished by running it
again. The audit trail keeps the migration's and the rollback's events: ``audit.events`` is history.
"""

from __future__ import annotations

import json
import time
from typing import Any

import asyncpg

from chat_migrate.db import ROLLBACK_DISABLED, SCHEMA, connect, preflight, set_triggers, take_lock
from chat_migrate.errors import MigrateError
from chat_migrate.progress import Reporter
from chat_migrate.source import redact

BATCH = 500  # chats per transaction

_SINCE = f"""
with chats as (select session_id, messages from {SCHEMA}.chats where run_id = $1),
     made as (select user_id from {SCHEMA}.users where run_id = $1 and action = 'created')
select
  (select count(*) from public.chat_messages m join chats c on c.session_id = m.session_id
    where m.seq > c.messages) as posted_in_migrated_chats,
  (select count(*) from public.chat_messages m join made u on u.user_id = m.sender_id
    where m.session_id not in (select session_id from chats)) as posted_elsewhere_by_migrated_users,
  (select count(*) from public.chat_sessions s join made u on u.user_id = s.created_by
    where s.id not in (select session_id from chats)) as chats_created_by_migrated_users,
  (select count(*) from public.chat_members m join made u on u.user_id = m.user_id
    where m.session_id not in (select session_id from chats)) as memberships_elsewhere
"""


async def rollback(db_url: str, run_id: int, force: bool, reporter: Reporter) -> dict[str, Any]:
    started = time.monotonic()
    conn = await connect(db_url)
    try:
        summary = await _rollback(conn, run_id, force, reporter)
    finally:
        await conn.close()
    summary["seconds"] = round(time.monotonic() - started, 2)
    summary["database"] = redact(db_url)
    return summary


async def _rollback(conn: asyncpg.Connection, run_id: int, force: bool, reporter: Reporter) -> dict[str, Any]:
    fitness = await preflight(conn, write=True)
    if not fitness.bookkeeping:
        raise MigrateError("nothing has been migrated into this database (it has no chat_migrate schema)")
    await take_lock(conn)
    run = await conn.fetchrow(f"select id, status from {SCHEMA}.runs where id = $1", run_id)
    if run is None:
        raise MigrateError(f"there is no run {run_id} in this database")
    if run["status"] == "rolled_back":
        raise MigrateError(f"run {run_id} has already been rolled back")
    later = await conn.fetch(
        f"select id from {SCHEMA}.runs where id > $1 and status <> 'rolled_back' order by id",
        run_id,
    )
    later_with_rows = [
        row["id"]
        for row in later
        if await conn.fetchval(
            f"select exists (select from {SCHEMA}.chats where run_id = $1)"
            f" or exists (select from {SCHEMA}.users where run_id = $1)",
            row["id"],
        )
    ]
    if later_with_rows:
        raise MigrateError(
            f"run {later_with_rows[-1]} came after run {run_id} and created rows of its own; roll back runs newest"
            " first"
        )
    since = await conn.fetchrow(_SINCE, run_id)
    assert since is not None
    used = {key: int(value) for key, value in since.items() if value}
    if used and not force:
        what = ", ".join(f"{value} {key.replace('_', ' ')}" for key, value in used.items())
        raise MigrateError(
            f"people have used what run {run_id} migrated since ({what}); rollback would delete that too."
            " Pass --force to roll back anyway"
        )
    await conn.execute(f"update {SCHEMA}.runs set status = 'rolling_back' where id = $1", run_id)

    chats = [
        row["session_id"]
        for row in await conn.fetch(
            f"select session_id from {SCHEMA}.chats where run_id = $1 order by legacy_room",
            run_id,
        )
    ]
    removed = {"chats": 0, "messages": 0, "memberships": 0, "users": 0, "profiles_of_linked_users": 0}
    with reporter.track(f"rollback {run_id}", len(chats), "chats") as tracker:
        for start in range(0, len(chats), BATCH):
            batch = chats[start : start + BATCH]
            async with conn.transaction():
                counts = await conn.fetchrow(
                    "select (select count(*) from public.chat_messages where session_id = any($1::uuid[])) as messages,"
                    " (select count(*) from public.chat_members where session_id = any($1::uuid[])) as members",
                    batch,
                )
                assert counts is not None
                await set_triggers(conn, ROLLBACK_DISABLED, enabled=False)
                await conn.execute(
                    "insert into audit.events (actor_role, action, session_id, target_id, old_row)"
                    " select current_user, 'chat.migration_rolled_back', s.id, s.id,"
                    "   jsonb_build_object('run', $2::bigint, 'title', s.title, 'last_seq', s.last_seq,"
                    "                      'tool', 'chat-migrate')"
                    " from public.chat_sessions s where s.id = any($1::uuid[])",
                    batch,
                    run_id,
                )
                deleted = await conn.execute("delete from public.chat_sessions where id = any($1::uuid[])", batch)
                await set_triggers(conn, ROLLBACK_DISABLED, enabled=True)
                await conn.execute(f"delete from {SCHEMA}.members where session_id = any($1::uuid[])", batch)
                await conn.execute(f"delete from {SCHEMA}.chats where session_id = any($1::uuid[])", batch)
            removed["chats"] += int(deleted.split()[-1])
            removed["messages"] += int(counts["messages"])
            removed["memberships"] += int(counts["members"])
            tracker.advance(len(batch))

    async with conn.transaction():
        # Memberships this run added to chats it did not create (none today: rooms are migrated whole).
        await conn.execute(f"delete from {SCHEMA}.members where run_id = $1", run_id)
        made = await conn.fetch(
            f"select user_id from {SCHEMA}.users where run_id = $1 and action = 'created'",
            run_id,
        )
        profiles = await conn.fetch(
            f"select user_id from {SCHEMA}.users where run_id = $1 and action = 'linked' and profile_created",
            run_id,
        )
        if profiles:
            await conn.execute(
                "delete from public.profiles where id = any($1::uuid[])", [row["user_id"] for row in profiles]
            )
        if made:
            # Identities, sessions, refresh tokens and profiles go with the user (foreign key cascades).
            result = await conn.execute(
                "delete from auth.users where id = any($1::uuid[])", [row["user_id"] for row in made]
            )
            removed["users"] = int(result.split()[-1])
        removed["profiles_of_linked_users"] = len(profiles)
        await conn.execute(f"delete from {SCHEMA}.users where run_id = $1", run_id)
        await conn.execute(f"delete from {SCHEMA}.quarantine where run_id = $1", run_id)
        await conn.execute(
            f"update {SCHEMA}.runs set status = 'rolled_back', rolled_back_at = now(),"
            " summary = coalesce(summary, '{}'::jsonb) || jsonb_build_object('rolled_back', $2::jsonb)"
            " where id = $1",
            run_id,
            json.dumps(removed),
        )
    return {
        "command": "rollback",
        "run": run_id,
        "forced": bool(used) and force,
        "used_since": used,
        "removed": removed,
    }
