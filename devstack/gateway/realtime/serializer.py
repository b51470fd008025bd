"""Phoenix's wire formats as Realtime serves them, chosen per socket by its ``vsn`` query parameter. Pure.

- ``1.0.0``, the V1 JSON serializer (the official Python client): every frame is a JSON object
  ``{"topic", "event", "payload", "ref"}`` (``join_ref`` too from clients); ``ref`` is a string or null.
- ``2.0.0``, the V2 serializer (``@supabase/supabase-js``, its default): text frames are JSON arrays
  ``[join_ref, ref, topic, event, payload]``; broadcasts travel in binary frames. A client sends a
  broadcast as a *user broadcast push* and receives one as a *user broadcast*:

  ====================  =======================================================================
  user broadcast push   kind 3, then one byte each for the sizes of join_ref, ref, topic, event
  (client to server)    and metadata, one byte for the payload encoding (0 binary, 1 JSON), then
                        those strings and the payload to the end of the frame
  user broadcast        kind 4, one byte each for the sizes of topic, event and metadata, one
  (server to client)    byte for the payload encoding, then topic, event, metadata, payload
  ====================  =======================================================================

  Sizes are single bytes, so topic and event are at most 255 bytes. Broadcasts that arrived as JSON (a V1
  frame, the HTTP API) go to V2 sockets as text frames; user broadcasts go to V1 sockets as JSON when
  their payload is JSON (binary payloads cannot be given to them). A V2 binary *push* (kind 0) with an
  opaque payload is refused: Realtime's channels have no use for it.

Each serializer turns client frames into ``ClientFrame``s (raising ``FrameError``) and builds server
frames: ``str`` for text frames, ``bytes`` for binary ones.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from devstack.gateway.realtime.protocol import (
    CLOSE_INVALID_PAYLOAD,
    CLOSE_UNSUPPORTED_DATA,
    Broadcast,
    ClientFrame,
    FrameError,
    JsonError,
    UserBroadcast,
    dumps,
    loads,
)

Frame = str | bytes

USER_BROADCAST_PUSH = 3
USER_BROADCAST = 4
BINARY_PUSH = 0
ENCODING_BINARY = 0
ENCODING_JSON = 1
MAX_BINARY_FIELD = 255


class Serializer:
    """One wire format. Stateless: one shared instance per format (see ``SERIALIZERS``)."""

    vsn: ClassVar[str]

    def decode(self, data: str | bytes) -> ClientFrame:
        """A client frame, or ``FrameError``."""
        raise NotImplementedError

    def message(
        self, topic: str, event: str, payload: Any, *, ref: str | None = None, join_ref: str | None = None
    ) -> str:
        """A server frame (pushes leave ``ref`` null)."""
        raise NotImplementedError

    def change(self, topic: str, ids: list[int], data_json: str) -> str:
        """A ``postgres_changes`` push, ``data_json`` serialized once per change and shared by all sockets."""
        raise NotImplementedError

    def broadcast(self, topic: str, message: Broadcast) -> Frame | None:
        """``message`` for a socket of this format, or None when this format cannot carry it."""
        raise NotImplementedError

    def reply(self, topic: str, ref: str | None, status: str, response: Any, *, join_ref: str | None = None) -> str:
        """A ``phx_reply`` with ``status`` ``"ok"`` or ``"error"``."""
        return self.message(topic, "phx_reply", {"status": status, "response": response}, ref=ref, join_ref=join_ref)

    def close(self, topic: str, join_ref: str | None) -> str:
        """``phx_close`` for the channel joined with ``join_ref`` (Phoenix sends it as the ref too)."""
        return self.message(topic, "phx_close", {}, ref=join_ref, join_ref=join_ref)


def _parse(data: str | bytes) -> Any:
    try:
        return loads(data)
    except JsonError as error:
        if error.unreadable:
            raise FrameError(f"frame is not readable: {error}", close_code=CLOSE_INVALID_PAYLOAD) from None
        raise


def _checked(
    raw_topic: object, raw_event: object, payload: object, raw_ref: object, raw_join_ref: object
) -> ClientFrame:
    """The fields of a text frame, checked alike for both formats."""
    topic = raw_topic if isinstance(raw_topic, str) else None
    ref = raw_ref if isinstance(raw_ref, str) else None
    join_ref = raw_join_ref if isinstance(raw_join_ref, str) else None
    if topic is None:
        raise FrameError("frame has no string `topic`", ref=ref, join_ref=join_ref)
    if raw_ref is not None and ref is None:
        raise FrameError("`ref` must be a string or null", topic=topic, join_ref=join_ref)
    if not isinstance(raw_event, str):
        raise FrameError("frame has no string `event`", topic=topic, ref=ref, join_ref=join_ref)
    if not isinstance(payload, dict):
        raise FrameError("`payload` must be a JSON object", topic=topic, ref=ref, join_ref=join_ref)
    if raw_join_ref is not None and join_ref is None:
        raise FrameError("`join_ref` must be a string or null", topic=topic, ref=ref)
    return ClientFrame(topic, raw_event, payload, ref, join_ref)


def _refused(error: JsonError, data: str | bytes) -> FrameError:
    """The error for a frame whose JSON was refused, addressed to its topic when that can be read."""
    parsed = _lenient(data)
    if isinstance(parsed, dict):
        fields = (parsed.get("topic"), parsed.get("ref"), parsed.get("join_ref"))
    elif isinstance(parsed, list) and len(parsed) >= 3:
        fields = (parsed[2], parsed[1], parsed[0])
    else:
        fields = (None, None, None)
    # Only plain strings can be echoed (one holding a lone surrogate cannot).
    topic, ref, join_ref = (value if isinstance(value, str) and value.isprintable() else None for value in fields)
    if topic is None and parsed is None:
        return FrameError("frame is not JSON", close_code=CLOSE_INVALID_PAYLOAD)
    return FrameError(str(error), topic=topic, ref=ref, join_ref=join_ref)


def _lenient(data: str | bytes) -> Any:
    """The frame parsed without this server's checks, only to address an error reply; None if not JSON."""
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        return None


