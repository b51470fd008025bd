"""devstack.proxy: forwarding, delay, black hole and cut, through real loopback sockets.

The upstream is a small server in the test's loop that records what it receives and answers as told;
the proxy runs on its own thread. Absence is shown by the end of the connection: what the upstream
received before the proxy closed it is all that ever passed. A fault closes at once (the socket is
aborted, not flushed): the peer sees a reset or an EOF, depending on what its kernel still held.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from devstack.proxy import LoopbackProxy

WEBSOCKET_REQUEST = b"GET /realtime/v1/websocket?apikey=k HTTP/1.1\r\n"
REST_REQUEST = b"GET /rest/v1/chat_sessions HTTP/1.1\r\n"


@dataclass
class Upstream:
    """Accepts connections; each one's received bytes, and whether it ended with EOF or a reset."""

    port: int = 0
    received: list[bytearray] = field(default_factory=list)
    ended: list[asyncio.Future[str]] = field(default_factory=list)
    writers: list[asyncio.StreamWriter] = field(default_factory=list)
    accepted: asyncio.Queue[int] = field(default_factory=asyncio.Queue)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def received_exactly(self, index: int, data: bytes) -> None:
        """Wait until connection ``index`` has received ``data`` (and nothing else)."""
        async with asyncio.timeout(10):
            while self.received[index] != data:
                self.arrived.clear()
                await self.arrived.wait()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        index = len(self.received)
        self.received.append(bytearray())
        ended: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.ended.append(ended)
        self.writers.append(writer)
        self.accepted.put_nowait(index)
        try:
            while data := await reader.read(65536):
                self.received[index] += data
                self.arrived.set()
            ended.set_result("eof")
        except OSError:
            ended.set_result("reset")


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    target = Upstream()
    server = await asyncio.start_server(target.serve, "127.0.0.1", 0)
    target.port = int(server.sockets[0].getsockname()[1])
    try:
        yield target
    finally:
        for writer in target.writers:
            writer.transport.abort()
        await close(*target.writers)
        server.close()
        await server.wait_closed()


async def connect(proxy: LoopbackProxy) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", proxy.port)


async def read_until_closed(reader: asyncio.StreamReader) -> bytes:
    """Everything the client still receives until its connection ends (EOF or reset)."""
    data = bytearray()
    with contextlib.suppress(OSError):
        while chunk := await asyncio.wait_for(reader.read(65536), 10):
            data += chunk
    return bytes(data)


async def close(*writers: asyncio.StreamWriter) -> None:
    """Close and wait until the sockets are closed (before the test's loop ends)."""
    for writer in writers:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def test_it_forwards_both_ways_and_passes_a_half_close_on(upstream: Upstream) -> None:
    with LoopbackProxy("127.0.0.1", upstream.port) as proxy:
        reader, writer = await connect(proxy)
        writer.write(b"hello")
        index = await asyncio.wait_for(upstream.accepted.get(), 10)
        writer.write_eof()  # the client is done sending; the upstream answers, then closes
        assert await asyncio.wait_for(upstream.ended[index], 10) == "eof"
        assert upstream.received[index] == b"hello"
        upstream.writers[index].write(b"world")
        upstream.writers[index].close()
        assert await read_until_closed(reader) == b"world"
        await close(writer)
        assert proxy.connections == 1 and proxy.websockets_opened == 0


async def test_a_delay_holds_each_direction_back(upstream: Upstream) -> None:
    delay = 0.2
    loop = asyncio.get_running_loop()
    with LoopbackProxy("127.0.0.1", upstream.port, delay=delay) as proxy:
        reader, writer = await connect(proxy)
        sent = loop.time()
        writer.write(b"ping")
        index = await asyncio.wait_for(upstream.accepted.get(), 10)
        await upstream.received_exactly(index, b"ping")
        there = loop.time()
        upstream.writers[index].write(b"pong")
        assert await asyncio.wait_for(reader.readexactly(4), 10) == b"pong"
        back = loop.time()
        # Lower bounds only: the proxy never forwards early, however loaded the machine is.
        assert there - sent >= delay and back - there >= delay
        await close(writer)


