"""Broadcast from the database: rows inserted into ``realtime.messages`` go to their topic's subscribers.

``realtime.send`` and ``realtime.broadcast_changes`` (devstack/sql/realtime.sql) insert rows; the change
capture reads them from the WAL like any other change (the partitions of ``realtime.messages`` are not
in the ``supabase_realtime`` publication, so ``postgres_changes`` never sees them) and ``BroadcastRelay``
turns each into the frame Supabase Realtime sends:

    {"topic": "realtime:<topic>", "event": "broadcast", "ref": null,
     "payload": {"event": <event>, "payload": <payload>, "type": "broadcast", "meta": {"id": <row id>}}}

A row with ``private = true`` goes to the private channels of the topic whose join found the broadcast
read right (authorized once, at join, by ``policies``: nothing is checked per message), one with
``private = false`` to its public channels. Rows without a topic, event, id or payload are skipped, as
Realtime skips them; a row with a binary payload goes to V2 sockets only, as a binary user broadcast (V1
sockets cannot carry it).

The rows also need: a wake-up at commit (a statement trigger on ``realtime.messages``, so delivery does
not wait for the capture's fallback timer), and daily partitions, created a few days ahead and dropped
after three days as Realtime's janitor does (``maintain_partitions``, at start and hourly).
"""

from __future__ import annotations

import json
import logging
import re
from typing import TYPE_CHECKING, Any

from devstack.gateway.realtime.protocol import TOPIC_PREFIX, Broadcast, UserBroadcast
from devstack.gateway.realtime.wal import Change

if TYPE_CHECKING:
    from devstack.gateway.realtime.catalog import AnyConnection
    from devstack.gateway.realtime.channels import Hub

log = logging.getLogger(__name__)

SCHEMA = "realtime"
TABLE = "messages"
_PARTITION = re.compile(r"^messages(_\d{4}_\d{2}_\d{2})?$")
WAKE_TRIGGER = "devstack_realtime_broadcast_wake"
MAINTENANCE_SECONDS = 3600.0
DAYS_AHEAD = 3
DAYS_KEPT = 3

_INSTALL_SQL = f"""
create or replace trigger {WAKE_TRIGGER}
  after insert on realtime.messages
  for each statement execute function _realtime.wake();
"""

# Partitions for yesterday through DAYS_AHEAD days ahead; those of days before DAYS_KEPT days ago go.
_MAINTAIN_SQL = f"""
do $$
declare
  v_day date;
  v_name text;
begin
  set local lock_timeout = '2s';
  for v_day in
    select pg_catalog.generate_series(current_date - 1, current_date + {DAYS_AHEAD}, interval '1 day')::date
  loop
    v_name := 'messages_' || pg_catalog.to_char(v_day, 'YYYY_MM_DD');
    if pg_catalog.to_regclass('realtime.' || v_name) is null then
      execute pg_catalog.format(
        'create table realtime.%I partition of realtime.messages for values from (%L) to (%L)',
        v_name, v_day, v_day + 1);
      execute pg_catalog.format('alter table realtime.%I owner to supabase_realtime_admin', v_name);
    end if;
  end loop;
  for v_name in
    select c.relname from pg_catalog.pg_inherits i
      join pg_catalog.pg_class c on c.oid = i.inhrelid
     where i.inhparent = 'realtime.messages'::regclass
       and c.relname ~ '^messages_\\d{{4}}_\\d{{2}}_\\d{{2}}$'
       and pg_catalog.to_date(pg_catalog.substr(c.relname, 10), 'YYYY_MM_DD') < current_date - {DAYS_KEPT}
  loop
    execute pg_catalog.format('drop table if exists realtime.%I', v_name);
  end loop;
end
$$;
"""  # noqa: S608 - only this module's constants are interpolated


async def install(conn: AnyConnection) -> None:
    """Wake the change capture when ``realtime.messages`` gets rows (``_realtime.wake`` exists)."""
    async with conn.transaction():
        await conn.execute("select pg_advisory_xact_lock(hashtext('devstack_realtime_install'))")
        await conn.execute(_INSTALL_SQL)


async def maintain_partitions(conn: AnyConnection) -> None:
    """Create the coming days' partitions of ``realtime.messages`` and drop those past retention."""
    async with conn.transaction():
        await conn.execute("select pg_advisory_xact_lock(hashtext('devstack_realtime_partitions'))")
        await conn.execute(_MAINTAIN_SQL)


def is_broadcast_row(change: Change) -> bool:
    """Whether ``change`` is a row of ``realtime.messages`` (its partitions carry the changes)."""
    return change.schema == SCHEMA and _PARTITION.match(change.table) is not None


class BroadcastRelay:
    """Sends the inserted rows of ``realtime.messages`` to the channels of their topics."""

    def __init__(self, hub: Hub) -> None:
        self._hub = hub
        self.relayed = 0
        """Rows sent on so far (whether or not anyone listened), for tests and benchmarks."""

    def deliver(self, changes: list[Change]) -> None:
        """Relay each inserted row, in commit order; nothing is awaited."""
        for change in changes:
            if change.kind != "INSERT" or change.record is None:
                continue
            message = _message(change.record)
            if message is None:
                continue
            private, topic, broadcast = message
            self.relayed += 1
            self._hub.broadcast((private, TOPIC_PREFIX + topic), broadcast, None)


def _message(record: dict[str, Any]) -> tuple[bool, str, Broadcast] | None:
    """``(private, topic, broadcast)`` of a row, or None for a row Realtime would not send."""
    topic, event, row_id, private = record.get("topic"), record.get("event"), record.get("id"), record.get("private")
    if not isinstance(topic, str) or not isinstance(event, str) or row_id is None or not isinstance(private, bool):
        return None
    binary = record.get("binary_payload")
    if isinstance(binary, str):
        # bytea, as wal2json prints it (hex, with or without the \x of its text output)
        try:
            data = bytes.fromhex(binary.removeprefix("\\x"))
        except ValueError:
            return None
        return private, topic, Broadcast(user=UserBroadcast(event=event, payload=data, is_json=False))
    raw = record.get("payload")
    if raw is None:
        return None
    try:
        payload = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return None
    body = {"event": event, "payload": payload, "type": "broadcast", "meta": {"id": str(row_id)}}
    return private, topic, Broadcast(payload=body)
