"""Turn ``postgres_changes`` pushes into domain change events. Pure.

The callback payload of the official client is ``{"data": {"schema", "table", "type", "record",
"old_record", "commit_timestamp", ...}, "ids": [...]}``. Row values arrive typed as PostgREST renders
them (uuids and timestamps as strings), and are validated into the same models the read path uses.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from datetime import datetime

import pydantic

from desktop_chat.models import (
    ChangeEvent,
    Chat,
    ChatId,
    ChatMember,
    ChatUpserted,
    MemberRemoved,
    MemberUpserted,
    Message,
    MessageUpserted,
    Profile,
    ProfileUpserted,
    UserId,
)

log = logging.getLogger(__name__)

TABLES = ("chat_messages", "chat_sessions", "chat_members", "profiles")


def parse_change(payload: Mapping[str, object]) -> ChangeEvent | None:
    """The change event a push describes, or None for one that is irrelevant or malformed.

    Malformed pushes are logged (without their content) and dropped rather than raised: one bad frame
    must not stop the stream, and back-fill repairs anything missed.
    """
    data = payload.get("data", payload)
    if not isinstance(data, Mapping) or data.get("schema") != "public":
        return None
    table = data.get("table")
    raw_kind = data.get("type", "")
    # The client hands over its own str-Enum here, whose str() is "Class.Member": use the value.
    kind = str(getattr(raw_kind, "value", raw_kind)).upper()
    record = data.get("record")
    old = data.get("old_record")
    try:
        if kind in {"INSERT", "UPDATE"} and isinstance(record, Mapping):
            if table == "chat_messages":
                return MessageUpserted(message=Message.model_validate(record))
            if table == "chat_sessions":
                return ChatUpserted(chat=Chat.model_validate(record))
            if table == "chat_members":
                return MemberUpserted(member=ChatMember.model_validate(record))
            if table == "profiles":
                return ProfileUpserted(profile=Profile.model_validate(record))
        elif kind == "DELETE" and isinstance(old, Mapping) and table == "chat_members":
            # Deletes carry only the primary key: (session_id, user_id).
            return MemberRemoved(
                chat_id=ChatId(uuid.UUID(str(old["session_id"]))),
                user_id=UserId(uuid.UUID(str(old["user_id"]))),
            )
    except (pydantic.ValidationError, KeyError, ValueError, TypeError) as error:
        log.warning("Dropped a malformed %s %s push: %s", table, kind, type(error).__name__)
        return None
    return None


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
