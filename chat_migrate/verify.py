"""``verify``: compare the legacy store with what the migration wrote, room by room, user by user.

For every room, both sides are reduced to the same list of ``(sender, time, text)``: the legacy side by
parsing the sorted set exactly as ``run`` does (quarantined members left out), in legacy order; the
Supabase side is the migrated rows of the chat (``seq`` 1..n, as recorded) in ``seq`` order. Counts and an
order-sensitive checksum (md5 of the rows in order) must be equal. Both checksums are computed by
PostgreSQL over the same expression: the legacy rows are copied into a temporary table first, so the two
sides are formatted by the same code and Python never holds more than a chunk.

Messages their sender edited or deleted after the migration are not differences (people may do that);
they are counted and compared by position and time only. Users: every legacy user must have the
account recorded for them, with the recorded address and, for accounts the migration created, the
legacy password hash. Memberships: every member the legacy store implies must be in the chat (members
added since are fine). Verify never writes anything but its temporary table.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from typing import Any

import asyncpg

from chat_migrate.db import SCHEMA, connect, preflight
from chat_migrate.errors import MigrateError
from chat_migrate.legacy import room_sort_key
from chat_migrate.load import STAGE_COLUMNS, BatchEnd, RoomStats, Rows, pump, read_batches
from chat_migrate.model import Inventory, LegacyRoom
from chat_migrate.progress import Reporter
from chat_migrate.rooms import chat_members
from chat_migrate.source import LegacySource, redact
from chat_migrate.users import usable_hash

BATCH = 50_000

_STAGE = """
create temp table if not exists chat_migrate_verify (
  session_id uuid not null,
  pos bigint not null,
  micros bigint not null,
  id uuid not null,
  sender_id uuid,
  content text not null
)
"""

# One expression for both sides: sender, time in microseconds, text. A message changed by its sender
# since the migration (edited or deleted) counts by sender and time only.
_TARGET = """
select m.session_id, count(*) as n,
       count(*) filter (where m.edited_at is not null or m.deleted_at is not null) as changed,
       md5(string_agg(coalesce(m.sender_id::text, '-') || ':'
                      || (extract(epoch from m.created_at) * 1000000)::bigint::text || ':'
                      || case when m.edited_at is null and m.deleted_at is null then md5(m.content)
                              else 'changed' end,
                      ',' order by m.seq)) as sum
from public.chat_messages m
join unnest($1::uuid[], $2::bigint[]) as e (session_id, messages) on e.session_id = m.session_id and m.seq <= e.messages
group by m.session_id
"""
# The legacy side of chats nobody changed since (no join needed), and of chats with changed messages
# (joined by id, so a changed message counts as "changed" on both sides).
_LEGACY = """
select v.session_id, count(*) as n,
       md5(string_agg(coalesce(v.sender_id::text, '-') || ':' || v.micros::text || ':' || md5(v.content),
                      ',' order by v.micros, v.pos)) as sum
from chat_migrate_verify v
where v.session_id = any($1::uuid[])
group by v.session_id
"""
_LEGACY_CHANGED = """
select v.session_id, count(*) as n,
       md5(string_agg(coalesce(v.sender_id::text, '-') || ':' || v.micros::text || ':'
                      || case when m.edited_at is null and m.deleted_at is null then md5(v.content)
                              else 'changed' end,
                      ',' order by v.micros, v.pos)) as sum
from chat_migrate_verify v
left join public.chat_messages m on m.id = v.id and m.session_id = v.session_id
where v.session_id = any($1::uuid[])
group by v.session_id
"""


# Where two lists first part: the first position whose row differs, with both rows.
_FIRST_DIFFERENCE = """
with l as (
  select row_number() over (order by v.micros, v.pos) as n, v.sender_id, v.micros, v.content
  from chat_migrate_verify v where v.session_id = $1
),
t as (
  select m.seq as n, m.sender_id, (extract(epoch from m.created_at) * 1000000)::bigint as micros, m.content,
         m.edited_at is not null or m.deleted_at is not null as changed
  from public.chat_messages m where m.session_id = $1 and m.seq <= $2
)
select coalesce(l.n, t.n) as n, l.sender_id as l_sender, l.micros as l_micros, left(l.content, 60) as l_text,
       t.sender_id as t_sender, t.micros as t_micros, left(t.content, 60) as t_text
from l full join t on l.n = t.n
where l.n is null or t.n is null or l.sender_id is distinct from t.sender_id or l.micros <> t.micros
   or (not t.changed and l.content <> t.content)
