"""Build the whole data layer from Settings, in one place: what the composition root and ``doctor`` call.

Order: metrics → secrets → backend → cache → outbox → status → store, each part closed again by this
composition, in reverse (``DataLayer.close``). After each sign-in the store asks for the user's
``SignedIn`` (``open_signed_in`` below), which it closes at sign-out.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path

from keyring.backend import KeyringBackend

from desktop_chat.backend.client import SupabaseBackend
from desktop_chat.cache import TieredCache, open_cache
from desktop_chat.config import Settings
from desktop_chat.dal.calls import BackendCalls
from desktop_chat.dal.chat_store import ChatStore
from desktop_chat.dal.live import FRAME_INTERVAL
from desktop_chat.dal.presence import Presence
from desktop_chat.dal.reads import CHAT_PAGE
from desktop_chat.dal.signed_in import SignedIn
from desktop_chat.dal.status import StatusBoard
from desktop_chat.models import Profile
from desktop_chat.secrets import SecretStore
from desktop_chat.sync.outbox import Outbox
from desktop_chat.telemetry.metrics import MetricsRegistry

log = logging.getLogger(__name__)

OUTBOX_FILE = "outbox.sqlite3"


@dataclass
class DataLayer:
    """Everything below the UI, with one ``close()`` that takes it down in reverse order of building."""

    settings: Settings
    metrics: MetricsRegistry
    secrets: SecretStore
    backend: SupabaseBackend
    cache: TieredCache
    outbox: Outbox
    status: StatusBoard
    store: ChatStore
    _built: AsyncExitStack = field(repr=False)

    async def close(self) -> None:
        """End the signed-in user's session, then release the outbox, the cache (and its redis-server) and
        the client. Idempotent."""
        await self._built.aclose()


def _logged(name: str, close: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
    async def closing() -> None:
        try:
            await close()
        except Exception:  # keep closing the rest: a failure must not leave a redis-server behind
            log.exception("closing the %s failed", name)

    return closing


async def open_data_layer(
    settings: Settings,
    *,
    keyring_backend: KeyringBackend | None = None,
    realtime: bool = True,
    outbox_path: Path | None = None,
    frame_interval: float = FRAME_INTERVAL,
    chat_page: int = CHAT_PAGE,
    hold_client: bool = False,
) -> DataLayer:
    """Open every part of the data layer (nothing talks to Supabase until sign-in).

    ``realtime``: run the realtime link after sign-in (tests of the read path turn it off).
    ``frame_interval``: how long live changes are collected before the views hear of them (see LiveSync).
    ``chat_page``: chat-list rows per page (tests page through a few chats with a small one).
    ``hold_client``: build the server client (and import its libraries) only once the UI says its first
    frame is painted (``ChatStore.first_frame_painted``), or after ``CLIENT_HOLD_LIMIT`` seconds: the app's
    start (docs/architecture.md §10).
    """
    built = AsyncExitStack()
    try:
        metrics = MetricsRegistry()
        secrets = SecretStore(settings.config_dir, backend=keyring_backend)
        backend = SupabaseBackend(settings, secrets)
        if hold_client:
            backend.hold_client()
        built.push_async_callback(_logged("client", backend.close))
        log.info("backend ready for %s (client built on first use)", settings.supabase_url)
        cache = await built.enter_async_context(open_cache(settings, metrics, keyring_backend=keyring_backend))
        log.info("cache ready: %s", cache.status.value)
        outbox = await Outbox.open(outbox_path or settings.data_dir / OUTBOX_FILE)
        built.push_async_callback(_logged("outbox", outbox.close))
        log.info("outbox ready at %s", outbox.path)
        status = StatusBoard(cache, metrics)
        built.callback(status.close)
        calls = BackendCalls(metrics, status)
        presence = Presence()

        async def open_signed_in(profile: Profile) -> SignedIn:
            """Everything of one user's, built after sign-in; the store closes it at sign-out."""
            signed_in = SignedIn(
                profile,
                settings=settings,
                backend=backend,
                cache=cache,
                outbox=outbox,
                metrics=metrics,
                status=status,
                calls=calls,
                presence=presence,
                realtime=realtime,
                frame_interval=frame_interval,
                chat_page=chat_page,
            )
            try:
                await signed_in.start()
            except BaseException:
                await signed_in.close()
                raise
            return signed_in

        store = ChatStore(backend, cache, status, presence, open_signed_in, chat_page=chat_page)
        built.push_async_callback(_logged("store", store.close))
    except BaseException:
        await built.aclose()
        raise
    return DataLayer(settings, metrics, secrets, backend, cache, outbox, status, store, built)
