"""Build the whole data layer from Settings: what the composition root and ``doctor`` call.

Order: metrics → secrets → backend → cache → outbox → store; ``close()`` undoes it in reverse.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from keyring.backend import KeyringBackend

from desktop_chat.backend.client import SupabaseBackend
from desktop_chat.cache import TieredCache, open_cache
from desktop_chat.config import Settings
from desktop_chat.dal.chat_store import ChatStore
from desktop_chat.dal.live import FRAME_INTERVAL
from desktop_chat.secrets import SecretStore
from desktop_chat.sync.outbox import Outbox
from desktop_chat.telemetry.metrics import MetricsRegistry

log = logging.getLogger(__name__)

OUTBOX_FILE = "outbox.sqlite3"


@dataclass
class DataLayer:
    """Everything below the UI, with one ``close()``."""

    settings: Settings
    metrics: MetricsRegistry
    secrets: SecretStore
    backend: SupabaseBackend
    cache: TieredCache
    outbox: Outbox
    store: ChatStore
    _closed: bool = field(default=False, repr=False)

    async def close(self) -> None:
        """Stop realtime and the sender, then release the cache (and its redis-server), outbox, client."""
        if self._closed:
            return
        self._closed = True
        await self.store.close()  # closes the rest too (see open_data_layer)


async def open_data_layer(
    settings: Settings,
    *,
    keyring_backend: KeyringBackend | None = None,
    realtime: bool = True,
    outbox_path: Path | None = None,
    frame_interval: float = FRAME_INTERVAL,
) -> DataLayer:
    """Open every part of the data layer (nothing talks to Supabase until sign-in).

    ``frame_interval``: how long live changes are collected before the views hear of them (see LiveSync).
    """
    metrics = MetricsRegistry()
    secrets = SecretStore(settings.config_dir, backend=keyring_backend)
    backend = SupabaseBackend(settings, secrets)
    await backend.start()
    log.info("backend ready for %s", settings.supabase_url)
    cache = await open_cache(settings, metrics, keyring_backend=keyring_backend)
    log.info("cache ready: %s", cache.status.value)
    try:
        outbox = await Outbox.open(outbox_path or settings.data_dir / OUTBOX_FILE)
    except BaseException:
        await cache.close()
        await backend.close()
        raise
    log.info("outbox ready at %s", outbox.path)
    store = ChatStore(settings, backend, cache, outbox, metrics, realtime=realtime, frame_interval=frame_interval)
    # The UI holds only the store, so the store's close releases everything below it.
    store.close_with(cache.close, outbox.close, backend.close)
    return DataLayer(settings, metrics, secrets, backend, cache, outbox, store)
