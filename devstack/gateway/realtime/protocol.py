"""Phoenix channel frames (V1 JSON serializer) and Realtime's join payload. Pure.

What the official client sends and accepts is in ``shared/reference/supabase-wire.md`` section 3. The
rules that matter here: every server frame is an object with ``topic``, ``event``, ``payload`` and a
``ref`` key whose value is a string or null (null for pushes); the join reply echoes each
``postgres_changes`` binding as received plus a non-zero integer ``id``; V2 array frames are refused.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from typing import Any

from devstack.gateway.realtime.filters import FilterError, FilterSpec, parse_filters

MAX_FRAME_BYTES = 1024 * 1024
"""websockets' default ``max_size``: the client drops the connection on a bigger frame, so neither side
may send one."""

PHOENIX_TOPIC = "phoenix"
TOPIC_PREFIX = "realtime:"
CHANGE_EVENTS = frozenset({"INSERT", "UPDATE", "DELETE", "*"})

# WebSocket close codes (RFC 6455).
CLOSE_GOING_AWAY = 1001
CLOSE_UNSUPPORTED_DATA = 1003
CLOSE_INVALID_PAYLOAD = 1007
CLOSE_POLICY_VIOLATION = 1008
CLOSE_TRY_AGAIN_LATER = 1013


class FrameError(ValueError):
    """A client frame that cannot be handled.

    Attributes:
        close_code: Set when the frame is not a V1 frame at all (not JSON, an array): the connection
            cannot go on, because the client speaks a protocol this server does not.
        topic, ref: Set when the frame named them, so the client can be told in a ``phx_reply``.
    """

    def __init__(
        self, message: str, *, close_code: int | None = None, topic: str | None = None, ref: str | None = None
    ) -> None:
        super().__init__(message)
        self.close_code = close_code
        self.topic = topic
        self.ref = ref


@dataclass(frozen=True, slots=True)
class ClientFrame:
    topic: str
    event: str
    payload: dict[str, Any]
    ref: str | None
    join_ref: str | None


def decode_frame(raw: str) -> ClientFrame:
    """Parse one text frame from a V1 client, or raise ``FrameError``."""
    try:
        data = json.loads(raw)
    except ValueError:
        raise FrameError("frame is not JSON", close_code=CLOSE_INVALID_PAYLOAD) from None
    if isinstance(data, list):
        raise FrameError(
            "array frames are the V2 serializer; connect with vsn=1.0.0 and send JSON objects",
            close_code=CLOSE_UNSUPPORTED_DATA,
        )
    if not isinstance(data, dict):
        raise FrameError("frame is not a JSON object", close_code=CLOSE_INVALID_PAYLOAD)
    topic = data.get("topic")
    ref = data.get("ref")
    known_topic = topic if isinstance(topic, str) else None
    known_ref = ref if isinstance(ref, str) else None
    if not isinstance(topic, str):
        raise FrameError("frame has no string `topic`", ref=known_ref)
    if ref is not None and not isinstance(ref, str):
        raise FrameError("`ref` must be a string or null", topic=known_topic)
    event = data.get("event")
    if not isinstance(event, str):
        raise FrameError("frame has no string `event`", topic=known_topic, ref=known_ref)
    payload = data.get("payload", {})
    if not isinstance(payload, dict):
        raise FrameError("`payload` must be a JSON object", topic=known_topic, ref=known_ref)
    join_ref = data.get("join_ref")
    if join_ref is not None and not isinstance(join_ref, str):
        raise FrameError("`join_ref` must be a string or null", topic=known_topic, ref=known_ref)
    return ClientFrame(topic, event, payload, ref, join_ref)


def dumps(value: Any) -> str:
    """Compact JSON, as sent on the wire."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def encode_frame(topic: str, event: str, payload: Any, ref: str | None = None) -> str:
    """A server frame; pushes leave ``ref`` null."""
    return dumps({"topic": topic, "event": event, "payload": payload, "ref": ref})


def encode_reply(topic: str, ref: str | None, status: str, response: Any) -> str:
    """A ``phx_reply`` with ``status`` ``"ok"`` or ``"error"``."""
    return encode_frame(topic, "phx_reply", {"status": status, "response": response}, ref)


def system_payload(sub_topic: str, extension: str, status: str, message: str) -> dict[str, str]:
    """The payload of a ``system`` push (all four keys are required by the client)."""
    return {"channel": sub_topic, "extension": extension, "message": message, "status": status}


# --- join ------------------------------------------------------------------------------------------


class JoinError(ValueError):
    """A join that is refused; the message becomes ``response.reason`` of the error reply."""


@dataclass(frozen=True, slots=True)
class BindingRequest:
    """One ``postgres_changes`` binding of a join, before its table and filter are checked.

    Attributes:
        raw: The binding exactly as received; the reply echoes it with an ``id`` added.
        event: ``INSERT``, ``UPDATE``, ``DELETE`` or ``*``.
        schema: The schema, ``*`` for all.
        table: The table, or None for every published table of ``schema``.
        filters: Parsed conditions (all must hold).
        select: Only these columns (plus the primary key) in records, or None for all.
    """

    raw: dict[str, Any]
    event: str
    schema: str
    table: str | None
    filters: tuple[FilterSpec, ...]
    select: tuple[str, ...] | None


