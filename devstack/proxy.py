"""A loopback TCP proxy for tests and benchmarks: it can delay, black-hole or cut what passes through it.

One proxy serves the three faults a network does to a client's connections:

- ``delay``: each direction's data is forwarded ``delay`` seconds after it was read (latency only: chunks
  keep their order and spacing, a burst is not slowed down; EOF travels the same way).
- ``blackhole()``: the connections open at that moment stop forwarding, for good, without being closed:
  no FIN, no RST, in neither direction; writes still succeed (into the kernel's buffers) and reads just
  wait. This is what a dead NAT entry, a suspended VPN or a Wi-Fi switch does to a long-lived connection.
- ``cut()``: the connections open at that moment are closed at once on both sides (aborted, nothing
  flushed: the peers see an EOF, or a reset where data was still unread), as by a peer that was killed.

Connections opened later are forwarded normally (the network works again for whoever reconnects). Both
faults can be limited to the Realtime websockets (``websockets_only``), leaving REST calls alone.
``hold()`` keeps every answer from the server back (requests still go out) until ``release()``: a server
that has not answered yet, at a moment the test chooses. Apart
from faults, EOF is passed on as EOF (a half-close), and a reset on one side closes both at once.

The proxy runs its own event loop on its own thread, so its work never delays (nor is counted in) the
clients' loop, and the calls below may be made from any thread or loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import TypeVar

WEBSOCKET_REQUEST = b"GET /realtime/"
"""How a Realtime websocket's first bytes (its HTTP upgrade request) begin."""
CALL_TIMEOUT = 10.0
"""How long a call waits for the proxy's thread (to start, to stop, to apply a fault)."""

_T = TypeVar("_T")


@dataclass(eq=False)
class _Connection:
    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter
    websocket: bool = False
    frozen: bool = False
    """Black-holed: nothing more is forwarded, and the proxy never closes it (until it stops)."""

    @property
    def writers(self) -> tuple[asyncio.StreamWriter, asyncio.StreamWriter]:
        return self.client, self.upstream

    def abort(self) -> None:
        for writer in self.writers:
            if not writer.transport.is_closing():
                writer.transport.abort()


@dataclass
class _Counters:
    connections: int = 0
    websockets: int = 0
    blackholed: int = 0
    cut: int = 0
    open: set[_Connection] = field(default_factory=set)


