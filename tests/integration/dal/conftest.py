"""Data layers (ChatStore + backend + cache + outbox) against the throwaway stack, one per "device"."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import pytest
from pydantic import SecretStr

from desktop_chat.config import Settings
from desktop_chat.dal.api import ConnectionState
from desktop_chat.dal.factory import DataLayer, open_data_layer
from desktop_chat.dal.live import FRAME_INTERVAL
from desktop_chat.models import ChatId
from devstack.proxy import LoopbackProxy
from tests.conftest import StackHandle
from tests.keyrings import MemoryKeyring

PASSWORD = "password123"
ALICE_EMAIL = "alice@example.com"
BOB_EMAIL = "bob@example.com"
CAROL_EMAIL = "carol@example.com"
ALICE = uuid.UUID("a11ce000-0000-4000-8000-000000000001")
BOB = uuid.UUID("b0b00000-0000-4000-8000-000000000002")
ALICE_BOB_CHAT = uuid.UUID("c0000000-0000-4000-8000-00000000a0b0")
FALCON_CHAT = uuid.UUID("c0000000-0000-4000-8000-0000000f1c01")
BOOK_CLUB_CHAT = uuid.UUID("c0000000-0000-4000-8000-00000000b0ca")

# Redis databases 8..15 belong to these tests (the cache's own tests use 0 and 5); each device gets one,
# because each device has its own cache key and a new key wipes the namespace it finds.
_DATABASES = itertools.cycle(range(8, 16))


class LayerFactory(Protocol):
    def __call__(
        self,
        name: str,
        *,
        realtime: bool = ...,
        redis_url: str | None = ...,
        keyring: MemoryKeyring | None = ...,
        managed_redis: bool = ...,
        frame_interval: float = ...,
        hold_client: bool = ...,
        **settings: Any,
    ) -> Awaitable[DataLayer]: ...


def redis_db_url(base: str, db: int) -> str:
    return base.rsplit("/", 1)[0] + f"/{db}"


@pytest.fixture
async def make_layer(stack: StackHandle, tmp_path: Path) -> AsyncIterator[LayerFactory]:
    opened: list[DataLayer] = []

    async def make(
        name: str,
        *,
        realtime: bool = True,
        redis_url: str | None = None,
        keyring: MemoryKeyring | None = None,
        managed_redis: bool = False,
        frame_interval: float = FRAME_INTERVAL,
        hold_client: bool = False,
        **overrides: Any,
    ) -> DataLayer:
        """``managed_redis``: the app's own redis-server, as the app runs it (persistent in ``cache_dir``).
        ``frame_interval``: how long live changes are held before they are applied (see LiveSync)."""
        home = tmp_path / name
        values: dict[str, Any] = {
            "supabase_url": stack.api_url,
            "supabase_anon_key": SecretStr(stack.anon_key),
            "redis_url": None if managed_redis else redis_url or redis_db_url(stack.redis_url, next(_DATABASES)),
            "data_dir": home / "data",
            "config_dir": home / "config",
            "log_dir": home / "log",
            "runtime_dir": home / "run",
            "cache_dir": home / "cache",
            "request_timeout": 5.0,
            # A loaded machine (CI's 2 cores) makes Redis look slow to the breaker, whose memory tier then
            # stands in and misses what a test looks for in Redis. The breaker has tests of its own
            # (tests/integration/cache); these count only a Redis that is down (refused at once) as one.
            "cache_breaker_slow_seconds": 30.0,
            "redis_socket_timeout": 5.0,
        }
        values.update(overrides)
        layer = await open_data_layer(
            Settings(**values),
            keyring_backend=keyring or MemoryKeyring(),
            realtime=realtime,
            frame_interval=frame_interval,
            hold_client=hold_client,
        )
        opened.append(layer)
        return layer

    yield make
    for layer in reversed(opened):
        await layer.close()


@pytest.fixture
def proxy(stack: StackHandle) -> Iterator[LoopbackProxy]:
    """A loopback proxy in front of the stack's gateway (delay, black hole, cut, hold/release: devstack.proxy);
    whatever it still holds is let go before it stops."""
    target = urlsplit(stack.api_url)
    assert target.hostname is not None and target.port is not None
    proxy = LoopbackProxy(target.hostname, target.port)
    proxy.start()
    yield proxy
    proxy.release()
    proxy.stop()


async def eventually(check: Callable[[], bool], within: float = 10.0, what: str = "condition") -> None:
    """Wait until ``check()`` is true, polling the event loop (no fixed sleeps in assertions)."""
    async with asyncio.timeout(within):
        while not check():  # noqa: ASYNC110 - polling state the store changes from its own tasks
            await asyncio.sleep(0.01)
    assert check(), what


async def signed_in(make_layer: LayerFactory, name: str, email: str) -> DataLayer:
    """A device of ``email``'s, signed in with its realtime link up."""
    layer = await make_layer(name)
    await layer.store.sign_in(email, PASSWORD)
    await eventually(lambda: layer.store.status.connection is ConnectionState.LIVE, what=f"{name} live")
    return layer


async def alice_and_bob_in_a_new_chat(make_layer: LayerFactory) -> tuple[DataLayer, DataLayer, ChatId]:
    """Alice and bob signed in, and a chat of its own for the test that both already see, so tests never
    depend on each other's messages."""
    alice = await signed_in(make_layer, "alice", ALICE_EMAIL)
    bob = await signed_in(make_layer, "bob", BOB_EMAIL)
    chat = await alice.store.create_chat(f"test {uuid.uuid4().hex[:6]}", [BOB_EMAIL])
    await eventually(lambda: bob.store.chat_list().get(chat) is not None, what="bob sees the new chat")
    return alice, bob, chat