async def test_hold_keeps_the_answers_back_until_release_while_requests_go_out(upstream: Upstream) -> None:
    with LoopbackProxy("127.0.0.1", upstream.port) as proxy:
        reader, writer = await connect(proxy)
        proxy.hold()
        writer.write(b"request")
        index = await asyncio.wait_for(upstream.accepted.get(), 10)
        await upstream.received_exactly(index, b"request")  # the request is not held
        upstream.writers[index].write(b"answer")
        async with asyncio.timeout(10):
            while proxy.held == 0:  # noqa: ASYNC110 - the proxy's thread counts the held answer
                await asyncio.sleep(0.01)
        assert not await _arrives(reader)
        proxy.release()
        assert await asyncio.wait_for(reader.readexactly(6), 10) == b"answer"
        assert proxy.held == 0
        await close(writer)


async def _arrives(reader: asyncio.StreamReader) -> bool:
    """Whether anything arrives within a moment (used only where nothing must)."""
    try:
        await asyncio.wait_for(reader.read(1), 0.3)
    except TimeoutError:
        return False
    return True


async def test_a_black_hole_passes_nothing_on_and_closes_nothing(upstream: Upstream) -> None:
    proxy = LoopbackProxy("127.0.0.1", upstream.port)
    proxy.start()
    try:
        reader, writer = await connect(proxy)
        writer.write(b"before")
        index = await asyncio.wait_for(upstream.accepted.get(), 10)
        await upstream.received_exactly(index, b"before")
        assert proxy.blackhole() == 1
        assert proxy.blackhole() == 0  # counted once
        writer.write(b"lost")
        writer.write_eof()  # not passed on either
        upstream.writers[index].write(b"lost too")
        upstream.writers[index].write_eof()
        # A connection opened afterwards goes through.
        later_reader, later_writer = await connect(proxy)
        later_writer.write(b"later")
        later = await asyncio.wait_for(upstream.accepted.get(), 10)
        upstream.writers[later].write(b"through")
        assert await asyncio.wait_for(later_reader.readexactly(7), 10) == b"through"
        await close(later_writer)
        assert not upstream.ended[index].done()
    finally:
        await asyncio.to_thread(proxy.stop)  # a black-holed connection is torn down only now
    await asyncio.wait_for(upstream.ended[index], 10)
    assert upstream.received[index] == b"before"
    assert await read_until_closed(reader) == b""
    assert proxy.blackholed == 1
    await close(writer)


async def test_a_cut_closes_both_ends_at_once(upstream: Upstream) -> None:
    with LoopbackProxy("127.0.0.1", upstream.port) as proxy:
        reader, writer = await connect(proxy)
        writer.write(b"x")
        index = await asyncio.wait_for(upstream.accepted.get(), 10)
        await upstream.received_exactly(index, b"x")  # the proxy holds the connection by now
        assert proxy.cut() == 1
        await asyncio.wait_for(upstream.ended[index], 10)
        assert await read_until_closed(reader) == b""
        await close(writer)


async def test_faults_can_spare_everything_but_the_realtime_websockets(upstream: Upstream) -> None:
    with LoopbackProxy("127.0.0.1", upstream.port) as proxy:
        socket_reader, socket_writer = await connect(proxy)
        socket_writer.write(WEBSOCKET_REQUEST)
        websocket = await asyncio.wait_for(upstream.accepted.get(), 10)
        rest_reader, rest_writer = await connect(proxy)
        rest_writer.write(REST_REQUEST)
        rest = await asyncio.wait_for(upstream.accepted.get(), 10)
        await upstream.received_exactly(websocket, WEBSOCKET_REQUEST)
        await upstream.received_exactly(rest, REST_REQUEST)
        assert proxy.websockets_opened == 1 and proxy.connections == 2
        assert proxy.blackhole(websockets_only=True) == 1
        assert proxy.cut(websockets_only=True) == 0  # black-holed already: left alone
        upstream.writers[rest].write(b"HTTP/1.1 200 OK\r\n")
        assert await asyncio.wait_for(rest_reader.readexactly(17), 10) == b"HTTP/1.1 200 OK\r\n"
        assert proxy.cut() == 1  # the REST connection; the black hole stays
        assert await read_until_closed(rest_reader) == b""
        assert not upstream.ended[websocket].done()
    assert await read_until_closed(socket_reader) == b""  # torn down with the proxy
    await close(socket_writer, rest_writer)


def test_faults_need_a_running_proxy() -> None:
    proxy = LoopbackProxy("127.0.0.1", 9)
    with pytest.raises(RuntimeError, match="not running"):
        proxy.blackhole()
    with pytest.raises(ValueError, match="negative"):
        LoopbackProxy("127.0.0.1", 9, delay=-1)
