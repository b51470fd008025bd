"""The diagnostics window: headline figures from the snapshot, live sparklines, every key in the table."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from desktop_chat.ui.diagnostics import MEASURE_EVERY, DiagnosticsWindow, flatten, lookup
from tests.gui.fakes import FakeChatStore


def test_lookup_and_flatten() -> None:
    snapshot = {"cache": {"hit_rate": 0.9, "tier": "redis"}, "errors": {"a": 1}}
    assert lookup(snapshot, "cache.hit_rate") == 0.9
    assert lookup(snapshot, "cache.nothing") is None
    assert lookup(snapshot, "cache.hit_rate.deeper") is None
    assert list(flatten(snapshot)) == [("cache.hit_rate", 0.9), ("cache.tier", "redis"), ("errors.a", 1)]


def test_the_window_shows_the_store_figures_and_charts_them(qtbot: QtBot, store: FakeChatStore) -> None:
    window = DiagnosticsWindow(store.metrics_snapshot)
    qtbot.addWidget(window)
    window.show()
    window.refresh()
    snapshot = store.metrics_snapshot()  # the next sample; the window showed the two before it
    assert window.values["Cache hit rate"].text().endswith(" %")
    assert window.values["Redis memory"].text().endswith(" MB")
    assert " ms / " in window.values["Supabase latency p50 / p95"].text()
    assert window.values["Errors"].text() == str(sum(snapshot["errors"].values()))
    assert len(window.lag_chart.samples) == 2
    assert window.table.topLevelItemCount() == len(list(flatten(snapshot)))
    image = window.lag_chart.grab().toImage()
    assert len({image.pixel(x, y) for x in range(0, image.width(), 3) for y in range(0, image.height(), 3)}) > 5


def test_missing_figures_show_a_dash_and_nothing_breaks(qtbot: QtBot) -> None:
    snapshots: list[dict[str, Any]] = [{}, {"cache": {"hit_rate": "n/a"}}, {"realtime": {"lag_ms": True}}]
    window = DiagnosticsWindow(lambda: snapshots.pop(0) if snapshots else {})
    qtbot.addWidget(window)
    for _ in range(3):
        window.refresh()
    assert window.values["Cache hit rate"].text() == "—"
    assert window.values["Realtime lag"].text() == "—"
    assert len(window.lag_chart.samples) == 0


# The shape the real ChatStore reports: the telemetry registry's snapshot under "metrics".
REGISTRY_SNAPSHOT: dict[str, Any] = {
    "status": {"connection": "live", "cache": "redis", "outbox_depth": 2, "backend_reachable": True},
    "cache_detail": "",
    "metrics": {
        "counters": {
            "cache.hits": [
                {"labels": {"tier": "redis", "kind": "msgs"}, "value": 90},
                {"labels": {"tier": "memory", "kind": "recent"}, "value": 6},
            ],
            "cache.misses": [{"labels": {"tier": "redis", "kind": "msgs"}, "value": 4}],
            "errors": [
                {"labels": {"kind": "cache.timeout"}, "value": 2},
                {"labels": {"kind": "supabase.http"}, "value": 1},
            ],
        },
        "gauges": {"cache.redis.used_memory_bytes": [{"labels": {}, "value": 2 * 1024 * 1024}]},
        "histograms": {
            "supabase.latency_seconds": [
                {
                    "labels": {"op": "messages"},
                    "count": 10,
                    "p50": 0.03,
                    "p95": 0.09,
                    "buckets": [{"le": 0.0316, "count": 6}, {"le": 0.1, "count": 4}],
                },
                {"labels": {"op": "recent"}, "count": 10, "p50": 0.01, "buckets": [{"le": 0.0126, "count": 10}]},
            ],
            "cache.latency_seconds": [
                {
                    "labels": {"tier": "redis", "op": "get"},
                    "count": 4,
                    "buckets": [{"le": 0.000501, "count": 3}, {"le": "+Inf", "count": 1}],
                }
            ],
        },
    },
    "realtime": {"state": "live", "reconnects": 3, "last_push_at": None},
}


def test_the_registry_snapshot_of_the_real_store_gives_the_headline_figures(qtbot: QtBot) -> None:
    window = DiagnosticsWindow(lambda: REGISTRY_SNAPSHOT)
    qtbot.addWidget(window)
    window.refresh()
    shown = {label: value.text() for label, value in window.values.items()}
    assert shown == {
        "Cache hit rate": "96.0 %",  # 96 hits in all tiers, 4 misses
        "Cache latency p50 / p95": "0.5 ms / —",  # p95 falls in the overflow bucket: unknown
        "Supabase latency p50 / p95": "12.6 ms / 100 ms",  # both series' buckets added up
        "Realtime lag": "—",
        "Redis memory": "2.0 MB",
        "Outbox": "2",
        "Reconnects": "3",
        "Errors": "3",
    }
    rows = dict(flatten(REGISTRY_SNAPSHOT))
    assert rows["metrics.counters.cache.hits{tier=redis,kind=msgs}"] == 90
    assert rows["metrics.histograms.supabase.latency_seconds{op=messages}"] == "count=10, p50=0.03, p95=0.09"
    assert window.table.topLevelItemCount() == len(rows)


def test_it_fits_on_the_screen_closes_with_esc_and_has_the_costly_figures_measured(qtbot: QtBot) -> None:
    measured: list[bool] = []
    window = DiagnosticsWindow(lambda: REGISTRY_SNAPSHOT, measure=lambda: measured.append(True))
    qtbot.addWidget(window)
    free = window.screen().availableGeometry()
    window.resize(free.width() * 2, free.height() * 2)  # as if opened on a far bigger screen
    window.show()
    qtbot.waitExposed(window)
    assert free.contains(window.frameGeometry())
    assert measured == [True]  # the cache's memory and disk are measured when it opens…
    for _ in range(MEASURE_EVERY):
        window.refresh()
    assert measured == [True, True]  # …and again now and then, not every second
    qtbot.keyClick(window, Qt.Key.Key_Escape)
    assert not window.isVisible()
