"""Streaming rooms out of Redis, and loading them into Supabase set-based.

Reading (:func:`read_batches`) groups rooms into batches of about ``batch_size`` messages (a bigger room
is a batch of its own), reads each room's sorted set in chunks and parses every member
(:func:`chat_migrate.legacy.parse_member`). It yields the clean rows chunk by chunk and, at the end of a
batch, what it learnt about each room (counts, senders, quarantined members). ``plan`` only counts,
``run`` loads (:class:`Loader`) and ``verify`` compares.

Loading one batch is one transaction:

1. the rows are copied into a temporary staging table (``COPY``, binary), as they arrive;
2. the two per-row triggers whose work the load does itself (seq/rev, membership audit), and the
   per-message realtime announcement (history is not news), are disabled, by name, for this transaction
   only (``ALTER TABLE … DISABLE TRIGGER`` is transactional: a crash or an error re-enables them; it
   needs table ownership, not superuser, and locks out other *writers* of those tables until commit, not
   readers);
3. the chats are inserted, then all messages with one ``INSERT … SELECT`` that numbers each chat's
   messages in legacy order (date, then the member's position in the sorted set, which is score and
   then member bytes) as both ``seq`` and ``rev``;
4. :data:`SET_COUNTERS` sets every chat's counters once, and the members are inserted with their read
   position (see there: the one place where counters are set);
5. one audit event per chat, the bookkeeping rows, and the triggers are enabled again before commit.

Foreign keys stay in force (PostgreSQL checks them row by row; a non-superuser cannot switch that off,
and dropping constraints on a live project is not a risk worth a faster benchmark).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from chat_migrate import ids
from chat_migrate.db import LOAD_DISABLED, SCHEMA, set_triggers
from chat_migrate.legacy import Message, Reason, Rejected, parse_member
from chat_migrate.model import LegacyRoom, LegacyUser
from chat_migrate.rooms import chat_members, chat_title
from chat_migrate.source import LegacySource

CHUNK = 10_000
MAX_ROOMS_PER_BATCH = 2_000

Row = tuple[uuid.UUID, int, int, uuid.UUID, uuid.UUID | None, str]
STAGE_COLUMNS = ["session_id", "pos", "micros", "id", "sender_id", "content"]


@dataclass
class RoomStats:
    """What reading one room found."""

    room: LegacyRoom
    chat_id: uuid.UUID
    read: int = 0
    valid: int = 0
    first: int | None = None
    last: int | None = None
    senders: set[int] = field(default_factory=set)
    rejected: list[tuple[int, Reason, str, bytes]] = field(default_factory=list)
    date_from_score: int = 0
    unknown_sender: int = 0


@dataclass(frozen=True)
class Rows:
    """Clean rows of the current batch (one chunk of one room)."""

    rows: list[Row]


@dataclass(frozen=True)
class BatchEnd:
    """The batch is complete: every room's stats, in order."""

    rooms: list[RoomStats]


def batches(rooms: Sequence[LegacyRoom], batch_size: int) -> list[list[LegacyRoom]]:
    """Rooms grouped so each batch holds about ``batch_size`` messages (a bigger room stands alone)."""
    out: list[list[LegacyRoom]] = []
    current: list[LegacyRoom] = []
    size = 0
    for room in rooms:
        if current and (size + room.size > batch_size or len(current) >= MAX_ROOMS_PER_BATCH):
            out.append(current)
            current, size = [], 0
        current.append(room)
        size += room.size
    if current:
        out.append(current)
    return out


