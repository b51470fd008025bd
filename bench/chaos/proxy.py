"""A loopback TCP proxy that can black-hole its connections: it stops forwarding without closing them.

This is what a dead NAT entry, a suspended VPN or a Wi-Fi switch does to a long-lived connection: neither
end hears anything, no FIN, no RST; writes still succeed (into the kernel's buffers) and reads just wait.
``blackhole()`` does that to every connection open at that moment, for good; connections opened later are
forwarded normally (the network works again for whoever reconnects). It runs on its own thread with its own
event loop, so the clients' work is never delayed by it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from dataclasses import dataclass, field


@dataclass(eq=False)
class _Connection:
    writers: list[asyncio.StreamWriter] = field(default_factory=list)
    frozen: bool = False


class BlackholeProxy:
    """Forwards 127.0.0.1:``port`` to ``target_host:target_port``."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._open: set[_Connection] = set()
        self.port = 0
        self.connections = 0
        self.blackholed = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> int:
        self._thread = threading.Thread(target=self._main, name="blackhole-proxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(10) or self._error is not None:
            raise RuntimeError("the proxy did not start") from self._error
        return self.port

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(10)

    def blackhole(self) -> int:
        """Stop forwarding on every open connection, without closing any; returns how many."""
        if self._loop is None:
            raise RuntimeError("the proxy is not running")
        done = threading.Event()
        count = 0

        def freeze() -> None:
            nonlocal count
            for connection in self._open:
                if not connection.frozen:
                    connection.frozen = True
                    count += 1
            done.set()

        self._loop.call_soon_threadsafe(freeze)
        done.wait(10)
        self.blackholed += count
        return count

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
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            server.close()
            for task in list(tasks):
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await server.wait_closed()

    async def _connection(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self._target)
        except OSError:
            client_writer.close()
            return
        connection = _Connection([client_writer, upstream_writer])
        self._open.add(connection)
        try:
            await asyncio.gather(
                self._pipe(connection, client_reader, upstream_writer),
                self._pipe(connection, upstream_reader, client_writer),
            )
            if connection.frozen:
                await asyncio.Event().wait()  # a black-holed connection is never closed by us
        finally:
            # Reached by a black-holed connection only when the proxy stops: then it is torn down at once.
            self._open.discard(connection)
            for writer in connection.writers:
                if connection.frozen:
                    writer.transport.abort()
                else:
                    writer.close()
                    with contextlib.suppress(Exception):
                        await writer.wait_closed()

    @staticmethod
    async def _pipe(connection: _Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Copy until EOF, which is passed on (FIN); a reset is passed on as a reset (RST), as TCP would.

        Once frozen: stop reading (and drop what was read), pass nothing on, neither data nor EOF nor reset.
        """
        try:
            while data := await reader.read(65536):
                if connection.frozen:  # set by blackhole() while this read was waiting
                    return
                writer.write(data)
                await writer.drain()
        except OSError:
            if not connection.frozen:
                for end in connection.writers:
                    end.transport.abort()
            return
        if connection.frozen:
            return
        if writer.can_write_eof() and not writer.is_closing():
            with contextlib.suppress(OSError):
                writer.write_eof()
