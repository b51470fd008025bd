"""``StatusBoard``: the one ``StoreStatus`` (connection, cache, outbox depth, server reachable) and who hears it.

Everyone who learns something about the status writes it here (the cache's own status, the realtime link,
the outbox depth, whether the last call reached the server); the UI reads ``status`` and listens.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from desktop_chat.cache import CacheStatus, TieredCache
from desktop_chat.dal.api import StatusListener, StoreStatus
from desktop_chat.dal.live_list import Unsubscribe
from desktop_chat.realtime.manager import RealtimeManager
from desktop_chat.telemetry.metrics import REALTIME_LAG, MetricsRegistry


class StatusBoard:
    """Holds the status; follows the cache's status by itself.

    Args:
        cache: Whose status (``CacheStatus``) the board shows as it is.
        metrics: The registry ``snapshot`` reports.
    """

    def __init__(self, cache: TieredCache, metrics: MetricsRegistry) -> None:
        self._cache = cache
        self._metrics = metrics
        self._status = StoreStatus(cache=cache.status, detail=cache.detail)
        self._listeners: list[StatusListener] = []
        self._unsubscribe_cache = cache.subscribe_status(self._on_cache_status)

    @property
    def status(self) -> StoreStatus:
        return self._status

    def subscribe(self, listener: StatusListener) -> Unsubscribe:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def update(self, **changes: Any) -> None:
        """Change some fields; listeners hear the new status if anything changed."""
        status = replace(self._status, **changes)
        if status != self._status:
            self._status = status
            for listener in list(self._listeners):
                listener(status)

    def close(self) -> None:
        self._unsubscribe_cache()
        self._listeners.clear()

    def _on_cache_status(self, status: CacheStatus, _detail: str) -> None:
        self.update(cache=status)

    def snapshot(self, realtime: RealtimeManager | None) -> dict[str, Any]:
        """The figures for the diagnostics window and ``doctor`` (see ``ChatStoreAPI.metrics_snapshot``)."""
        status = self._status
        snapshot: dict[str, Any] = {
            "status": {
                "connection": status.connection.value,
                "cache": status.cache.value,
                "outbox_depth": status.outbox_depth,
                "backend_reachable": status.backend_reachable,
            },
            "cache_detail": self._cache.detail,
            "cache": {"disk_bytes": self._cache.disk_bytes()},
            "metrics": self._metrics.snapshot(),
        }
        if realtime is not None:
            lag = self._metrics.histogram(REALTIME_LAG).quantile(0.5)
            snapshot["realtime"] = {
                "state": realtime.state.value,
                "reconnects": realtime.reconnects,
                "heartbeat_misses": realtime.heartbeat_misses,
                "joins": realtime.joins,
                "chat_topics": len(realtime.topics),
                "last_push_at": realtime.last_push_at,
                "lag_ms": round(lag * 1000, 1) if lag is not None else None,
            }
        return snapshot
