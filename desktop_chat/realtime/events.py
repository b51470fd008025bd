"""Read ``postgres_changes`` pushes: which row of which table changed, and when it was committed. Pure.

The callback payload of the official client is ``{"data": {"schema", "table", "type", "record",
"old_record", "commit_timestamp", ...}, "ids": [...]}``. What a row change *means* (which event, how it is
applied) is the data layer's change-type table (``desktop_chat.dal.changes``); this module only unpacks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class RowChange:
    """One changed row of a ``public`` table, as pushed.

    ``kind`` is INSERT, UPDATE or DELETE; ``record`` is the new row (inserts and updates), ``old`` the old
    one (deletes carry only the primary key).
    """

    table: str
    kind: str
    record: Mapping[str, object] | None
    old: Mapping[str, object] | None


def row_change(payload: Mapping[str, object]) -> RowChange | None:
    """The row change a push describes, or None for another schema or a push that is not one."""
    data = payload.get("data", payload)
    if not isinstance(data, Mapping) or data.get("schema") != "public":
        return None
    table = data.get("table")
    if not isinstance(table, str):
        return None
    raw_kind = data.get("type", "")
    # The client hands over its own str-Enum here, whose str() is "Class.Member": use the value.
    kind = str(getattr(raw_kind, "value", raw_kind)).upper()
    record = data.get("record")
    old = data.get("old_record")
    return RowChange(
        table=table,
        kind=kind,
        record=record if isinstance(record, Mapping) else None,
        old=old if isinstance(old, Mapping) else None,
    )


def commit_time(payload: Mapping[str, object]) -> float | None:
    """The push's ``commit_timestamp`` as epoch seconds, or None when it is missing or malformed."""
    data = payload.get("data", payload)
    if not isinstance(data, Mapping):
        return None
    raw = data.get("commit_timestamp")
    if not isinstance(raw, str):
        return None
    try:
        return datetime.fromisoformat(raw.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