class V1Serializer(Serializer):
    vsn = "1.0.0"

    def decode(self, data: str | bytes) -> ClientFrame:
        if isinstance(data, bytes):
            raise FrameError("binary frames are not part of the V1 JSON protocol", close_code=CLOSE_UNSUPPORTED_DATA)
        try:
            parsed = _parse(data)
        except JsonError as error:
            raise _refused(error, data) from None
        if isinstance(parsed, list):
            raise FrameError(
                "array frames are the V2 serializer; connect with vsn=2.0.0 to send them",
                close_code=CLOSE_UNSUPPORTED_DATA,
            )
        if not isinstance(parsed, dict):
            raise FrameError("frame is not a JSON object", close_code=CLOSE_INVALID_PAYLOAD)
        get = parsed.get
        return _checked(get("topic"), get("event"), get("payload", {}), get("ref"), get("join_ref"))

    def message(
        self, topic: str, event: str, payload: Any, *, ref: str | None = None, join_ref: str | None = None
    ) -> str:
        # The Python client validates every frame and drops those without a ``ref`` key; V1 has no join_ref.
        return dumps({"topic": topic, "event": event, "payload": payload, "ref": ref})

    def change(self, topic: str, ids: list[int], data_json: str) -> str:
        return (
            '{"topic":'
            + dumps(topic)
            + ',"event":"postgres_changes","ref":null,"payload":{"ids":'
            + dumps(ids)
            + ',"data":'
            + data_json
            + "}}"
        )

    def broadcast(self, topic: str, message: Broadcast) -> Frame | None:
        if message.payload is not None:
            return self.message(topic, "broadcast", message.payload)
        user = message.user
        assert user is not None
        if not user.is_json:
            return None
        return (
            '{"topic":' + dumps(topic) + ',"event":"broadcast","ref":null,"payload":' + _user_payload_object(user) + "}"
        )


def _user_payload_object(user: UserBroadcast) -> str:
    """``{"type":"broadcast","event":...,"payload":...}`` around a JSON user payload, without re-encoding it."""
    return '{"type":"broadcast","event":' + dumps(user.event) + ',"payload":' + user.payload.decode() + "}"


