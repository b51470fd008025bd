"""FrameTap: broadcasts taken off the socket before the library parses them, the rest passed on in order,
the loop given back between slices."""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Mapping
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosedError, ConnectionClosedOK
from websockets.frames import Close

from desktop_chat.realtime.frames import FrameTap, broadcast_in


def broadcast(topic: str, n: int, *, event: str = "message") -> str:
    body = {"type": "broadcast", "event": event, "payload": {"n": n}}
    return json.dumps({"topic": f"realtime:{topic}", "event": "broadcast", "payload": body, "ref": None})


def reply(ref: str) -> str:
    return json.dumps({"topic": "realtime:chat:a", "event": "phx_reply", "payload": {"status": "ok"}, "ref": ref})


class FakeConnection:
    """Frames already buffered, as websockets hands them out: ``recv`` does not suspend while it has one."""

    def __init__(self, frames: list[str | bytes], end: BaseException | None = None) -> None:
        self.frames = deque(frames)
        self.end = end or ConnectionClosedOK(Close(1000, ""), Close(1000, ""), rcvd_then_sent=True)
        self.close_code = 1000

    async def recv(self) -> str | bytes:
        if not self.frames:
            raise self.end
        return self.frames.popleft()


class Taker:
    def __init__(self, topics: set[str]) -> None:
        self.topics = topics
        self.taken: list[tuple[str, int]] = []

    def __call__(self, topic: str, body: Mapping[str, Any]) -> bool:
        if topic not in self.topics:
            return False
        self.taken.append((topic, body["payload"]["n"]))
        return True


async def read_all(tap: FrameTap) -> list[str | bytes]:
    return [frame async for frame in tap]


async def test_broadcasts_are_taken_in_order_and_the_rest_passed_on_in_order() -> None:
    frames: list[str | bytes] = []
    for n in range(50):
        frames.append(broadcast("chat:a", n))
        if n % 10 == 0:
            frames.append(reply(str(n)))
        if n % 7 == 0:
            frames.append(broadcast("chat:a:typing", n, event="typing"))  # a topic the taker leaves
    frames.append(b"\x00binary")
    taker = Taker({"chat:a"})
    tap = FrameTap(FakeConnection(list(frames)), taker)
    passed = await read_all(tap)
    assert taker.taken == [("chat:a", n) for n in range(50)]  # each once, none lost, in order
    assert passed == [frame for frame in frames if broadcast_in(frame) is None or "typing" in str(frame)]
    assert tap.tapped == 50
    assert tap.passed == len(passed)


async def test_a_burst_gives_the_loop_back_between_slices() -> None:
    order: list[str] = []

    def take(topic: str, body: Mapping[str, Any]) -> bool:
        order.append(f"push {body['payload']['n']}")
        return True

    async def other() -> None:
        order.append("other task")

    tap = FrameTap(FakeConnection([broadcast("chat:a", n) for n in range(5)]), take, slice_seconds=0.0)
    asyncio.get_running_loop().create_task(other())
    await read_all(tap)
    assert [item for item in order if item.startswith("push")] == [f"push {n}" for n in range(5)]
    assert order.index("other task") < order.index("push 4")  # the burst did not hold the loop to the end
    assert tap.yields >= 4


async def test_without_a_yield_due_a_burst_is_read_at_once() -> None:
    order: list[str] = []
    tap = FrameTap(
        FakeConnection([broadcast("chat:a", n) for n in range(5)]),
        lambda _t, body: order.append(str(body["payload"]["n"])) is None,
        slice_seconds=60.0,
    )

    async def other() -> None:
        order.append("other task")

    asyncio.get_running_loop().create_task(other())
    await read_all(tap)
    assert order[:5] == ["0", "1", "2", "3", "4"]
    assert tap.yields == 0


async def test_an_abnormal_close_raises_as_the_connection_would() -> None:
    error = ConnectionClosedError(Close(1011, "boom"), None)
    tap = FrameTap(FakeConnection([broadcast("chat:a", 1)], end=error), Taker({"chat:a"}))
    with pytest.raises(ConnectionClosedError):
        await read_all(tap)


async def test_a_failing_taker_is_logged_and_reading_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[int] = []

    def take(topic: str, body: Mapping[str, Any]) -> bool:
        if body["payload"]["n"] == 1:
            raise ValueError("bad push")
        seen.append(body["payload"]["n"])
        return True

    tap = FrameTap(FakeConnection([broadcast("chat:a", n) for n in range(3)]), take)
    assert await read_all(tap) == []  # the failed one is not handed to the library a second time
    assert seen == [0, 2]
    assert "could not be taken" in caplog.text


async def test_everything_but_iteration_is_the_connection() -> None:
    connection = FakeConnection([])
    tap = FrameTap(connection, Taker(set()))
    assert tap.close_code == 1000
    assert tap.connection is connection
    assert tap.recv == connection.recv


@pytest.mark.parametrize(
    "frame",
    [
        b'{"topic": "realtime:chat:a", "event": "broadcast"}',  # binary
        "not json",
        "[1, 2]",
        json.dumps({"topic": "realtime:chat:a", "event": "presence_diff", "payload": {}, "ref": None}),
        json.dumps(
            {"topic": "realtime:chat:a", "event": "broadcast", "payload": {"event": "m", "payload": {}}, "ref": "7"}
        ),
        json.dumps({"topic": "chat:a", "event": "broadcast", "payload": {"event": "m", "payload": {}}, "ref": None}),
        json.dumps({"topic": "realtime:chat:a", "event": "broadcast", "payload": {"event": 1, "payload": {}}}),
        json.dumps({"topic": "realtime:chat:a", "event": "broadcast", "payload": {"event": "m", "payload": []}}),
        json.dumps({"topic": 5, "event": "broadcast", "payload": {"event": "m", "payload": {}}}),
    ],
)
def test_only_frames_the_library_would_take_as_a_broadcast_are_tapped(frame: str | bytes) -> None:
    assert broadcast_in(frame) is None


def test_a_broadcast_frame_gives_its_topic_and_body() -> None:
    found = broadcast_in(broadcast("user:u", 3, event="activity"))
    assert found == ("user:u", {"type": "broadcast", "event": "activity", "payload": {"n": 3}})