class LoopbackProxy:
    """Forwards 127.0.0.1:``port`` (a free port, picked at ``start``) to ``target_host:target_port``.

    Args:
        target_host, target_port: Where to forward to (a gateway).
        delay: Seconds each direction's data is held back (0: forwarded at once).
    """

    def __init__(self, target_host: str, target_port: int, *, delay: float = 0.0) -> None:
        if delay < 0:
            raise ValueError(f"a proxy's delay cannot be negative: {delay}")
        self._target = (target_host, target_port)
        self._delay = delay
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._state = _Counters()
        self._let_through: asyncio.Event | None = None
        self.held = 0
        """Answers (chunks from the server) waiting for ``release`` right now."""
        self.port = 0

    @property
    def url(self) -> str:
        """The proxy's address as a Supabase URL."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def connections(self) -> int:
        """Connections accepted so far."""
        return self._state.connections

    @property
    def websockets_opened(self) -> int:
        """Of those, Realtime websockets."""
        return self._state.websockets

    @property
    def blackholed(self) -> int:
        """Connections black-holed so far."""
        return self._state.blackholed

    def start(self) -> int:
        """Listen on a free loopback port; returns it."""
        if self._thread is not None:
            raise RuntimeError("the proxy was started already")
        self._thread = threading.Thread(target=self._main, name="loopback-proxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(CALL_TIMEOUT) or self._error is not None:
            raise RuntimeError("the proxy did not start") from self._error
        return self.port

    def stop(self) -> None:
        """Stop listening and tear every connection down (black-holed ones included, aborted)."""
        if self._loop is not None and self._stop is not None:
            with contextlib.suppress(RuntimeError):  # the loop has ended already
                self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(CALL_TIMEOUT)

    def __enter__(self) -> LoopbackProxy:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    def blackhole(self, *, websockets_only: bool = False) -> int:
        """Stop forwarding on every open connection (or Realtime websocket), without closing any.

        Returns how many were black-holed now (those black-holed before are not counted again).
        """

        def freeze() -> int:
            count = 0
            for connection in self._state.open:
                if not connection.frozen and (connection.websocket or not websockets_only):
                    connection.frozen = True
                    count += 1
            self._state.blackholed += count
            return count

        return self._on_loop(freeze)

    def cut(self, *, websockets_only: bool = False) -> int:
        """Close every open connection (or Realtime websocket) that is not black-holed at once, both
        sides; returns how many."""

        def reset() -> int:
            count = 0
            for connection in list(self._state.open):
                if not connection.frozen and (connection.websocket or not websockets_only):
                    connection.abort()
                    count += 1
            self._state.cut += count
            return count

        return self._on_loop(reset)

    def hold(self) -> None:
        """From now on, keep what the server sends until ``release`` (requests still go out)."""

        def close_gate() -> None:
            assert self._let_through is not None
            self._let_through.clear()

        self._on_loop(close_gate)

    def release(self) -> None:
        """Let what was held, and what follows, through."""

        def open_gate() -> None:
            assert self._let_through is not None
            self._let_through.set()

        self._on_loop(open_gate)

    def _on_loop(self, action: Callable[[], _T]) -> _T:
        """Run ``action`` on the proxy's loop (no connection changes meanwhile) and return its result."""
        loop = self._loop
        if loop is None or self._stop is None or self._stop.is_set():
            raise RuntimeError("the proxy is not running")
        if self._thread is threading.current_thread():
            return action()
        return asyncio.run_coroutine_threadsafe(_call(action), loop).result(CALL_TIMEOUT)

    # --- the proxy's thread --------------------------------------------------------------------------

    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except BaseException as error:  # reported to start(); the thread just ends
            self._error = error
            self._ready.set()
        finally:
            loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        self._let_through = asyncio.Event()
        self._let_through.set()
        tasks: set[asyncio.Task[None]] = set()

        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            tasks.add(task)
            try:
                await self._connection(reader, writer)
            except asyncio.CancelledError:
                pass  # the proxy is stopping; asyncio's stream callback would report a cancelled task as an error
            finally:
                tasks.discard(task)

        server = await asyncio.start_server(accept, "127.0.0.1", 0)
        self.port = int(server.sockets[0].getsockname()[1])
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            server.close()
            for task in list(tasks):
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await server.wait_closed()
            # A transport closes its socket in a callback of the next iteration: run it before the loop
            # closes, or the socket is left open (ResourceWarning).
            await asyncio.sleep(0)

    async def _connection(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self._state.connections += 1
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self._target)
        except BaseException as error:  # refused, or the proxy stopping meanwhile
            client_writer.transport.abort()
            with contextlib.suppress(Exception):
                await client_writer.wait_closed()
            if isinstance(error, OSError):
                return
            raise
        connection = _Connection(client_writer, upstream_writer)
        self._state.open.add(connection)
        try:
            await asyncio.gather(
                self._pipe(connection, client_reader, upstream_writer, from_client=True),
                self._pipe(connection, upstream_reader, client_writer, from_client=False),
            )
            if connection.frozen:
                await asyncio.Event().wait()  # a black-holed connection is never closed by us
        finally:
            # Reached by a black-holed connection only when the proxy stops: then it is torn down at once.
            self._state.open.discard(connection)
            for writer in connection.writers:
                if connection.frozen:
                    writer.transport.abort()
                else:
                    writer.close()
            for writer in connection.writers:
                with contextlib.suppress(Exception):
                    await writer.wait_closed()

    async def _pipe(
        self, connection: _Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, from_client: bool
    ) -> None:
        """Copy until EOF, which is passed on (FIN); a reset closes both sides at once.

        Once frozen: stop reading (and drop what was read), pass nothing on, neither data nor EOF nor reset.
        """
        loop = asyncio.get_running_loop()
        # (when due, data): b"" passes EOF on, None ends the copy without passing anything on.
        queue: asyncio.Queue[tuple[float, bytes | None]] = asyncio.Queue()

        async def read() -> None:
            first = from_client
            try:
                while data := await reader.read(65536):
                    if first:
                        first = False
                        if data.startswith(WEBSOCKET_REQUEST):
                            connection.websocket = True
                            self._state.websockets += 1
                    if connection.frozen:  # set by blackhole() while this read was waiting
                        queue.put_nowait((0.0, None))
                        return
                    queue.put_nowait((loop.time() + self._delay, data))
            except OSError:
                if not connection.frozen:
                    connection.abort()
                queue.put_nowait((0.0, None))
                return
            queue.put_nowait((loop.time() + self._delay, b""))

        reading = asyncio.ensure_future(read())
        try:
            while True:
                due, data = await queue.get()
                if data is None:
                    return
                if (wait := due - loop.time()) > 0:
                    await asyncio.sleep(wait)
                gate = self._let_through
                if not from_client and gate is not None and not gate.is_set():
                    self.held += 1
                    try:
                        await gate.wait()
                    finally:
                        self.held -= 1
                if connection.frozen:
                    return
                if not data:
                    if writer.can_write_eof() and not writer.is_closing():
                        with contextlib.suppress(OSError):
                            writer.write_eof()
                    return
                writer.write(data)
                await writer.drain()
        except OSError:
            if not connection.frozen:
                connection.abort()
        finally:
            reading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reading


async def _call(action: Callable[[], _T]) -> _T:
    return action()