def parse_chunk(
    members: list[bytes],
    scores: Sequence[float | bytes],
    start: int,
    stats: RoomStats,
    message_id: Callable[[bytes], uuid.UUID],
    accounts: Mapping[int, uuid.UUID],
) -> list[Row]:
    """Clean rows of one chunk; rejected members go to ``stats.rejected``. The hot loop of the tool."""
    rows: list[Row] = []
    append = rows.append
    chat = stats.chat_id
    senders = stats.senders
    first, last = stats.first, stats.last
    for offset, raw in enumerate(members):
        parsed = parse_member(raw, scores[offset])
        position = start + offset
        if type(parsed) is Message:
            sender, micros, text, from_score = parsed
            account = accounts.get(sender)
            if account is None:
                stats.unknown_sender += 1
            else:
                senders.add(sender)
            if from_score:
                stats.date_from_score += 1
            if first is None or micros < first:
                first = micros
            if last is None or micros > last:
                last = micros
            append((chat, position, micros, message_id(raw), account, text))
        else:
            assert isinstance(parsed, Rejected)
            stats.rejected.append((position, parsed.reason, parsed.detail, raw))
    stats.first, stats.last = first, last
    stats.read += len(members)
    stats.valid += len(rows)
    return rows


async def read_batches(
    source: LegacySource, rooms: Sequence[LegacyRoom], accounts: Mapping[int, uuid.UUID], batch_size: int
) -> AsyncIterator[Rows | BatchEnd]:
    """Every batch's rows, chunk by chunk, each batch closed by a :class:`BatchEnd`."""
    chunk = max(1, min(CHUNK, batch_size))
    for group in batches(rooms, batch_size):
        stats = {room.id: RoomStats(room, ids.chat_id(room.id)) for room in group}
        makers: dict[str, Callable[[bytes], uuid.UUID]] = {}
        pending: list[Row] = []
        async for part in source.chunks([(room.id, room.size) for room in group], chunk):
            maker = makers.get(part.room)
            if maker is None:
                maker = makers[part.room] = ids.MessageIds(part.room)
            pending.extend(parse_chunk(part.members, part.scores, part.start, stats[part.room], maker, accounts))
            if len(pending) >= chunk:  # rooms are small on average: one COPY per chunk, not per room
                yield Rows(pending)
                pending = []
            await asyncio.sleep(0)  # let the loader run between chunks
        if pending:
            yield Rows(pending)
        yield BatchEnd([stats[room.id] for room in group])


@dataclass(frozen=True)
class Context:
    """What the loader needs to know besides the rows."""

    run_id: int
    users: Mapping[int, LegacyUser]
    accounts: Mapping[int, uuid.UUID]
    listed: Mapping[str, set[int]]
    disabled: tuple[tuple[str, str], ...] = LOAD_DISABLED  # the triggers each load transaction switches off


@dataclass
class LoadTotals:
    chats: int = 0
    messages: int = 0
    members: int = 0
    quarantined: int = 0
    rooms_without_members: int = 0
    # Seconds spent waiting for the database: copying into staging, the one INSERT of the messages, and
    # the rest of each batch (chats, counters, members, audit, bookkeeping, commit).
    copy_s: float = 0.0
    insert_s: float = 0.0
    rest_s: float = 0.0


_STAGE = """
create temp table if not exists chat_migrate_stage (
  session_id uuid not null,
  pos bigint not null,
  micros bigint not null,
  id uuid not null,
  sender_id uuid,
  content text not null
) on commit delete rows;
create temp table if not exists chat_migrate_batch (
  session_id uuid primary key,
  legacy_room text not null,
  title text not null,
  owner uuid,
  legacy_size bigint not null,
  messages bigint not null,
  quarantined bigint not null,
  members integer not null,
  first_at timestamptz,
  last_at timestamptz
) on commit delete rows;
"""

_INSERT_CHATS = """
insert into public.chat_sessions (id, title, created_at, updated_at)
select b.session_id, b.title, coalesce(b.first_at, now()), coalesce(b.first_at, now())
from chat_migrate_batch b
"""

# seq and rev in legacy order. The chats were created in this transaction, so numbering starts at 1.
_INSERT_MESSAGES = """
insert into public.chat_messages (id, session_id, sender_id, content, created_at, seq, rev)
select s.id, s.session_id, s.sender_id, s.content, timestamptz 'epoch' + s.micros * interval '1 microsecond',
       row_number() over w, row_number() over w
from chat_migrate_stage s
window w as (partition by s.session_id order by s.micros, s.pos)
"""

