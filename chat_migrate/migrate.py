"""``plan`` and ``run``: survey the legacy store against the database, then (for ``run``) migrate it.

Both start the same way (:func:`survey`): read the store's users and rooms, give every user an address
(:mod:`chat_migrate.emails`), sort users into create / link / done (:mod:`chat_migrate.users`) and rooms
into to-do / done (from the bookkeeping of earlier runs). ``plan`` then reads every room still to do and
counts what would be created and what would be quarantined; it writes nothing. ``run`` refuses before
writing anything if a user has no usable address or the schema has a trigger it does not know, then
creates or resumes a run, migrates the users, and loads the rooms batch by batch.

A run that stopped half-way (killed, crashed, connection lost) keeps status ``running`` or ``failed``;
the next ``run`` resumes it under the same id and does only what is missing, because every room and
every batch of users is committed together with its bookkeeping.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from chat_migrate import __version__
from chat_migrate.db import SCHEMA, Fitness, connect, ensure_bookkeeping, preflight, take_lock
from chat_migrate.emails import EmailPlan, assign, check_domain, load_email_file
from chat_migrate.errors import BadInput, MigrateError
from chat_migrate.legacy import REASON_TEXT, Reason, room_sort_key
from chat_migrate.load import BatchEnd, Context, Loader, Rows, pump, read_batches
from chat_migrate.model import Inventory, LegacyRoom
from chat_migrate.progress import Reporter
from chat_migrate.rooms import chat_members
from chat_migrate.source import LegacySource, redact
from chat_migrate.users import UserPlan, apply_users, plan_users

EXAMPLES = 3


@dataclass(frozen=True)
class Options:
    redis_url: str
    db_url: str
    email_domain: str | None = None
    emails_file: Path | None = None
    batch_size: int = 20_000


@dataclass
class Survey:
    inventory: Inventory
    fitness: Fitness
    emails: EmailPlan
    users: UserPlan
    pending: list[LegacyRoom]
    done_rooms: dict[str, int]
    left_out: set[str] = field(default_factory=set)
    drift: list[str] = field(default_factory=list)


def read_options(options: Options) -> tuple[str | None, dict[str, str]]:
    """Check the address options before anything is read; :class:`BadInput` if they are wrong."""
    if options.email_domain is None and options.emails_file is None:
        raise BadInput("say how legacy users get e-mail addresses: --email-domain DOMAIN and/or --emails FILE.csv")
    domain = check_domain(options.email_domain) if options.email_domain is not None else None
    mapping = load_email_file(options.emails_file) if options.emails_file is not None else {}
    if options.batch_size < 1:
        raise BadInput("--batch-size must be at least 1")
    return domain, mapping


async def survey(
    source: LegacySource, conn: asyncpg.Connection, options: Options, *, write: bool, reporter: Reporter
) -> Survey:
    domain, mapping = read_options(options)
    fitness = await preflight(conn, write=write)
    reporter.log(f"reading the legacy store at {redact(options.redis_url)}")
    inventory = await source.inventory()
    emails = assign(inventory.users, domain=domain, mapping=mapping)
    users = await plan_users(conn, inventory.users, emails.emails, bookkeeping=fitness.bookkeeping)
    done_rooms: dict[str, int] = {}
    left_out: set[str] = set()
    if fitness.bookkeeping:
        rows = await conn.fetch(
            f"select c.legacy_room, c.legacy_size from {SCHEMA}.chats c"
            f" join {SCHEMA}.runs r on r.id = c.run_id where r.status <> 'rolled_back'"
        )
        done_rooms = {row["legacy_room"]: row["legacy_size"] for row in rows}
        # Rooms a run left out because none of their users exists are done too (and stay in Redis).
        dropped = await conn.fetch(
            f"select q.legacy_room, max(q.detail) as detail from {SCHEMA}.quarantine q"
            f" join {SCHEMA}.runs r on r.id = q.run_id"
            " where r.status <> 'rolled_back' and q.category = 'room_without_members' group by 1"
        )
        left_out = {row["legacy_room"] for row in dropped} - set(done_rooms)
    rooms = sorted(inventory.rooms.values(), key=lambda room: room_sort_key(room.id))
    pending = [room for room in rooms if room.id not in done_rooms and room.id not in left_out]
    drift = [
        f"room {room.id}: {room.size} members in Redis, {done_rooms[room.id]} when it was migrated"
        for room in rooms
        if room.id in done_rooms and done_rooms[room.id] != room.size
    ]
    return Survey(inventory, fitness, emails, users, pending, done_rooms, left_out, drift)


def _users_summary(s: Survey) -> dict[str, Any]:
    return {
        "legacy": len(s.inventory.users),
        "create": len(s.users.create),
        "link": len(s.users.link),
        "already_migrated": len(s.users.done),
        "without_usable_password": len(s.users.without_password),
        "blocked": len(s.emails.blockers) + len(s.users.ambiguous),
    }


def _blockers(s: Survey) -> list[str]:
    return [b.describe() for b in s.emails.blockers] + s.users.ambiguous


class Quarantine:
    """Counts and a few examples per category."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.examples: dict[str, list[dict[str, Any]]] = {}

    def add(self, category: str, room: str, position: int | None, detail: str, count: int = 1) -> None:
        self.counts[category] = self.counts.get(category, 0) + count
        examples = self.examples.setdefault(category, [])
        if len(examples) < EXAMPLES:
            examples.append({"room": room, "position": position, "detail": detail})

    def summary(self) -> dict[str, Any]:
        return {
            category: {
                "count": count,
                "why": REASON_TEXT.get(Reason(category), category),
                "examples": self.examples.get(category, []),
            }
            for category, count in sorted(self.counts.items())
        }


