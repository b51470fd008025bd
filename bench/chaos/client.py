"""One chat client in its own process, driven by the chaos suite over stdin/stdout (JSON lines).

``python -m bench.chaos.client --name NAME --home DIR --url URL --anon KEY [--redis URL]`` opens the whole
data layer (``open_data_layer``: the official client, the Redis cache, the SQLite outbox, live sync) as the
app does, with the keyring's user-only file fallback, so a session survives a SIGKILL and a restarted
process can ``restore`` it. It then answers commands, one JSON object a line on stdin, each with an ``id``
(the reply carries it as ``re``), and reports what happens as events (``ev``) on stdout:

- ``{"ev": "ready", "pid": …}`` once the data layer is open;
- ``{"ev": "s", "k": text, "id": message id, "c": chat, "t": time}`` each time ``send()`` returned;
- ``{"ev": "v", "c": chat, "k": text, "n": copies, "ok": confirmed, "t": time}`` after each batch of row
  operations on an open timeline, for every message of the suite the batch touched: how many rows carry
  that text, and how many of them the server confirmed (``seq`` set). The rows are rebuilt from the row
  operations (``apply_changes``), as the Qt model does, so this is what a window would show;
- ``{"ev": "st", "conn": state, "outbox": depth, "t": time}`` when the connection state changes.

Times are ``time.monotonic()``, the same clock in every process of the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keyring.backends.fail
from pydantic import SecretStr

from desktop_chat.config import Settings
from desktop_chat.dal.api import ConnectionState, StoreStatus, Timeline
from desktop_chat.dal.factory import DataLayer, open_data_layer
from desktop_chat.dal.live_list import RowChange, RowsChanged, RowsInserted, RowsRemoved, RowsReset, apply_changes
from desktop_chat.models import ChatId, Message

KEY_PREFIX = "chaos "  # every message text the suite sends starts with this
PASSWORD = "password123"


def emit(event: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(event, separators=(",", ":")) + "\n")
    sys.stdout.flush()


class ViewProbe:
    """Follows one timeline like the Qt model and reports each touched message's copies and confirmations."""

    def __init__(self, chat: ChatId, timeline: Timeline) -> None:
        self.chat = str(chat)
        self.rows: list[Message] = []
        self.copies: Counter[str] = Counter()
        self.confirmed: Counter[str] = Counter()
        self._unsubscribe = timeline.subscribe(self._on_changes)
        self._on_changes([RowsReset(tuple(timeline.rows))])

    def close(self) -> None:
        self._unsubscribe()

    def _count(self, rows: Sequence[Message], sign: int, touched: set[str]) -> None:
        for message in rows:
            if message.content.startswith(KEY_PREFIX):
                self.copies[message.content] += sign
                if message.seq is not None:
                    self.confirmed[message.content] += sign
                touched.add(message.content)

    def _on_changes(self, changes: Sequence[RowChange[Message]]) -> None:
        now = time.monotonic()
        touched: set[str] = set()
        for change in changes:
            # What leaves the list is counted out before the operation, what comes in after it.
            if isinstance(change, RowsReset):
                self._count(self.rows, -1, touched)
            elif isinstance(change, RowsChanged):
                self._count(self.rows[change.start : change.start + len(change.rows)], -1, touched)
            elif isinstance(change, RowsRemoved):
                self._count(self.rows[change.start : change.start + change.count], -1, touched)
            apply_changes(self.rows, [change])
            if isinstance(change, RowsReset | RowsChanged | RowsInserted):
                self._count(change.rows, 1, touched)
        for key in touched:
            emit({"ev": "v", "c": self.chat, "k": key, "n": self.copies[key], "ok": self.confirmed[key], "t": now})


