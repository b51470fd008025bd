"""``FrameTap``: the socket's broadcasts taken before the realtime library parses them, read in slices.

The official client (the ``realtime`` package) reads its websocket in one task: ``async for frame in
connection``, and for each frame a pydantic validation (``ServerMessageAdapter.validate_json``, about
0.2 ms a broadcast here), two ``repr`` of the parsed model for debug logs that are built even when
debug logging is off (0.03 ms each), then the channel callbacks. websockets hands out frames already
buffered without suspending, so a burst of 30 buffered pushes was all parsed and dispatched before
anything else on the event loop ran (a stall of 10-170 ms depending on the machine's load).

``FrameTap`` wraps the library's connection object (everything but iteration is passed through) and is
installed by ``TappedRealtimeClient`` just before the library starts its reading task. Iterating it:

- a text frame that is a broadcast (``"event": "broadcast"``) is parsed once with ``json.loads`` (about
  6x cheaper than the library's path) and offered to ``take``; taken frames never reach the library;
- every other frame (replies, presence, system and close messages, broadcasts ``take`` leaves) is handed
  to the library unchanged, in order, and parsed by it as before;
- after each ``slice_seconds`` of receiving (our part and the library's handling of what it was handed)
  the loop is given back before the next frame is read.

Joins, leaves, heartbeats, presence, ``set_auth`` and reconnect stay the library's: only the reading of
broadcasts is ours. Installed through the library's private ``_ws_connection`` and ``_on_connect``; if a
release changes them, ``TappedRealtimeClient`` falls back to the library's own reading (correct, only
slower), which ``tapped`` counting zero shows.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from realtime import AsyncRealtimeClient
from websockets.exceptions import ConnectionClosedOK

log = logging.getLogger(__name__)

RECEIVE_SLICE = 0.004
"""Seconds of receiving between two yields to the event loop (a quarter of a 60 Hz frame)."""
TOPIC_PREFIX = "realtime:"

BroadcastTaker = Callable[[str, Mapping[str, Any]], bool]
"""Offered each broadcast as ``(topic without the client's prefix, body)``, where the body is what the
library's broadcast callbacks get (``{"event", "payload", ...}``); True when it took the broadcast (the
library then never sees it), False to leave it to the library."""


def broadcast_in(frame: str | bytes) -> tuple[str, dict[str, Any]] | None:
    """The topic (without ``realtime:``) and body of a broadcast frame; None for any other frame.

    Only frames the library itself would accept as a broadcast qualify (an object with ``event``
    ``broadcast``, a string topic, no ``ref``, a body with a string ``event`` and an object ``payload``):
    whatever is odd goes to the library, which reports it.
    """
    if not isinstance(frame, str):
        return None
    try:
        data = json.loads(frame)
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("event") != "broadcast" or data.get("ref") is not None:
        return None
    topic, body = data.get("topic"), data.get("payload")
    if not isinstance(topic, str) or not topic.startswith(TOPIC_PREFIX) or not isinstance(body, dict):
        return None
    if not isinstance(body.get("event"), str) or not isinstance(body.get("payload"), dict):
        return None
    return topic.removeprefix(TOPIC_PREFIX), body


class FrameTap:
    """The library's websocket connection, iterated our way (see the module's docstring).

    Args:
        connection: The websockets ``ClientConnection`` the library opened.
        take: Offered each broadcast (``BroadcastTaker``); an exception from it is logged and the broadcast
            counts as taken (it must never end the library's reading task).
        slice_seconds: Receiving time between two yields to the event loop.
    """

    def __init__(self, connection: Any, take: BroadcastTaker, slice_seconds: float = RECEIVE_SLICE) -> None:
        self._connection = connection
        self._take = take
        self._slice = slice_seconds
        self.tapped = 0  # broadcasts taken here (diagnostics, tests, the benchmark)
        self.passed = 0  # frames handed to the library
        self.yields = 0  # times the loop was given back inside a burst

    def __getattr__(self, name: str) -> Any:
        # send, close, close_code, protocol, transport, ...: the library and our teardown use the real one.
        return getattr(self._connection, name)

    @property
    def connection(self) -> Any:
        """The wrapped websocket connection."""
        return self._connection

    def __aiter__(self) -> AsyncIterator[str | bytes]:
        return self._frames()

    async def _frames(self) -> AsyncIterator[str | bytes]:
        # As the connection's own iteration: a normal close ends it, any other close raises.
        started = time.perf_counter()
        while True:
            if time.perf_counter() - started >= self._slice:
                self.yields += 1
                await asyncio.sleep(0)
                started = time.perf_counter()
            try:
                frame = await self._connection.recv()
            except ConnectionClosedOK:
                return
            if self._took(frame):
                continue
            self.passed += 1
            yield frame

    def _took(self, frame: str | bytes) -> bool:
        found = broadcast_in(frame)
        if found is None:
            return False
        topic, body = found
        try:
            taken = self._take(topic, body)
        except Exception:  # never into the library's reading task: it would end and leave the socket deaf
            log.exception("A realtime broadcast could not be taken")
            taken = True
        if taken:
            self.tapped += 1
        return taken


class TappedRealtimeClient(AsyncRealtimeClient):
    """The official client, with its broadcasts read through a ``FrameTap`` (``tap`` names who takes them).

    Until ``tap`` is called every frame goes to the library, as with the plain client.
    """

    def __init__(self, url: str, token: str | None = None, *, auto_reconnect: bool = True) -> None:
        super().__init__(url, token=token, auto_reconnect=auto_reconnect)
        self._take: BroadcastTaker = lambda _topic, _body: False
        self.frame_tap: FrameTap | None = None

    def tap(self, take: BroadcastTaker) -> None:
        """Offer every broadcast to ``take`` first, from the next connect on."""
        self._take = take

    async def _on_connect(self) -> None:
        # The library set its new connection and is about to start reading it: wrap it first.
        connection = getattr(self, "_ws_connection", None)
        if connection is not None and not isinstance(connection, FrameTap):
            self.frame_tap = FrameTap(connection, lambda topic, body: self._take(topic, body))
            self._ws_connection = self.frame_tap  # type: ignore[assignment]  # a stand-in for the connection
        await super()._on_connect()