# THE COUNTERS. The only place where the load sets what the per-row triggers would have maintained:
# the chat's last_seq/last_rev/last_message_at (assign_message_order does this per message) and each
# member's read position (everything migrated counts as read, so nobody opens the app to 100,000
# unread messages). A schema that adds per-member counters (unread counts, last activity) must fill them
# here too, and list its new trigger in db.KNOWN_TRIGGERS; until then `run` refuses to load.
SET_COUNTERS = """
update public.chat_sessions c
   set last_seq = c.last_seq + b.messages,
       last_rev = c.last_rev + b.messages,
       last_message_at = greatest(c.last_message_at, b.last_at),
       created_by = b.owner
  from chat_migrate_batch b
 where c.id = b.session_id
"""
INSERT_MEMBERS = """
insert into public.chat_members (session_id, user_id, role, joined_at, last_read_seq)
select m.session_id, m.user_id, m.role, c.created_at, c.last_seq
from unnest($1::uuid[], $2::uuid[], $3::text[]) as m (session_id, user_id, role)
join public.chat_sessions c on c.id = m.session_id
"""

_AUDIT = """
insert into audit.events (actor_role, action, session_id, target_id, new_row)
select current_user, 'chat.migrated', b.session_id, b.session_id,
       jsonb_build_object('run', $1::bigint, 'legacy_room', b.legacy_room, 'messages', b.messages,
                          'members', b.members, 'quarantined', b.quarantined, 'tool', 'chat-migrate')
from chat_migrate_batch b
"""

_RECORD_CHATS = f"""
insert into {SCHEMA}.chats (legacy_room, run_id, session_id, title, legacy_size, messages, quarantined, members)
select b.legacy_room, $1, b.session_id, b.title, b.legacy_size, b.messages, b.quarantined, b.members
from chat_migrate_batch b
"""
_RECORD_MEMBERS = f"""
insert into {SCHEMA}.members (session_id, user_id, run_id)
select m.session_id, m.user_id, $3 from unnest($1::uuid[], $2::uuid[]) as m (session_id, user_id)
"""
_RECORD_QUARANTINE = f"""
insert into {SCHEMA}.quarantine (run_id, legacy_room, position, category, detail, member)
select $1, q.room, q.position, q.category, q.detail, q.member
from unnest($2::text[], $3::bigint[], $4::text[], $5::text[], $6::bytea[])
  as q (room, position, category, detail, member)
"""


def _at(micros: int | None) -> dt.datetime | None:
    if micros is None:
        return None
    return dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=micros)


