"""Rows of ``realtime.messages`` read from the WAL, turned into the broadcast frames Realtime sends."""

from __future__ import annotations

import json
from typing import Any

import pytest

from devstack.gateway.realtime.broadcasts import BroadcastRelay, is_broadcast_row
from devstack.gateway.realtime.protocol import Broadcast, UserBroadcast
from devstack.gateway.realtime.wal import parse_change

ROW_ID = "80d2208c-1f45-4723-a0c4-cb7f5c179fe5"
PAYLOAD = {"a": 1, "id": ROW_ID}


def wal_line(table: str = "messages_2026_12_03", action: str = "I", **values: Any) -> str:
    """A wal2json (format 2) line of a realtime.messages row, as the gateway's slot prints it."""
    row = {
        "topic": "chat:x",
        "extension": "broadcast",
        "payload": json.dumps({"a": 1, "id": ROW_ID}),
        "event": "message",
        "private": True,
        "id": ROW_ID,
        "binary_payload": None,
    } | values
    columns = [{"name": name, "type": "text", "typeoid": 25, "value": value} for name, value in row.items()]
    return json.dumps(
        {
            "action": action,
            "timestamp": "2026-12-03 08:47:18.518399+00",
            "schema": "realtime",
            "table": table,
            "columns": columns,
            "identity": [{"name": "id", "type": "uuid", "value": ROW_ID}] if action != "I" else None,
            "pk": [{"name": "id", "type": "uuid", "typeoid": 2950}],
        }
    )


class Hub:
    def __init__(self) -> None:
        self.sent: list[tuple[tuple[bool, str], Any, Any]] = []

    def broadcast(self, key: tuple[bool, str], payload: Any, sender: Any) -> None:
        self.sent.append((key, payload, sender))


def relay(*lines: str) -> list[tuple[tuple[bool, str], Any, Any]]:
    hub = Hub()
    changes = [change for change in (parse_change(line) for line in lines) if change is not None]
    BroadcastRelay(hub).deliver(changes)  # a stand-in for the hub: only broadcast() is used
    return hub.sent


def test_a_row_becomes_realtimes_broadcast_frame_payload() -> None:
    assert relay(wal_line()) == [
        (
            (True, "realtime:chat:x"),
            Broadcast(payload={"event": "message", "payload": PAYLOAD, "type": "broadcast", "meta": {"id": ROW_ID}}),
            None,
        )
    ]


def test_public_rows_go_to_public_channels() -> None:
    ((key, _, _),) = relay(wal_line(private=False))
    assert key == (False, "realtime:chat:x")


@pytest.mark.parametrize(
    "values",
    [
        {"topic": None},
        {"event": None},
        {"id": None},
        {"private": None},
        {"payload": None},
        {"payload": "not json"},
        {"binary_payload": "not hex", "payload": None},
    ],
)
def test_rows_realtime_would_not_send_are_skipped(values: dict[str, Any]) -> None:
    assert relay(wal_line(**values), wal_line(event="after")) == relay(wal_line(event="after"))


def test_a_binary_row_is_a_binary_user_broadcast() -> None:
    """Only V2 sockets can be given it (see the serializers); wal2json prints bytea as hex."""
    for printed in ("\\x00ff02", "00ff02"):
        ((key, broadcast, _),) = relay(wal_line(binary_payload=printed, payload=None))
        assert key == (True, "realtime:chat:x")
        assert broadcast == Broadcast(user=UserBroadcast(event="message", payload=b"\x00\xff\x02", is_json=False))


def test_only_inserts_of_realtime_messages_count() -> None:
    assert relay(wal_line(action="U"), wal_line(action="D")) == []
    for table, expected in (("messages", True), ("messages_2026_01_31", True), ("messages_x", False), ("other", False)):
        change = parse_change(wal_line(table=table))
        assert change is not None and is_broadcast_row(change) is expected, table