class Client:
    def __init__(self, layer: DataLayer) -> None:
        self.layer = layer
        self.store = layer.store
        self.probes: dict[ChatId, ViewProbe] = {}
        self.sending: asyncio.Task[None] | None = None
        self.sent = 0
        self._last_connection: ConnectionState | None = None
        self.store.subscribe_status(self._on_status)

    def _on_status(self, status: StoreStatus) -> None:
        if status.connection is not self._last_connection:
            self._last_connection = status.connection
            emit({"ev": "st", "conn": status.connection.value, "outbox": status.outbox_depth, "t": time.monotonic()})

    async def until(self, check: Any, within: float, what: str) -> None:
        async with asyncio.timeout(within):
            while not check():  # noqa: ASYNC110 - polling state the store changes from its own tasks
                await asyncio.sleep(0.02)

    async def send(self, chat: ChatId, text: str) -> None:
        message_id = await self.store.send(chat, text)
        self.sent += 1
        emit({"ev": "s", "k": text, "id": str(message_id), "c": str(chat), "t": time.monotonic()})

    async def _send_loop(self, chats: list[ChatId], rate: float, prefix: str, first: int) -> None:
        """Send on a fixed schedule (a slow send does not thin out the load), round robin over ``chats``."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        n = 0
        while True:
            if (wait := started + n / rate - loop.time()) > 0:
                await asyncio.sleep(wait)
            try:
                await self.send(chats[n % len(chats)], f"{prefix} {first + n:06d}")
            except Exception as error:  # a refused send is a finding, not a reason to stop the load
                emit({"ev": "err", "what": f"send: {type(error).__name__}: {error}", "t": time.monotonic()})
            n += 1

    async def handle(self, op: str, args: dict[str, Any]) -> dict[str, Any]:
        store = self.store
        if op == "sign_in":
            profile = await store.sign_in(args["email"], PASSWORD)
            return {"user": str(profile.id)}
        if op == "restore":
            restored = await store.restore_session()
            if restored is None:
                raise RuntimeError("no saved session")
            return {"user": str(restored.id)}
        if op == "wait_live":
            await self.until(lambda: store.status.connection is ConnectionState.LIVE, args.get("within", 60), "live")
            return {}
        if op == "create_chat":
            chat = await store.create_chat(args["title"], args["members"])
            return {"chat": str(chat)}
        if op == "wait_chat":
            chat = ChatId(uuid.UUID(args["chat"]))
            await self.until(lambda: store.chat_list().get(chat) is not None, args.get("within", 60), "chat listed")
            return {}
        if op == "open":
            chat = ChatId(uuid.UUID(args["chat"]))
            timeline = await store.open_chat(chat)
            if args.get("full"):
                while store.has_older(chat):
                    await store.load_older(chat)
            self.probes[chat] = ViewProbe(chat, timeline)
            return {"rows": len(timeline.rows)}
        if op == "send_loop":
            await self.stop_sending()
            chats = [ChatId(uuid.UUID(c)) for c in args["chats"]]
            self.sending = asyncio.get_running_loop().create_task(
                self._send_loop(chats, float(args["rate"]), args["prefix"], int(args.get("first", 0)))
            )
            return {}
        if op == "stop_sending":
            await self.stop_sending()
            return {"sent": self.sent}
        if op == "burst":
            await self.stop_sending()
            chat = ChatId(uuid.UUID(args["chat"]))
            for n in range(int(args["count"])):
                await self.send(chat, f"{args['prefix']} {n:06d}")
            return {"outbox": store.status.outbox_depth}
        if op == "status":
            status = store.status
            snapshot = store.metrics_snapshot()
            return {
                "conn": status.connection.value,
                "outbox": status.outbox_depth,
                "reachable": status.backend_reachable,
                "reconnects": snapshot.get("realtime", {}).get("reconnects"),
            }
        raise ValueError(f"unknown op {op!r}")

    async def stop_sending(self) -> None:
        task, self.sending = self.sending, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _stdin_lines(loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[str | None]) -> None:
    for line in sys.stdin:
        loop.call_soon_threadsafe(queue.put_nowait, line)
    loop.call_soon_threadsafe(queue.put_nowait, None)


async def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench.chaos.client")
    parser.add_argument("--name", required=True)
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--anon", required=True)
    parser.add_argument("--redis")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format=f"%(created).3f {args.name} %(levelname)s %(name)s %(message)s"
    )
    settings = Settings(
        supabase_url=args.url,
        supabase_anon_key=SecretStr(args.anon),
        redis_url=args.redis,
        cache_enabled=args.redis is not None,
        config_dir=args.home / "config",
        data_dir=args.home / "data",
        runtime_dir=args.home / "run",
        log_dir=args.home / "log",
    )
    layer = await open_data_layer(settings, keyring_backend=keyring.backends.fail.Keyring())  # type: ignore[no-untyped-call]
    client = Client(layer)
    emit({"ev": "ready", "pid": os.getpid(), "t": time.monotonic()})
    loop = asyncio.get_running_loop()
    lines: asyncio.Queue[str | None] = asyncio.Queue()
    threading.Thread(target=_stdin_lines, args=(loop, lines), daemon=True).start()
    running: set[asyncio.Task[None]] = set()

    async def serve(request: dict[str, Any]) -> None:
        try:
            result = await client.handle(request["op"], request.get("args", {}))
            emit({"re": request["id"], "ok": True, **result})
        except Exception as error:
            logging.getLogger("bench.chaos.client").exception("%s failed", request["op"])
            emit({"re": request["id"], "ok": False, "error": f"{type(error).__name__}: {error}"})

    try:
        while (line := await lines.get()) is not None:
            request = json.loads(line)
            if request["op"] == "quit":
                emit({"re": request["id"], "ok": True})
                break
            task = loop.create_task(serve(request))
            running.add(task)
            task.add_done_callback(running.discard)
    finally:
        await client.stop_sending()
        for task in running:
            task.cancel()
        await layer.close()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
