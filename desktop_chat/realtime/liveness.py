"""A round trip on the Realtime socket that must be answered: the Phoenix heartbeat, with its reply.

A socket can go deaf without closing: a proxy or a NAT that silently stops forwarding (no FIN, no RST), a
server whose writer for this socket died, a laptop that slept. Nothing then reaches the client, and
nothing tells it so: the official client sends a heartbeat every 25 s but ignores the reply, and the
websocket's own pings (every 20 s) are answered by the server's websocket layer even when its
application no longer writes to the socket. The link would show "live" while every push is lost.

Phoenix answers a heartbeat (``topic: "phoenix"``, ``event: "heartbeat"``, a ``ref``) with a
``phx_reply`` carrying the same ``ref``, from the same process that writes the socket's pushes: a reply
proves that the server still writes to this socket. The official client routes a frame to the channel
registered under the frame's topic (``AsyncRealtimeClient.channels``) and drops frames whose topic has
none, which is what happens to heartbeat replies. So ``Heartbeat`` registers a receiver channel under
``"phoenix"`` (never joined, so the client's join, rejoin and error handling pass it by) and sends its
heartbeats as pushes of that channel, whose replies the client matches by ``ref`` as for any push.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from realtime import AsyncRealtimeChannel, AsyncRealtimeClient
from realtime._async.push import AsyncPush
from realtime.types import RealtimeAcknowledgementStatus

PHOENIX_TOPIC = "phoenix"


class Heartbeat:
    """Heartbeat round trips on one official client's socket.

    Args:
        socket: The official async Realtime client, connected.
    """

    def __init__(self, socket: AsyncRealtimeClient) -> None:
        self._socket = socket
        self._receiver = AsyncRealtimeChannel(socket, PHOENIX_TOPIC)
        socket.channels[PHOENIX_TOPIC] = self._receiver

    async def round_trip(self, within: float) -> float | None:
        """Send a heartbeat; the seconds its reply took, or None when none came within ``within``."""
        loop = asyncio.get_running_loop()
        answered: asyncio.Future[bool] = loop.create_future()
        sent = loop.time()

        def settle(value: bool) -> None:
            if not answered.done():
                answered.set_result(value)

        def on_reply(_response: Any) -> None:
            settle(True)  # an error reply is an answer too: the server still writes to this socket

        push = AsyncPush(self._receiver, "heartbeat", {}, within)  # type: ignore[arg-type]  # seconds
        push.receive(RealtimeAcknowledgementStatus.Ok, on_reply)
        push.receive(RealtimeAcknowledgementStatus.Error, on_reply)
        push.receive(RealtimeAcknowledgementStatus.Timeout, lambda: settle(False))
        try:
            # The send itself may hang on a socket whose peer stopped reading: the deadline covers both.
            async with asyncio.timeout(within):
                await push.send()
                return loop.time() - sent if await answered else None
        except TimeoutError:
            return None
        finally:
            push.destroy()
            if push.ref is not None:
                self._receiver.messages_waiting_for_ack.pop(push.ref, None)

    def detach(self) -> None:
        """Stop receiving (before the client's channels are removed: the receiver is not to be left)."""
        if self._socket.channels.get(PHOENIX_TOPIC) is self._receiver:
            with contextlib.suppress(KeyError):
                del self._socket.channels[PHOENIX_TOPIC]
