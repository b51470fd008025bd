"""A headless client process for the crash test: sign in, queue messages, deliver the outbox.

``python -m tests.e2e.sender_process HOME API_URL ANON_KEY send CHAT COUNT PREFIX`` signs in as
alice (printing "signed-in"), waits for a line on stdin, then puts ``count`` messages into the outbox
(delivering what it can), printing "queued" once all are on disk. ``... drain`` restores the session
from the secrets file and runs until the outbox is empty, then prints "drained". The keyring is the
user-only file fallback, so the session survives a SIGKILL.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import uuid
from pathlib import Path

import keyring.backends.fail
from pydantic import SecretStr

from desktop_chat.config import Settings
from desktop_chat.dal.factory import open_data_layer
from desktop_chat.models import ChatId


async def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(relativeCreated)6.0f %(name)s %(message)s")
    home, api_url, anon_key, mode = Path(argv[0]), argv[1], argv[2], argv[3]
    settings = Settings(
        supabase_url=api_url,
        supabase_anon_key=SecretStr(anon_key),
        config_dir=home / "config",
        data_dir=home / "data",
        runtime_dir=home / "run",
        cache_dir=home / "cache",
        log_dir=home / "log",
        cache_enabled=False,
        request_timeout=2.0,
    )
    layer = await open_data_layer(settings, keyring_backend=keyring.backends.fail.Keyring(), realtime=False)
    store = layer.store
    try:
        if mode == "send":
            chat, count, prefix = ChatId(uuid.UUID(argv[4])), int(argv[5]), argv[6]
            await store.sign_in("alice@example.com", "password123")
            print("signed-in", flush=True)
            await asyncio.to_thread(sys.stdin.readline)  # the test says when to type
            for n in range(count):
                await store.send(chat, f"{prefix} {n:03d}")
            print("queued", flush=True)
            await asyncio.sleep(3600)  # keep delivering until killed
        elif mode == "drain":
            profile = await store.restore_session()
            if profile is None:
                print("no session", flush=True)
                return 2
            async with asyncio.timeout(120):
                # Polling the outbox file is the point: it is what survives the crash.
                while await layer.outbox.depth(settings.supabase_url, profile.id):  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
            print("drained", flush=True)
        return 0
    finally:
        await layer.close()


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