class V2Serializer(Serializer):
    vsn = "2.0.0"

    def decode(self, data: str | bytes) -> ClientFrame:
        if isinstance(data, bytes):
            return self._decode_binary(data)
        try:
            parsed = _parse(data)
        except JsonError as error:
            raise _refused(error, data) from None
        if isinstance(parsed, dict):
            raise FrameError(
                "object frames are the V1 serializer; V2 frames are [join_ref, ref, topic, event, payload]",
                close_code=CLOSE_UNSUPPORTED_DATA,
            )
        if not isinstance(parsed, list) or len(parsed) < 5:
            raise FrameError(
                "frame is not a [join_ref, ref, topic, event, payload] array", close_code=CLOSE_INVALID_PAYLOAD
            )
        join_ref, ref, topic, event, payload = parsed[:5]
        return _checked(topic, event, payload, ref, join_ref)

    def _decode_binary(self, data: bytes) -> ClientFrame:
        kind = data[0] if data else None
        if kind == USER_BROADCAST_PUSH:
            return self._decode_user_broadcast_push(data)
        if kind == BINARY_PUSH and len(data) >= 5:
            sizes = data[1:5]
            join_ref, ref, topic = (_text(part) for part in _fields(data, 5, sizes[:3]))
            raise FrameError(
                "binary payloads are only accepted in broadcasts (user broadcast push)",
                topic=topic,
                ref=ref,
                join_ref=join_ref,
            )
        raise FrameError(f"unknown binary frame kind {kind}", close_code=CLOSE_UNSUPPORTED_DATA)

    def _decode_user_broadcast_push(self, data: bytes) -> ClientFrame:
        header = 7
        if len(data) < header:
            raise FrameError("user broadcast push is shorter than its header", close_code=CLOSE_INVALID_PAYLOAD)
        sizes = data[1:6]
        encoding = data[6]
        start = header + sum(sizes)
        if len(data) < start:
            raise FrameError("user broadcast push is shorter than its header says", close_code=CLOSE_INVALID_PAYLOAD)
        raw_join_ref, raw_ref, raw_topic, raw_event, raw_metadata = _fields(data, header, sizes)
        join_ref, ref, topic, event = (_text(part) for part in (raw_join_ref, raw_ref, raw_topic, raw_event))
        if topic is None:
            raise FrameError("user broadcast push has no UTF-8 topic", close_code=CLOSE_INVALID_PAYLOAD)
        if event is None or encoding not in (ENCODING_BINARY, ENCODING_JSON):
            reason = "user broadcast push has an unknown payload encoding" if event else "event is not UTF-8"
            raise FrameError(reason, topic=topic, ref=ref, join_ref=join_ref)
        body = data[start:]
        payload: dict[str, Any] = {"type": "broadcast", "event": event}
        try:
            if raw_metadata:
                # Realtime reads the metadata and, for now, does nothing with it; it must still be JSON.
                loads(raw_metadata)
            if encoding == ENCODING_JSON:
                payload["payload"] = loads(body)
        except JsonError as error:
            raise FrameError(str(error), topic=topic, ref=ref, join_ref=join_ref) from None
        user = UserBroadcast(event=event, payload=body, is_json=encoding == ENCODING_JSON)
        return ClientFrame(topic, "broadcast", payload, ref, join_ref, user)

    def message(
        self, topic: str, event: str, payload: Any, *, ref: str | None = None, join_ref: str | None = None
    ) -> str:
        return dumps([join_ref, ref, topic, event, payload])

    def change(self, topic: str, ids: list[int], data_json: str) -> str:
        return "[null,null," + dumps(topic) + ',"postgres_changes",{"ids":' + dumps(ids) + ',"data":' + data_json + "}]"

    def broadcast(self, topic: str, message: Broadcast) -> Frame | None:
        if message.payload is not None:
            return self.message(topic, "broadcast", message.payload)
        user = message.user
        assert user is not None
        topic_bytes, event_bytes = topic.encode(), user.event.encode()
        if len(topic_bytes) > MAX_BINARY_FIELD or len(event_bytes) > MAX_BINARY_FIELD:
            # Too long for the binary layout's one-byte sizes: as text, when the payload allows it.
            if not user.is_json:
                return None
            return "[null,null," + dumps(topic) + ',"broadcast",' + _user_payload_object(user) + "]"
        encoding = ENCODING_JSON if user.is_json else ENCODING_BINARY
        header = bytes((USER_BROADCAST, len(topic_bytes), len(event_bytes), 0, encoding))
        return header + topic_bytes + event_bytes + user.payload


def _fields(data: bytes, offset: int, sizes: bytes) -> list[bytes]:
    parts = []
    for size in sizes:
        parts.append(data[offset : offset + size])
        offset += size
    return parts


def _text(raw: bytes) -> str | None:
    """A header string: UTF-8 and printable, else None; empty means absent (the JS client sends '' for null)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return text if text and text.isprintable() else None


SERIALIZERS: dict[str, Serializer] = {serializer.vsn: serializer for serializer in (V1Serializer(), V2Serializer())}
"""By ``vsn``; a socket asking for any other version is refused, as Phoenix refuses it."""