@dataclass(frozen=True, slots=True)
class JoinRequest:
    sub_topic: str
    access_token: str | None
    broadcast_self: bool
    broadcast_ack: bool
    presence_enabled: bool
    presence_key: str
    private: bool
    bindings: tuple[BindingRequest, ...]


def parse_join(topic: str, payload: dict[str, Any]) -> JoinRequest:
    """Validate a ``phx_join`` payload. ``broadcast`` and ``presence`` may be null or missing."""
    if not topic.startswith(TOPIC_PREFIX) or topic == TOPIC_PREFIX:
        raise JoinError("TopicNameRequired: You must provide a topic name (realtime:<name>)")
    config = payload.get("config")
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise JoinError("InvalidJoinPayload: `config` must be an object")
    broadcast = _optional_object(config, "broadcast")
    presence = _optional_object(config, "presence")
    token = payload.get("access_token", payload.get("user_token"))
    if token is not None and not isinstance(token, str):
        raise JoinError("InvalidJoinPayload: `access_token` must be a string")
    key = presence.get("key", "")
    if not isinstance(key, str):
        raise JoinError("InvalidJoinPayload: `presence.key` must be a string")
    raw_bindings = config.get("postgres_changes")
    if raw_bindings is None:
        raw_bindings = []
    if not isinstance(raw_bindings, list):
        raise JoinError("InvalidJoinPayload: `postgres_changes` must be a list")
    bindings = tuple(_parse_binding(index, item) for index, item in enumerate(raw_bindings))
    return JoinRequest(
        sub_topic=topic[len(TOPIC_PREFIX) :],
        access_token=token,
        broadcast_self=broadcast.get("self") is True,
        broadcast_ack=broadcast.get("ack") is True,
        presence_enabled=presence.get("enabled") is True,
        presence_key=key,
        private=config.get("private") is True,
        bindings=bindings,
    )


def _optional_object(config: dict[str, Any], name: str) -> dict[str, Any]:
    value = config.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise JoinError(f"InvalidJoinPayload: `{name}` must be an object or null")
    return value


def _parse_binding(index: int, raw: object) -> BindingRequest:
    where = f"postgres_changes[{index}]"
    if not isinstance(raw, dict):
        raise JoinError(f"InvalidJoinPayload: {where} must be an object")
    event = raw.get("event", "*")
    if not isinstance(event, str) or event.upper() not in CHANGE_EVENTS:
        raise JoinError(f"InvalidJoinPayload: {where}.event must be one of INSERT, UPDATE, DELETE, *")
    schema = raw.get("schema")
    table = raw.get("table")
    if schema is None and table is None:
        raise JoinError(
            f"InvalidJoinPayload: {where}: no subscription params provided;"
            " please provide at least a `schema` or `table` to subscribe to"
        )
    for name, value in (("schema", schema), ("table", table)):
        if value is not None and (not isinstance(value, str) or not value):
            raise JoinError(f"InvalidJoinPayload: {where}.{name} must be a non-empty string")
    filter_text = raw.get("filter")
    if filter_text is not None and not isinstance(filter_text, str):
        raise JoinError(f"InvalidJoinPayload: {where}.filter must be a string")
    table_name = None if table in (None, "*") else str(table)
    try:
        filters = parse_filters(filter_text or "")
    except FilterError as error:
        raise JoinError(f"InvalidJoinPayload: {where}: {error}") from None
    if filters and table_name is None:
        raise JoinError(f"InvalidJoinPayload: {where}: a filter needs an explicit table")
    select = raw.get("select")
    if select is not None:
        if not isinstance(select, list) or not all(isinstance(column, str) for column in select):
            raise JoinError(f"InvalidJoinPayload: {where}.select must be a list of column names")
        if table_name is None:
            raise JoinError(f"InvalidJoinPayload: {where}: column selection needs an explicit table")
    return BindingRequest(
        raw=raw,
        event=event.upper(),
        schema=str(schema) if schema is not None else "public",
        table=table_name,
        filters=filters,
        select=tuple(select) if select is not None else None,
    )


def binding_id(raw: dict[str, Any], taken: set[int]) -> int:
    """A stable, non-zero id for a binding (like Realtime, a hash of its params), unique in ``taken``.

    The client routes pushes by these ids only, so two different bindings of one channel must never
    share one; identical bindings may, but a collision of different ones is resolved by stepping on.
    """
    candidate = zlib.crc32(json.dumps(raw, sort_keys=True, separators=(",", ":")).encode()) & 0x7FFFFFFF
    candidate = candidate or 1
    while candidate in taken:
        candidate = candidate % 0x7FFFFFFF + 1
    taken.add(candidate)
    return candidate
