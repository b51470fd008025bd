"""What Realtime's frames carry, independent of the serializer, and its join payload. Pure.

The wire formats (the V1 JSON object serializer and the V2 array and binary serializer) are in
``serializer``; what the official clients send and accept is in ``shared/reference/supabase-wire.md``
section 3. This module holds what both share: the limits, the client frame after decoding, JSON read
under those limits, broadcasts as relayed between sockets, and the join payload.
"""

from __future__ import annotations

import json
import re
import zlib
from dataclasses import dataclass
from typing import Any

from devstack.gateway.realtime.filters import FilterError, FilterSpec, parse_filters

MAX_FRAME_BYTES = 1024 * 1024
"""websockets' default ``max_size``: the Python client drops the connection on a bigger frame, so neither
side may send one (Realtime itself reads frames up to 5 MB)."""
MAX_JSON_DEPTH = 128
"""Deepest JSON nesting accepted in a frame or body (Realtime has no limit; the Python client's own parser
stops at 200 levels, and Python's at about 1,000, which must never be reached on the server)."""
READABLE_DEPTH = 400
"""Frames nested deeper than ``MAX_JSON_DEPTH`` but at most this deep are still read, to answer them."""
MAX_HTTP_BODY_BYTES = 8_000_000
"""Realtime's endpoint reads bodies with Plug.Parsers' default limit, answering 413 above it."""
MAX_PAYLOAD_BYTES = 3_000 * 1000 + 500
"""A broadcast payload's limit: the tenant default ``max_payload_size_in_kb`` (3,000) plus Realtime's
500-byte allowance."""

PHOENIX_TOPIC = "phoenix"
TOPIC_PREFIX = "realtime:"
CHANGE_EVENTS = frozenset({"INSERT", "UPDATE", "DELETE", "*"})

# WebSocket close codes (RFC 6455).
CLOSE_GOING_AWAY = 1001
CLOSE_UNSUPPORTED_DATA = 1003
CLOSE_INVALID_PAYLOAD = 1007
CLOSE_POLICY_VIOLATION = 1008
CLOSE_INTERNAL_ERROR = 1011
CLOSE_TRY_AGAIN_LATER = 1013


class FrameError(ValueError):
    """A client frame that cannot be handled.

    Attributes:
        close_code: Set when the frame cannot be read at all (not JSON, the other serializer's shape,
            nested too deeply to read): the connection cannot go on.
        topic, ref, join_ref: Set when the frame named them, so the client can be told in a ``phx_reply``.
    """

    def __init__(
        self,
        message: str,
        *,
        close_code: int | None = None,
        topic: str | None = None,
        ref: str | None = None,
        join_ref: str | None = None,
    ) -> None:
        super().__init__(message)
        self.close_code = close_code
        self.topic = topic
        self.ref = ref
        self.join_ref = join_ref


@dataclass(frozen=True, slots=True)
class UserBroadcast:
    """A broadcast pushed in binary by a V2 client (``userBroadcastPush``): relayed without re-encoding.

    Attributes:
        event: The user's event name.
        payload: The user payload exactly as received: JSON text (checked like any frame) or opaque bytes.
        is_json: Whether ``payload`` is JSON (else only V2 sockets can be given it).
    """

    event: str
    payload: bytes
    is_json: bool


@dataclass(frozen=True, slots=True)
class ClientFrame:
    """A decoded client frame.

    Attributes:
        user_broadcast: For a V2 binary broadcast push, the broadcast itself; ``payload`` then holds
            ``type`` and ``event`` (and the parsed ``payload`` when it is JSON) for the channel logic.
    """

    topic: str
    event: str
    payload: dict[str, Any]
    ref: str | None
    join_ref: str | None
    user_broadcast: UserBroadcast | None = None


@dataclass(frozen=True, slots=True)
class Broadcast:
    """A broadcast on its way to a topic's sockets, each of which gets it in its own serializer.

    Exactly one of ``payload`` (the frame payload ``{"type": "broadcast", "event", "payload", ...}``, from
    a V1 or V2 text frame or the HTTP API) and ``user`` (a V2 binary push) is set.
    """

    payload: dict[str, Any] | None = None
    user: UserBroadcast | None = None


# --- JSON under the wire's limits ------------------------------------------------------------------


class JsonError(ValueError):
    """Text that is not JSON this server can relay; the message says why.

    Attributes:
        unreadable: Whether the text is nested so deeply that it was not parsed at all.
    """

    def __init__(self, message: str, *, unreadable: bool = False) -> None:
        super().__init__(message)
        self.unreadable = unreadable


# A JSON string (escapes included) or a bracket; strings are matched whole so brackets in them don't count.
_JSON_TOKENS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')
# A \u escape of a UTF-16 surrogate; only text holding one can decode to a string that is not Unicode.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89abcdefABCDEF]")


def json_depth(text: str, stop_above: int) -> int:
    """How deeply ``text`` nests arrays and objects; the scan stops once deeper than ``stop_above``."""
    depth = deepest = 0
    for match in _JSON_TOKENS.finditer(text):
        token = match.group()
        if token in ("[", "{"):
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > stop_above:
                    break
        elif token in ("]", "}"):
            depth -= 1
    return deepest


def _no_constant(name: str) -> Any:
    raise JsonError(f"{name} is not JSON")


def loads(raw: str | bytes, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse JSON that a client sent, refusing what cannot be relayed to others.

    Refused, with ``JsonError``: bytes that are not UTF-8 (Python's own decoder lets encoded surrogates
    through), nesting deeper than ``max_depth``, ``NaN`` and ``Infinity`` (not JSON, and unreadable by
    other clients), and strings holding a lone surrogate (``"\\ud800"``), which cannot be encoded to
    UTF-8 and so could not be written to any socket.
    """
    if isinstance(raw, bytes):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise JsonError(f"not UTF-8 at byte {error.start}") from None
    else:
        text = raw
    # Only text with more brackets than the limit can nest deeper than it: skip the scan for the rest.
    depth = json_depth(text, READABLE_DEPTH) if text.count("[") + text.count("{") > max_depth else 0
    if depth > READABLE_DEPTH:
        raise JsonError(f"JSON nested deeper than {max_depth} levels", unreadable=True)
    try:
        data = json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise JsonError(f"JSON nested deeper than {max_depth} levels", unreadable=True) from None
    except JsonError:
        raise
    except ValueError as error:
        raise JsonError(f"not JSON: {error}") from None
    if depth > max_depth:
        raise JsonError(f"JSON nested deeper than {max_depth} levels")
    if _SURROGATE_ESCAPE.search(text):
        try:
            dumps(data).encode()
        except UnicodeEncodeError:
            raise JsonError(
                "a string holds a lone UTF-16 surrogate (\\ud800-\\udfff escape), which is not valid Unicode"
            ) from None
    return data


def dumps(value: Any) -> str:
    """Compact JSON, as sent on the wire."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


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