order by 1 limit 1
"""


class Differences:
    """The first few differences, and how many there are in all."""

    def __init__(self, show: int) -> None:
        self.show = show
        self.items: list[str] = []
        self.count = 0

    def add(self, text: str) -> None:
        self.count += 1
        if len(self.items) < self.show:
            self.items.append(text)


async def verify(
    redis_url: str, db_url: str, run_id: int | None, show: int, reporter: Reporter
) -> tuple[dict[str, Any], bool]:
    started = time.monotonic()
    source = await LegacySource.open(redis_url)
    try:
        conn = await connect(db_url)
        try:
            summary = await _verify(source, conn, run_id, show, reporter)
        finally:
            await conn.close()
    finally:
        await source.close()
    summary["seconds"] = round(time.monotonic() - started, 2)
    summary["source"] = redact(redis_url)
    summary["database"] = redact(db_url)
    return summary, bool(summary["ok"])


async def _verify(
    source: LegacySource, conn: asyncpg.Connection, run_id: int | None, show: int, reporter: Reporter
) -> dict[str, Any]:
    fitness = await preflight(conn, write=False)
    if not fitness.bookkeeping:
        raise MigrateError("nothing has been migrated into this database (it has no chat_migrate schema)")
    live = f"r.status <> 'rolled_back'{'' if run_id is None else ' and r.id = $1'}"
    args: list[Any] = [] if run_id is None else [run_id]
    if run_id is not None:
        status = await conn.fetchval(f"select status from {SCHEMA}.runs where id = $1", run_id)
        if status is None:
            raise MigrateError(f"there is no run {run_id} in this database")
    reporter.log("reading the legacy store")
    inventory = await source.inventory()
    differences = Differences(show)

    users = await conn.fetch(
        f"select u.legacy_id, u.user_id, u.email, u.action, a.id is not null as exists, a.email as auth_email,"
        " a.encrypted_password, p.id is not null as has_profile"
        f" from {SCHEMA}.users u join {SCHEMA}.runs r on r.id = u.run_id"
        " left join auth.users a on a.id = u.user_id left join public.profiles p on p.id = u.user_id"
        f" where {live}",
        *args,
    )
    all_users = await conn.fetch(
        f"select u.legacy_id, u.user_id from {SCHEMA}.users u join {SCHEMA}.runs r on r.id = u.run_id"
        " where r.status <> 'rolled_back'"
    )
    accounts = {int(row["legacy_id"]): row["user_id"] for row in all_users}
    user_result = _check_users(inventory, users, run_id is None, differences)

    chats = await conn.fetch(
        f"select c.legacy_room, c.session_id, c.messages, c.legacy_size from {SCHEMA}.chats c"
        f" join {SCHEMA}.runs r on r.id = c.run_id where {live}",
        *args,
    )
    recorded = {row["legacy_room"]: row for row in chats}
    dropped = {
        row["legacy_room"]
        for row in await conn.fetch(
            f"select distinct q.legacy_room from {SCHEMA}.quarantine q join {SCHEMA}.runs r on r.id = q.run_id"
            f" where {live} and q.category = 'room_without_members'",
            *args,
        )
    }
    if run_id is None:
        for room in sorted(inventory.rooms, key=room_sort_key):
            if room not in recorded and room not in dropped:
                differences.add(f"room {room}: not migrated")
        for room in sorted(recorded, key=room_sort_key):
            if room not in inventory.rooms:
                differences.add(f"room {room}: migrated, but no longer in Redis")
    rooms = [inventory.rooms[room] for room in sorted(recorded, key=room_sort_key) if room in inventory.rooms]
    result = await _check_rooms(source, conn, rooms, recorded, accounts, inventory, differences, reporter)
    ok = differences.count == 0
    return {
        "command": "verify",
        "ok": ok,
        "run": run_id,
        "rooms": result["rooms"],
        "messages": result["messages"],
        "memberships": result["memberships"],
        "users": user_result,
        "differences": differences.count,
        "first_differences": differences.items,
    }


def _check_users(
    inventory: Inventory, rows: Sequence[asyncpg.Record], every: bool, differences: Differences
) -> dict[str, Any]:
    by_legacy = {int(row["legacy_id"]): row for row in rows}
    checked = 0
    if every:
        for uid in sorted(inventory.users):
            if uid not in by_legacy:
                differences.add(f"user:{uid} ({inventory.users[uid].username!r}): not migrated")
    for uid, row in sorted(by_legacy.items()):
        checked += 1
        legacy = inventory.users.get(uid)
        label = f"user:{uid} ({legacy.username if legacy else '?'!r})"
        if legacy is None:
            differences.add(f"{label}: migrated, but its hash is no longer in Redis")
            continue
        if not row["exists"]:
            differences.add(f"{label}: its Supabase user {row['user_id']} is gone")
            continue
        if not row["has_profile"]:
            differences.add(f"{label}: its Supabase user has no profile")
        if row["action"] == "created":
            if str(row["auth_email"] or "").lower() != row["email"]:
                differences.add(f"{label}: address is {row['auth_email']!r}, migrated as {row['email']!r}")
            expected = usable_hash(legacy.password_hash) or ""
            if (row["encrypted_password"] or "") != expected:
                differences.add(f"{label}: password hash differs from the legacy one")
    return {"legacy": len(inventory.users), "checked": checked}


async def _check_rooms(
    source: LegacySource,
    conn: asyncpg.Connection,
    rooms: list[LegacyRoom],
    recorded: dict[str, asyncpg.Record],
    accounts: dict[int, uuid.UUID],
    inventory: Inventory,
    differences: Differences,
    reporter: Reporter,
) -> dict[str, Any]:
    await conn.execute(_STAGE)
    totals = {"legacy": 0, "supabase": 0, "changed_by_people_since": 0, "quarantined": 0}
    member_totals = {"expected": 0, "missing": 0}
    checked = 0

    async def sink(event: Rows | BatchEnd) -> None:
        nonlocal checked
        if isinstance(event, Rows):
            await conn.copy_records_to_table("chat_migrate_verify", records=event.rows, columns=STAGE_COLUMNS)
            tracker.advance(len(event.rows))
            return
        chat_ids = [s.chat_id for s in event.rooms]
        target = {
            row["session_id"]: row
            for row in await conn.fetch(_TARGET, chat_ids, [recorded[s.room.id]["messages"] for s in event.rooms])
        }
        changed = [chat for chat, row in target.items() if row["changed"]]
        plain = [chat for chat in chat_ids if chat not in set(changed)]
        legacy = {row["session_id"]: row for row in await conn.fetch(_LEGACY, plain)}
        if changed:
            legacy.update({row["session_id"]: row for row in await conn.fetch(_LEGACY_CHANGED, changed)})
        for room_stats in event.rooms:
            room = room_stats.room
            ours, theirs = legacy.get(room_stats.chat_id), target.get(room_stats.chat_id)
            legacy_n, target_n = (ours["n"] if ours else 0), (theirs["n"] if theirs else 0)
            checked += 1
            totals["legacy"] += legacy_n
            totals["supabase"] += target_n
            totals["changed_by_people_since"] += theirs["changed"] if theirs else 0
            totals["quarantined"] += len(room_stats.rejected)
            if recorded[room.id]["session_id"] != room_stats.chat_id:
                differences.add(f"room {room.id}: recorded under another chat id")
            elif legacy_n != target_n:
                differences.add(f"room {room.id}: {legacy_n} messages in Redis, {target_n} migrated in Supabase")
            elif (ours["sum"] if ours else None) != (theirs["sum"] if theirs else None):
                first = await conn.fetchrow(_FIRST_DIFFERENCE, room_stats.chat_id, recorded[room.id]["messages"])
                where = (
                    f" first at message {first['n']}: Redis {first['l_text']!r}, Supabase {first['t_text']!r}"
                    if first
                    else ""
                )
                differences.add(f"room {room.id}: checksums differ;{where}")
        await _check_members(conn, event.rooms, accounts, inventory, differences, member_totals)
        tracker.advance(sum(len(s.rejected) for s in event.rooms))
        await conn.execute("truncate chat_migrate_verify")

    total = sum(room.size for room in rooms)
    with reporter.track("verify", total, "messages") as tracker:
        await pump(read_batches(source, rooms, accounts, BATCH), sink)
    return {
        "rooms": {"checked": checked},
        "messages": totals,
        "memberships": member_totals,
    }


async def _check_members(
    conn: asyncpg.Connection,
    rooms: list[RoomStats],
    accounts: dict[int, uuid.UUID],
    inventory: Inventory,
    differences: Differences,
    totals: dict[str, int],
) -> None:
    rows = await conn.fetch(
        "select session_id, user_id from public.chat_members where session_id = any($1::uuid[])",
        [s.chat_id for s in rooms],
    )
    present = {(row["session_id"], row["user_id"]) for row in rows}
    for stats in rooms:
        expected = chat_members(stats.room, inventory.listed.get(stats.room.id, ()), stats.senders, accounts)
        totals["expected"] += len(expected)
        for uid, account, _ in expected:
            if (stats.chat_id, account) not in present:
                totals["missing"] += 1
                differences.add(f"room {stats.room.id}: user:{uid} is not a member of its chat")
