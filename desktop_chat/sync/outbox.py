"""The outbox: every message typed and sent, on disk before it is shown, until the server has it.

Also the reactions waiting to go out (``reaction_ops``): one row per (message, emoji) with what the user
wants now (on or off) and a version that every toggle bumps, so the last toggle wins and one request
delivers it (``ReactionSender``); a delivered op leaves only if no toggle came meanwhile.

A local SQLite database in the user data directory (WAL, ``synchronous=FULL``, so a send that returned
survives a crash or a power cut). One row per unsent message, keyed by its client-made id, which is
also the idempotency key on the server. Rows leave only when the server confirmed the message (without
an fsync: see ``remove_delivered``) or the user discarded it. All SQLite work runs on one private thread
so a slow disk never stalls the UI.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from desktop_chat.errors import LocalStorageError
from desktop_chat.models import ChatId, DeliveryState, Message, MessageId, UserId

T = TypeVar("T")

SCHEMA_VERSION = 2  # 2: reply_to on messages, the reaction_ops table
_SCHEMA = """
create table if not exists outbox (
  id text primary key,
  server text not null,
  user_id text not null,
  session_id text not null,
  content text not null,
  created_at real not null,
  local_seq integer not null,
  attempts integer not null default 0,
  state text not null default 'pending' check (state in ('pending', 'failed')),
  last_error text,
  next_attempt_at real not null default 0,
  reply_to text
);
create index if not exists outbox_by_chat on outbox (server, user_id, session_id, local_seq);
create table if not exists reaction_ops (
  server text not null,
  user_id text not null,
  session_id text not null,
  message_id text not null,
  emoji text not null,
  wanted integer not null check (wanted in (0, 1)),
  version integer not null,
  created_at real not null,
  attempts integer not null default 0,
  last_error text,
  next_attempt_at real not null default 0,
  primary key (server, user_id, session_id, message_id, emoji)
);
"""
# A version-1 outbox gains the column (the table exists, so the create above left it as it was).
_UPGRADE_1 = "alter table outbox add column reply_to text"


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    id: MessageId
    server: str
    user_id: UserId
    chat_id: ChatId
    content: str
    created_at: float  # local epoch seconds: the pending row's time and sort position
    local_seq: int
    attempts: int = 0
    state: DeliveryState = DeliveryState.PENDING  # PENDING (will be tried) or FAILED (waits for the user)
    last_error: str | None = None
    next_attempt_at: float = 0.0
    reply_to: MessageId | None = None  # the message of the same chat this one answers

    def as_message(self) -> Message:
        """The optimistic row the views show until the server's copy arrives."""
        return Message(
            id=self.id,
            chat_id=self.chat_id,
            sender_id=self.user_id,
            content=self.content,
            created_at=datetime.fromtimestamp(self.created_at, tz=UTC),
            delivery=self.state,
            error=self.last_error if self.state is DeliveryState.FAILED else None,
            reply_to=self.reply_to,
        )


@dataclass(frozen=True, slots=True)
class ReactionOp:
    """A reaction the user wants on (``wanted``) or off a message, not yet delivered.

    ``version`` grows with every toggle of the same (message, emoji): a delivery removes the op only when
    its version is still the one sent.
    """

    server: str
    user_id: UserId
    chat_id: ChatId
    message_id: MessageId
    emoji: str
    wanted: bool
    version: int
    created_at: float
    attempts: int = 0
    last_error: str | None = None
    next_attempt_at: float = 0.0

    @property
    def key(self) -> tuple[ChatId, MessageId, str]:
        return (self.chat_id, self.message_id, self.emoji)


def _op(row: sqlite3.Row) -> ReactionOp:
    return ReactionOp(
        server=row["server"],
        user_id=UserId(uuid.UUID(row["user_id"])),
        chat_id=ChatId(uuid.UUID(row["session_id"])),
        message_id=MessageId(uuid.UUID(row["message_id"])),
        emoji=row["emoji"],
        wanted=bool(row["wanted"]),
        version=row["version"],
        created_at=row["created_at"],
        attempts=row["attempts"],
        last_error=row["last_error"],
        next_attempt_at=row["next_attempt_at"],
    )


def _entry(row: sqlite3.Row) -> OutboxEntry:
    return OutboxEntry(
        id=MessageId(uuid.UUID(row["id"])),
        server=row["server"],
        user_id=UserId(uuid.UUID(row["user_id"])),
        chat_id=ChatId(uuid.UUID(row["session_id"])),
        content=row["content"],
        created_at=row["created_at"],
        local_seq=row["local_seq"],
        attempts=row["attempts"],
        state=DeliveryState(row["state"]),
        last_error=row["last_error"],
        next_attempt_at=row["next_attempt_at"],
        reply_to=MessageId(uuid.UUID(row["reply_to"])) if row["reply_to"] else None,
    )


