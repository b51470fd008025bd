"""A loopback TCP proxy that can silently black-hole (or reset) the connections passing through it, and
hold every answer back until it is told to let them through (``hold``/``release``).

A black-holed connection stays open on both sides (no FIN, no RST): whatever either side sends is read
and thrown away, as by a NAT or a middlebox that lost its state. New connections are forwarded as usual,
so a client that gives up on the dead socket and opens another gets through.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

WEBSOCKET_PATH = b"GET /realtime/"


@dataclass(eq=False)
class _Connection:
    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter
    websocket: bool = False
    holed: bool = False
    pumps: list[asyncio.Task[None]] = field(default_factory=list)

    def abort(self) -> None:
        for writer in (self.client, self.upstream):
            transport = writer.transport
            if not transport.is_closing():
                transport.abort()


class BlackHoleProxy:
    """Forwards 127.0.0.1:<port> to ``host:port``; ``black_hole()`` silences the open Realtime sockets
    (or every open connection).

    Args:
        host, port: Where to forward to (the gateway).
    """

    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self._server: asyncio.Server | None = None
        self._connections: set[_Connection] = set()
        self.websockets_opened = 0
        self.port = 0
        self._let_through = asyncio.Event()
        self._let_through.set()
        self.held = 0  # answers (chunks from the server) waiting for ``release``

    async def start(self) -> int:
        """Listen on a free loopback port; returns it."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for connection in list(self._connections):
            connection.abort()
            for pump in connection.pumps:
                pump.cancel()
        if self._server is not None:
            await self._server.wait_closed()

    def hold(self) -> None:
        """From now on, keep what the server sends until ``release`` (requests still go out)."""
        self._let_through.clear()

    def release(self) -> None:
        self._let_through.set()

    def black_hole(self, *, rest_too: bool = False) -> int:
        """Stop forwarding on every open Realtime socket, in both directions, without closing it; with
        ``rest_too``, on every open connection (the REST keep-alives as well), as when the whole path to
        the server dies. Returns how many were silenced."""
        holed = 0
        for connection in self._connections:
            if (connection.websocket or rest_too) and not connection.holed:
                connection.holed = True
                holed += 1
        return holed

    def cut(self) -> int:
        """Reset every open Realtime socket (RST both ways), as a gateway that was killed. Returns how many."""
        cut = 0
        for connection in list(self._connections):
            if connection.websocket and not connection.holed:
                connection.abort()
                cut += 1
        return cut

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.transport.abort()
            return
        connection = _Connection(client=writer, upstream=upstream_writer)
        self._connections.add(connection)
        connection.pumps = [
            asyncio.create_task(self._pump(reader, upstream_writer, connection, first=True)),
            asyncio.create_task(self._pump(upstream_reader, writer, connection, first=False)),
        ]
        try:
            await asyncio.gather(*connection.pumps, return_exceptions=True)
        finally:
            self._connections.discard(connection)
            connection.abort()

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, connection: _Connection, *, first: bool
    ) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            data = await reader.read(65536)
            if first and data.startswith(WEBSOCKET_PATH):
                connection.websocket = True
                self.websockets_opened += 1
            while data:
                if not first and not self._let_through.is_set():
                    self.held += 1
                    await self._let_through.wait()
                    self.held -= 1
                if not connection.holed:  # a black-holed connection reads and forgets
                    writer.write(data)
                    await writer.drain()
                data = await reader.read(65536)
        if not connection.holed:
            connection.abort()  # one side closed: so does the other (a black hole tells nobody)