async def plan(options: Options, reporter: Reporter) -> tuple[dict[str, Any], bool]:
    """What ``run`` would do; writes nothing. Returns the summary and whether ``run`` could go ahead."""
    source = await LegacySource.open(options.redis_url)
    try:
        conn = await connect(options.db_url)
        try:
            await conn.execute("set default_transaction_read_only = on")
            s = await survey(source, conn, options, write=False, reporter=reporter)
            quarantine = Quarantine()
            totals = {"chats": 0, "messages": 0, "memberships": 0, "senders_without_account": 0, "date_from_score": 0}
            accounts = s.users.accounts()
            listed = s.inventory.listed
            total = sum(room.size for room in s.pending)
            with reporter.track("plan", total, "messages") as tracker:
                async for event in read_batches(source, s.pending, accounts, options.batch_size):
                    if isinstance(event, Rows):
                        tracker.advance(len(event.rows))
                        continue
                    for stats in event.rooms:
                        tracker.advance(len(stats.rejected))
                        for position, reason, detail, _ in stats.rejected:
                            quarantine.add(reason.value, stats.room.id, position, detail)
                        members = chat_members(stats.room, listed.get(stats.room.id, ()), stats.senders, accounts)
                        if not members:
                            quarantine.add(
                                Reason.ROOM_WITHOUT_MEMBERS.value,
                                stats.room.id,
                                None,
                                f"{stats.valid} messages",
                                stats.valid,
                            )
                            continue
                        totals["chats"] += 1
                        totals["messages"] += stats.valid
                        totals["memberships"] += len(members)
                        totals["senders_without_account"] += stats.unknown_sender
                        totals["date_from_score"] += stats.date_from_score
        finally:
            await conn.close()
    finally:
        await source.close()
    blockers = _blockers(s)
    ready = not blockers and not s.fitness.unknown_triggers
    summary = {
        "command": "plan",
        "ready": ready,
        "source": redact(options.redis_url),
        "database": redact(options.db_url),
        "legacy": {
            "users": len(s.inventory.users),
            "rooms": len(s.inventory.rooms),
            "sorted_set_members": s.inventory.messages,
            "keys": s.inventory.keys,
        },
        "users": _users_summary(s),
        "linked_to_existing_supabase_users": [
            {
                "legacy_user": a.legacy_id,
                "username": s.inventory.users[a.legacy_id].username,
                "email": a.email,
                "supabase_user": str(a.user_id),
            }
            for a in s.users.link
        ],
        "blockers": blockers,
        "would_create": {
            "users": len(s.users.create),
            "profiles": len(s.users.create),
            "chats": totals["chats"],
            "memberships": totals["memberships"],
            "messages": totals["messages"],
        },
        "already_migrated": {"users": len(s.users.done), "rooms": len(s.done_rooms)},
        "quarantine": quarantine.summary(),
        "notes": {
            "messages_from_users_who_are_gone": totals["senders_without_account"],
            "dates_taken_from_the_score": totals["date_from_score"],
            "rooms_changed_since_migrated": s.drift[:20],
        },
        "unknown_triggers": list(s.fitness.unknown_triggers),
    }
    return summary, ready


async def _start_run(conn: asyncpg.Connection, options: Options, reporter: Reporter) -> tuple[int, bool]:
    """A new run, or the interrupted one (status running or failed) resumed under its own id."""
    row = await conn.fetchrow(
        f"select id, status from {SCHEMA}.runs where status in ('running', 'failed', 'rolling_back')"
        " order by id desc limit 1"
    )
    if row is not None and row["status"] == "rolling_back":
        raise MigrateError(
            f"run {row['id']} was being rolled back; finish that first (chat-migrate rollback --run {row['id']})"
        )
    if row is not None:
        await conn.execute(f"update {SCHEMA}.runs set status = 'running' where id = $1", row["id"])
        reporter.log(f"resuming run {row['id']}, which stopped before it was done")
        return int(row["id"]), True
    run_id = await conn.fetchval(
        f"insert into {SCHEMA}.runs (tool_version, source, options) values ($1, $2, $3::jsonb) returning id",
        __version__,
        redact(options.redis_url),
        json.dumps(
            {
                "email_domain": options.email_domain,
                "emails_file": str(options.emails_file) if options.emails_file else None,
                "batch_size": options.batch_size,
            }
        ),
    )
    return int(run_id), False