class Outbox:
    """Durable queue of unsent messages. Create with ``await Outbox.open(path)``."""

    def __init__(self, path: Path, connection: sqlite3.Connection, executor: ThreadPoolExecutor) -> None:
        self.path = path
        self._db = connection
        self._executor = executor
        row = connection.execute("select coalesce(max(local_seq), 0) from outbox").fetchone()
        self._next_seq = int(row[0]) + 1

    @classmethod
    async def open(cls, path: Path) -> Outbox:
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbox")

        def connect() -> sqlite3.Connection:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            db.row_factory = sqlite3.Row
            db.execute("pragma journal_mode = wal")
            db.execute("pragma synchronous = full")  # a returned send is on disk
            db.execute("pragma busy_timeout = 5000")
            version = db.execute("pragma user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise LocalStorageError(
                    f"The outbox at {path} was written by a newer desktop-chat; update the app to send it."
                )
            db.executescript(_SCHEMA)
            columns = {row[1] for row in db.execute("pragma table_info(outbox)")}
            if "reply_to" not in columns:
                db.execute(_UPGRADE_1)
            db.execute(f"pragma user_version = {SCHEMA_VERSION}")
            path.chmod(0o600)
            return db

        loop = asyncio.get_running_loop()
        try:
            connection = await loop.run_in_executor(executor, connect)
        except sqlite3.Error as error:
            executor.shutdown(wait=False)
            raise LocalStorageError(f"Cannot open the outbox at {path}: {error}") from error
        except BaseException:
            executor.shutdown(wait=False)
            raise
        return cls(path, connection, executor)

    async def close(self) -> None:
        await self._run(lambda db: db.close())
        self._executor.shutdown(wait=True)

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        def guarded() -> T:
            try:
                return work(self._db)
            except sqlite3.Error as error:
                raise LocalStorageError(f"The outbox at {self.path} failed: {error}") from error

        return await asyncio.get_running_loop().run_in_executor(self._executor, guarded)

    # --- writing -----------------------------------------------------------------------------------
    async def add(
        self,
        message_id: MessageId,
        server: str,
        user_id: UserId,
        chat_id: ChatId,
        content: str,
        reply_to: MessageId | None = None,
    ) -> OutboxEntry:
        """Persist a new message (``reply_to``: the message it answers); returns once it is on disk."""
        entry = OutboxEntry(
            id=message_id,
            server=server,
            user_id=user_id,
            chat_id=chat_id,
            content=content,
            created_at=time.time(),
            local_seq=self._next_seq,
            reply_to=reply_to,
        )
        self._next_seq += 1
        await self._run(
            lambda db: db.execute(
                "insert into outbox (id, server, user_id, session_id, content, created_at, local_seq, reply_to)"
                " values (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    str(entry.id),
                    entry.server,
                    str(entry.user_id),
                    str(entry.chat_id),
                    entry.content,
                    entry.created_at,
                    entry.local_seq,
                    str(reply_to) if reply_to is not None else None,
                ),
            )
        )
        return entry

    async def record_attempt(self, entry: OutboxEntry, error: str, next_attempt_at: float) -> OutboxEntry:
        """A transient failure: count it and note when to try again."""
        updated = replace(entry, attempts=entry.attempts + 1, last_error=error, next_attempt_at=next_attempt_at)
        await self._run(
            lambda db: db.execute(
                "update outbox set attempts = ?, last_error = ?, next_attempt_at = ? where id = ?",
                (updated.attempts, error, next_attempt_at, str(entry.id)),
            )
        )
        return updated

    async def mark_failed(self, entry: OutboxEntry, reason: str) -> OutboxEntry:
        updated = replace(entry, attempts=entry.attempts + 1, state=DeliveryState.FAILED, last_error=reason)
        await self._run(
            lambda db: db.execute(
                "update outbox set attempts = ?, state = 'failed', last_error = ? where id = ?",
                (updated.attempts, reason, str(entry.id)),
            )
        )
        return updated

    async def mark_pending(self, message_id: MessageId) -> OutboxEntry | None:
        """Put a failed message back in the queue (the user pressed Retry); same id, same place."""
        await self._run(
            lambda db: db.execute(
                "update outbox set state = 'pending', next_attempt_at = 0, last_error = null where id = ?",
                (str(message_id),),
            )
        )
        return await self.get(message_id)

    async def remove(self, message_id: MessageId) -> bool:
        """Forget a message the user discarded (on disk before this returns: it must never be sent)."""
        cursor = await self._run(lambda db: db.execute("delete from outbox where id = ?", (str(message_id),)))
        return cursor.rowcount > 0

    async def remove_delivered(self, message_id: MessageId) -> bool:
        """Forget a message the server has confirmed, without waiting for the disk.

        The delete is committed with ``synchronous=normal``: it survives the app crashing, and the next
        fully synchronous commit (the next send) flushes it, but a power cut right after it may bring the
        entry back. That is harmless: it is sent again with the same id, the server keeps its row (``on
        conflict (id) do nothing``) and answers with it, so nothing doubles. What it saves is an fsync per
        delivered message on the outbox's one thread, where a new send's insert would wait behind it.
        """

        def delete(db: sqlite3.Connection) -> int:
            db.execute("pragma synchronous = normal")
            try:
                return db.execute("delete from outbox where id = ?", (str(message_id),)).rowcount
            finally:
                db.execute("pragma synchronous = full")

        return await self._run(delete) > 0

    async def purge_user(self, server: str, user_id: UserId) -> int:
        def purge(db: sqlite3.Connection) -> int:
            db.execute("delete from reaction_ops where server = ? and user_id = ?", (server, str(user_id)))
            return db.execute("delete from outbox where server = ? and user_id = ?", (server, str(user_id))).rowcount

        return await self._run(purge)

    # --- reading -----------------------------------------------------------------------------------
    async def get(self, message_id: MessageId) -> OutboxEntry | None:
        row = await self._run(lambda db: db.execute("select * from outbox where id = ?", (str(message_id),)).fetchone())
        return _entry(row) if row is not None else None

    async def entries(self, server: str, user_id: UserId, chat_id: ChatId | None = None) -> list[OutboxEntry]:
        """This user's unsent messages (pending and failed) in send order."""
        if chat_id is None:
            query = "select * from outbox where server = ? and user_id = ? order by local_seq"
            params: tuple[str, ...] = (server, str(user_id))
        else:
            query = "select * from outbox where server = ? and user_id = ? and session_id = ? order by local_seq"
            params = (server, str(user_id), str(chat_id))
        rows = await self._run(lambda db: db.execute(query, params).fetchall())
        return [_entry(row) for row in rows]

    async def depth(self, server: str, user_id: UserId) -> int:
        row = await self._run(
            lambda db: db.execute(
                "select count(*) from outbox where server = ? and user_id = ?", (server, str(user_id))
            ).fetchone()
        )
        return int(row[0])

    # --- reactions -----------------------------------------------------------------------------------
    async def set_reaction(
        self, server: str, user_id: UserId, chat_id: ChatId, message_id: MessageId, emoji: str, wanted: bool
    ) -> ReactionOp:
        """Record what the user wants for (message, emoji) now, replacing any earlier wish; on disk on return."""
        key = (server, str(user_id), str(chat_id), str(message_id), emoji)

        def upsert(db: sqlite3.Connection) -> sqlite3.Row:
            row: sqlite3.Row = db.execute(
                "insert into reaction_ops (server, user_id, session_id, message_id, emoji, wanted, version, created_at)"
                " values (?, ?, ?, ?, ?, ?, 1, ?)"
                " on conflict (server, user_id, session_id, message_id, emoji) do update set"
                " wanted = excluded.wanted, version = reaction_ops.version + 1, attempts = 0,"
                " last_error = null, next_attempt_at = 0"
                " returning *",
                (*key, int(wanted), time.time()),
            ).fetchone()
            return row

        return _op(await self._run(upsert))

    async def reaction_ops(self, server: str, user_id: UserId) -> list[ReactionOp]:
        """This user's reactions waiting to go out, oldest first."""
        rows = await self._run(
            lambda db: db.execute(
                "select * from reaction_ops where server = ? and user_id = ? order by created_at",
                (server, str(user_id)),
            ).fetchall()
        )
        return [_op(row) for row in rows]

    async def reaction_delivered(self, op: ReactionOp) -> bool:
        """Forget ``op`` if no toggle replaced it meanwhile (its version is still the one sent)."""
        cursor = await self._run(
            lambda db: db.execute(
                "delete from reaction_ops where server = ? and user_id = ? and session_id = ? and message_id = ?"
                " and emoji = ? and version = ?",
                (op.server, str(op.user_id), str(op.chat_id), str(op.message_id), op.emoji, op.version),
            )
        )
        return cursor.rowcount > 0

    async def reaction_attempt(self, op: ReactionOp, error: str, next_attempt_at: float) -> ReactionOp:
        """A transient failure of ``op``: count it and note when to try again."""
        updated = replace(op, attempts=op.attempts + 1, last_error=error, next_attempt_at=next_attempt_at)
        await self._run(
            lambda db: db.execute(
                "update reaction_ops set attempts = ?, last_error = ?, next_attempt_at = ?"
                " where server = ? and user_id = ? and session_id = ? and message_id = ? and emoji = ? and version = ?",
                (
                    updated.attempts,
                    error,
                    next_attempt_at,
                    op.server,
                    str(op.user_id),
                    str(op.chat_id),
                    str(op.message_id),
                    op.emoji,
                    op.version,
                ),
            )
        )
        return updated