class Loader:
    """Loads batches on one connection; one transaction per batch."""

    def __init__(self, conn: asyncpg.Connection, context: Context) -> None:
        self.conn = conn
        self.context = context
        self.totals = LoadTotals()
        self._tx: Any = None

    async def prepare(self) -> None:
        await self.conn.execute(_STAGE)

    async def rows(self, rows: list[Row]) -> None:
        if self._tx is None:
            self._tx = self.conn.transaction()
            await self._tx.start()
        started = time.perf_counter()
        await self.conn.copy_records_to_table("chat_migrate_stage", records=rows, columns=STAGE_COLUMNS)
        self.totals.copy_s += time.perf_counter() - started

    async def abort(self) -> None:
        if self._tx is not None:
            tx, self._tx = self._tx, None
            await tx.rollback()

    async def finish(self, rooms: list[RoomStats]) -> None:
        """Create the batch's chats, messages, members, audit events and bookkeeping; commit."""
        if self._tx is None:
            self._tx = self.conn.transaction()
            await self._tx.start()
        ctx = self.context
        chats: list[tuple[Any, ...]] = []
        member_rows: list[tuple[uuid.UUID, uuid.UUID, str]] = []
        quarantine: list[tuple[str, int | None, str, str, bytes | None]] = []
        dropped: list[uuid.UUID] = []
        for stats in rooms:
            room = stats.room
            members = chat_members(room, ctx.listed.get(room.id, ()), stats.senders, ctx.accounts)
            for position, reason, detail, raw in stats.rejected:
                quarantine.append((room.id, position, reason.value, detail, raw))
            if not members:
                # Nobody who exists could ever see this chat: leave the room in Redis and say so.
                dropped.append(stats.chat_id)
                quarantine.append(
                    (room.id, None, Reason.ROOM_WITHOUT_MEMBERS.value, f"{stats.valid} messages not migrated", None)
                )
                self.totals.rooms_without_members += 1
                self.totals.quarantined += stats.valid
                continue
            owner = next(account for _, account, role in members if role == "owner")
            chats.append(
                (
                    stats.chat_id,
                    room.id,
                    chat_title(room, ctx.users),
                    owner,
                    stats.read if stats.read else room.size,
                    stats.valid,
                    len(stats.rejected),
                    len(members),
                    _at(stats.first),
                    _at(stats.last),
                )
            )
            member_rows.extend((stats.chat_id, account, role) for _, account, role in members)
            self.totals.quarantined += len(stats.rejected)
        conn = self.conn
        started = time.perf_counter()
        try:
            if dropped:
                await conn.execute("delete from chat_migrate_stage where session_id = any($1::uuid[])", dropped)
            await conn.copy_records_to_table(
                "chat_migrate_batch",
                records=chats,
                columns=[
                    "session_id",
                    "legacy_room",
                    "title",
                    "owner",
                    "legacy_size",
                    "messages",
                    "quarantined",
                    "members",
                    "first_at",
                    "last_at",
                ],
            )
            await set_triggers(conn, ctx.disabled, enabled=False)
            await conn.execute(_INSERT_CHATS)
            inserting = time.perf_counter()
            await conn.execute(_INSERT_MESSAGES)
            self.totals.insert_s += time.perf_counter() - inserting
            inserting = time.perf_counter() - inserting
            await conn.execute(SET_COUNTERS)
            await conn.execute(
                INSERT_MEMBERS, [m[0] for m in member_rows], [m[1] for m in member_rows], [m[2] for m in member_rows]
            )
            await conn.execute(_AUDIT, ctx.run_id)
            await conn.execute(_RECORD_CHATS, ctx.run_id)
            await conn.execute(_RECORD_MEMBERS, [m[0] for m in member_rows], [m[1] for m in member_rows], ctx.run_id)
            if quarantine:
                await conn.execute(
                    _RECORD_QUARANTINE,
                    ctx.run_id,
                    [q[0] for q in quarantine],
                    [q[1] for q in quarantine],
                    [q[2] for q in quarantine],
                    [q[3] for q in quarantine],
                    [q[4] for q in quarantine],
                )
            await set_triggers(conn, ctx.disabled, enabled=True)
            tx, self._tx = self._tx, None
            await tx.commit()
            self.totals.rest_s += time.perf_counter() - started - inserting
        except BaseException:
            await self.abort()
            raise
        self.totals.chats += len(chats)
        self.totals.messages += sum(chat[5] for chat in chats)
        self.totals.members += len(member_rows)


async def pump(events: AsyncIterator[Rows | BatchEnd], sink: Callable[[Rows | BatchEnd], Any], depth: int = 3) -> None:
    """Feed ``events`` to ``sink`` through a small queue, so reading and parsing the next chunk overlaps
    with the database working on the last one (memory: at most ``depth`` chunks in flight)."""
    queue: asyncio.Queue[Rows | BatchEnd | BaseException | None] = asyncio.Queue(maxsize=depth)

    async def produce() -> None:
        try:
            async for event in events:
                await queue.put(event)
        except Exception as error:  # handed to the consumer, which raises it in its own task
            await queue.put(error)
        else:
            await queue.put(None)

    producer = asyncio.create_task(produce())
    try:
        while True:
            item = await queue.get()
            if item is None:
                break
            if isinstance(item, BaseException):
                raise item
            await sink(item)
    finally:
        producer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await producer
