"""Read the broadcasts the database sends on the private topics: which row changed, and when. Pure.

A broadcast reaches the official client's callback as ``{"event": <name>, "payload": <body>, ...}``.
The schema's triggers send two shapes of body:

- ``realtime.broadcast_changes``' row change, for the events ``message``, ``chat`` and ``member``:
  ``{"schema": "public", "table", "operation": INSERT|UPDATE|DELETE, "record", "old_record", "id"}``
  (``old_record`` is null except for deletes, which carry the old row);
- the compact ``activity`` notice of a new message: ``{"chat_id", "message_id", "sender_id", "seq",
  "rev", "created_at", "preview", "id"}``.

What a change *means* (which event, how it is applied) is the data layer's change-type table
(``desktop_chat.dal.changes``); this module only unpacks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Push:
    """One broadcast as received: the topic it came on (``user:<id>``, ``chat:<id>``), its event name and
    its body."""

    topic: str
    event: str
    payload: Mapping[str, object]


@dataclass(frozen=True, slots=True)
class RowChange:
    """One changed row of a ``public`` table, as broadcast.

    ``kind`` is INSERT, UPDATE or DELETE; ``record`` is the new row (inserts and updates), ``old`` the old
    one (deletes).
    """

    table: str
    kind: str
    record: Mapping[str, object] | None
    old: Mapping[str, object] | None


def push_from(topic: str, message: Mapping[str, object]) -> Push | None:
    """The push a broadcast callback received (``{"event", "payload", ...}``), or None when it is not one.

    ``topic`` is given without the client's ``realtime:`` prefix.
    """
    event = message.get("event")
    payload = message.get("payload")
    if not isinstance(event, str) or not isinstance(payload, Mapping):
        return None
    return Push(topic=topic, event=event, payload=payload)


def row_change(payload: Mapping[str, object]) -> RowChange | None:
    """The row change a ``broadcast_changes`` body describes, or None for another schema or shape."""
    if payload.get("schema") != "public":
        return None
    table = payload.get("table")
    kind = payload.get("operation")
    if not isinstance(table, str) or not isinstance(kind, str):
        return None
    record = payload.get("record")
    old = payload.get("old_record")
    return RowChange(
        table=table,
        kind=kind.upper(),
        record=record if isinstance(record, Mapping) else None,
        old=old if isinstance(old, Mapping) else None,
    )


def _timestamp(value: object) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def change_time(push: Push) -> float | None:
    """When a new message was written on the server (epoch seconds), or None for other pushes.

    Broadcasts carry no commit timestamp; a message's ``created_at`` is its transaction's start, which for
    the one-statement insert of a send is its commit within a millisecond or so. Edits, deletes and the
    other events carry no time worth measuring a delay from.
    """
    if push.event == "activity":
        return _timestamp(push.payload.get("created_at"))
    if push.event == "message":
        change = row_change(push.payload)
        if change is not None and change.kind == "INSERT" and change.record is not None:
            return _timestamp(change.record.get("created_at"))
    return None