async def run(options: Options, reporter: Reporter) -> dict[str, Any]:
    """Migrate what is not migrated yet; the summary of what this invocation did."""
    started = time.monotonic()
    source = await LegacySource.open(options.redis_url)
    try:
        conn = await connect(options.db_url)
        try:
            return await _run(source, conn, options, reporter, started)
        finally:
            await conn.close()
    finally:
        await source.close()


async def _run(
    source: LegacySource, conn: asyncpg.Connection, options: Options, reporter: Reporter, started: float
) -> dict[str, Any]:
    s = await survey(source, conn, options, write=True, reporter=reporter)
    if s.fitness.unknown_triggers:
        raise MigrateError(
            "the schema has row triggers chat-migrate does not know ("
            + ", ".join(s.fitness.unknown_triggers)
            + "); loading around them could leave their data wrong. Teach chat_migrate/load.py about them first"
        )
    blockers = _blockers(s)
    if blockers:
        shown = "; ".join(blockers[:3]) + (f"; and {len(blockers) - 3} more (see plan)" if len(blockers) > 3 else "")
        raise MigrateError(f"{len(blockers)} legacy users have no usable e-mail address yet: {shown}")
    await take_lock(conn)
    await ensure_bookkeeping(conn)
    run_id, resumed = await _start_run(conn, options, reporter)
    try:
        if s.users.create or s.users.link:
            reporter.log(f"run {run_id}: {len(s.users.create)} users to create, {len(s.users.link)} to link")
        surveyed = time.monotonic()
        columns = s.fitness.auth_user_columns
        await apply_users(conn, s.users, s.inventory.users, run_id, columns)
        users_done = time.monotonic()
        accounts = s.users.accounts()
        context = Context(run_id, s.inventory.users, accounts, s.inventory.listed, s.fitness.load_disabled)
        loader = Loader(conn, context)
        await loader.prepare()
        total = sum(room.size for room in s.pending)
        reporter.log(f"run {run_id}: {len(s.pending)} rooms with {total:,} sorted-set members to load")
        with reporter.track(f"run {run_id}", total, "messages") as tracker:

            async def sink(event: Rows | BatchEnd) -> None:
                if isinstance(event, Rows):
                    await loader.rows(event.rows)
                    tracker.advance(len(event.rows))
                else:
                    await loader.finish(event.rooms)
                    tracker.advance(sum(len(stats.rejected) for stats in event.rooms))

            try:
                await pump(read_batches(source, s.pending, accounts, options.batch_size), sink)
            except BaseException:
                await loader.abort()
                raise
        totals = loader.totals
        summary = {
            "command": "run",
            "run": run_id,
            "resumed": resumed,
            "source": redact(options.redis_url),
            "database": redact(options.db_url),
            "created": {
                "users": len(s.users.create),
                "profiles": len(s.users.create),
                "chats": totals.chats,
                "memberships": totals.members,
                "messages": totals.messages,
            },
            "linked_users": len(s.users.link),
            "already_migrated": {"users": len(s.users.done), "rooms": len(s.done_rooms)},
            "quarantined_messages": totals.quarantined,
            "rooms_without_members": totals.rooms_without_members,
            "rooms_changed_since_migrated": s.drift[:20],
            "seconds": round(time.monotonic() - started, 2),
            "timings_s": {
                "survey": round(surveyed - started, 2),
                "users": round(users_done - surveyed, 2),
                "rooms": round(time.monotonic() - users_done, 2),
                "database_copy_to_staging": round(totals.copy_s, 2),
                "database_insert_messages": round(totals.insert_s, 2),
                "database_rest_of_batches": round(totals.rest_s, 2),
            },
        }
        await _finish_run(conn, run_id, "done", summary)
        return summary
    except BaseException as error:
        if not conn.is_closed():
            # If the connection is gone, the run stays "running" and is resumed all the same.
            with contextlib.suppress(asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
                await _finish_run(conn, run_id, "failed", {"error": str(error) or type(error).__name__})
        raise


async def _finish_run(conn: asyncpg.Connection, run_id: int, status: str, summary: dict[str, Any]) -> None:
    async with conn.transaction():
        await conn.execute("set local synchronous_commit = on")
        await conn.execute(
            f"update {SCHEMA}.runs set status = $2, finished_at = now(),"
            " summary = coalesce(summary, '{}'::jsonb) || $3::jsonb where id = $1",
            run_id,
            status,
            json.dumps(summary),
        )
