"""The diagnostics window: headline figures from the snapshot, live sparklines, every key in the table."""

from __future__ import annotations

from typing import Any

from pytestqt.qtbot import QtBot

from desktop_chat.ui.diagnostics import DiagnosticsWindow, flatten, lookup
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
