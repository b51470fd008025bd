"""The diagnostics window: ``store.metrics_snapshot()`` as headline figures, live sparklines and a full table.

The snapshot is a nested dict whose exact shape belongs to the data layer (see
``ChatStoreAPI.metrics_snapshot``). Headline figures are read from the telemetry registry's snapshot
under ``"metrics"`` (counters, gauges and histograms of labelled series, by the names in
``desktop_chat.telemetry``'s docstring) or from plain dotted keys, whichever is there, and show "—" when
neither is; the table below lists every value, so nothing the store reports is hidden.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, QTimer
from PySide6.QtGui import (
    QColor,
    QFont,
    QGuiApplication,
    QHideEvent,
    QKeyEvent,
    QKeySequence,
    QPainter,
    QPainterPath,
    QPaintEvent,
    QPen,
    QShowEvent,
)
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QLabel,
    QScrollArea,
    QSizePolicy,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from desktop_chat.ui.text import byte_size
from desktop_chat.ui.theme import LIGHT, Colors

Snapshot = Mapping[str, Any]
REFRESH_MS = 1000
MEASURE_EVERY = 5  # refreshes between measurements of the cache's memory and disk
FRAME_ALLOWANCE = 48  # pixels kept free for the window manager's title bar and borders
HISTORY = 120  # samples kept per sparkline: two minutes at one per second


def lookup(snapshot: Snapshot, path: str) -> Any:
    """The value at a dotted ``path`` ("latency_ms.cache.p95"), or None."""
    value: Any = snapshot
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def flatten(snapshot: Snapshot, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Every leaf of the snapshot as ``(dotted key, value)``, in the snapshot's order.

    A list of labelled series (the registry's ``[{"labels": {...}, "value": ...}]``) becomes one row per
    series, ``name{label=value}``; a histogram series shows its count and percentiles, not its buckets.
    """
    for key, value in snapshot.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            yield from flatten(value, path + ".")
        elif (
            isinstance(value, list) and value and all(isinstance(item, Mapping) and "labels" in item for item in value)
        ):
            for series in value:
                labels = ",".join(f"{name}={label}" for name, label in series["labels"].items())
                name = f"{path}{{{labels}}}" if labels else path
                if "value" in series:
                    yield name, series["value"]
                else:
                    parts = [f"{field}={series[field]}" for field in ("count", "p50", "p95", "p99") if field in series]
                    yield name, ", ".join(parts)
        else:
            yield path, value


def _series(snapshot: Snapshot, kind: str, name: str) -> list[Mapping[str, Any]]:
    """The registry's series ``metrics.<kind>[<name>]`` (kind: counters, gauges, histograms), or []."""
    metrics = snapshot.get("metrics")
    if not isinstance(metrics, Mapping):
        return []
    group = metrics.get(kind)
    series = group.get(name) if isinstance(group, Mapping) else None
    return [item for item in series if isinstance(item, Mapping)] if isinstance(series, list) else []


def _total(snapshot: Snapshot, kind: str, name: str) -> float | None:
    values = [_number(item.get("value")) for item in _series(snapshot, kind, name)]
    numbers = [value for value in values if value is not None]
    return sum(numbers) if numbers else None


def _quantile_ms(snapshot: Snapshot, name: str, q: float) -> float | None:
    """A percentile over all series of a latency histogram (seconds), in ms.

    Percentiles of different series cannot be averaged, but their buckets (the same bounds everywhere)
    can be added up; the answer is the upper bound of the bucket holding the quantile.
    """
    counts: dict[float, float] = {}
    for series in _series(snapshot, "histograms", name):
        for bucket in series.get("buckets") or ():
            bound, count = bucket.get("le"), _number(bucket.get("count"))
            upper = float("inf") if bound == "+Inf" else _number(bound)
            if upper is not None and count:
                counts[upper] = counts.get(upper, 0.0) + count
    total = sum(counts.values())
    if not total:
        return None
    running = 0.0
    for upper in sorted(counts):
        running += counts[upper]
        if running >= q * total:
            return None if upper == float("inf") else upper * 1000
    return None


def _first(*values: Any) -> Any:
    return next((value for value in values if value is not None), None)


def _hit_rate(snapshot: Snapshot) -> Any:
    hits, misses = _total(snapshot, "counters", "cache.hits"), _total(snapshot, "counters", "cache.misses")
    derived = hits / (hits + misses) if hits is not None and misses is not None and hits + misses else None
    return _first(lookup(snapshot, "cache.hit_rate"), derived)


def _latency(snapshot: Snapshot, which: str, q: str) -> Any:
    histogram = {"cache": "cache.latency_seconds", "supabase": "supabase.latency_seconds"}[which]
    return _first(lookup(snapshot, f"latency_ms.{which}.{q}"), _quantile_ms(snapshot, histogram, int(q[1:]) / 100))


def _errors(snapshot: Snapshot) -> Any:
    return _first(lookup(snapshot, "errors"), _total(snapshot, "counters", "errors"))


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _ms(value: Any) -> str:
    number = _number(value)
    if number is None:
        return "—"
    return f"{number:.1f} ms" if number < 100 else f"{number:,.0f} ms"


def _percent(value: Any) -> str:
    number = _number(value)
    return "—" if number is None else f"{number * 100:.1f} %"


def _bytes(value: Any) -> str:
    number = _number(value)
    return "—" if number is None else byte_size(number)


def _count(value: Any) -> str:
    if isinstance(value, Mapping):
        numbers = [_number(item) for item in value.values()]
        return f"{sum(number for number in numbers if number is not None):,.0f}"
    number = _number(value)
    return "—" if number is None else f"{number:,.0f}"


@dataclass(frozen=True)
class Figure:
    """One headline figure: a label and how to read and format it from a snapshot."""

    label: str
    read: Callable[[Snapshot], str]


FIGURES = (
    Figure("Cache hit rate", lambda s: _percent(_hit_rate(s))),
    Figure(
        "Cache latency p50 / p95",
        lambda s: f"{_ms(_latency(s, 'cache', 'p50'))} / {_ms(_latency(s, 'cache', 'p95'))}",
    ),
    Figure(
        "Supabase latency p50 / p95",
        lambda s: f"{_ms(_latency(s, 'supabase', 'p50'))} / {_ms(_latency(s, 'supabase', 'p95'))}",
    ),
    Figure("Realtime lag", lambda s: _ms(lookup(s, "realtime.lag_ms"))),
    Figure(
        "Redis memory",
        lambda s: _bytes(
            _first(lookup(s, "cache.redis_memory_bytes"), _total(s, "gauges", "cache.redis.used_memory_bytes"))
        ),
    ),
    Figure("Outbox", lambda s: _count(_first(lookup(s, "outbox.depth"), lookup(s, "status.outbox_depth")))),
    Figure("Reconnects", lambda s: _count(lookup(s, "realtime.reconnects"))),
    Figure("Errors", lambda s: _count(_errors(s))),
)


class Sparkline(QWidget):
    """A small line chart of the last samples of one figure, drawn with QPainter.

    Args:
        title: What the line shows.
        unit: Appended to the latest value.
        scale: Multiplies samples for display (100 for a rate shown in percent).
        colors: Custom colours.
        parent: Qt parent.
    """

    def __init__(
        self, title: str, unit: str, *, scale: float = 1.0, colors: Colors = LIGHT, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self._title = title
        self._unit = unit
        self._scale = scale
        self._colors = colors
        self.samples: deque[float] = deque(maxlen=HISTORY)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setAccessibleName(title)

    def set_colors(self, colors: Colors) -> None:
        self._colors = colors
        self.update()

    def add(self, value: float | None) -> None:
        if value is not None:
            self.samples.append(value * self._scale)
            latest = self.samples[-1]
            self.setAccessibleDescription(f"latest {latest:.1f} {self._unit}")
            self.update()

    def sizeHint(self) -> QSize:
        line = self.fontMetrics().height()
        return QSize(line * 20, line * 5)

    def paintEvent(self, event: QPaintEvent) -> None:
        c = self._colors
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        line = self.fontMetrics().height()
        frame = QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5)
        painter.setPen(QPen(c.separator, 1))
        painter.setBrush(c.surface)
        painter.drawRoundedRect(frame, line / 2, line / 2)
        title_rect = frame.adjusted(line * 0.6, line * 0.3, -line * 0.6, 0)
        title_rect.setHeight(line)
        painter.setPen(c.muted)
        painter.drawText(title_rect, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, self._title)
        if self.samples:
            bold = QFont(self.font())
            bold.setWeight(QFont.Weight.DemiBold)
            painter.setFont(bold)
            painter.setPen(c.text)
            latest = f"{self.samples[-1]:,.1f} {self._unit}"
            painter.drawText(title_rect, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, latest)
        chart = frame.adjusted(line * 0.6, line * 1.6, -line * 0.6, -line * 0.5)
        if len(self.samples) >= 2 and chart.width() > 0 and chart.height() > 0:
            low, high = min(self.samples), max(self.samples)
            if high - low < 1e-9:
                low, high = low - 1, high + 1
            step = chart.width() / (HISTORY - 1)
            start = chart.right() - step * (len(self.samples) - 1)
            points = [
                QPointF(start + step * i, chart.bottom() - (value - low) / (high - low) * chart.height())
                for i, value in enumerate(self.samples)
            ]
            area = QPainterPath(QPointF(points[0].x(), chart.bottom()))
            for point in points:
                area.lineTo(point)
            area.lineTo(QPointF(points[-1].x(), chart.bottom()))
            fill = QColor(c.accent)
            fill.setAlpha(40)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(fill)
            painter.drawPath(area)
            curve = QPainterPath(points[0])
            for point in points[1:]:
                curve.lineTo(point)
            painter.setPen(QPen(c.accent, max(1.5, line / 9)))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawPath(curve)
            painter.setBrush(c.accent)
            painter.drawEllipse(points[-1], line / 6, line / 6)
        painter.end()


class DiagnosticsWindow(QWidget):
    """A live view of the store's metrics. Esc closes it; it always fits on the screen it opens on.

    Args:
        snapshot: Returns the current metrics (``StoreBridge.metrics_snapshot``).
        measure: Asks the store to measure what is costly to measure every second (the cache's memory and
            disk: ``StoreBridge.load_cache_usage``); called on showing and every ``MEASURE_EVERY`` refreshes.
        colors: Custom colours.
        parent: Qt parent.
    """

    def __init__(
        self,
        snapshot: Callable[[], Snapshot],
        *,
        measure: Callable[[], object] | None = None,
        colors: Colors = LIGHT,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent, Qt.WindowType.Window)
        self.setObjectName("diagnostics")
        self.setWindowTitle("Diagnostics — desktop-chat")
        self._snapshot = snapshot
        self._measure = measure
        self._refreshes = 0
        self.values: dict[str, QLabel] = {}

        grid = QGridLayout()
        unit = max(3, self.fontMetrics().height() // 3)
        grid.setHorizontalSpacing(unit * 3)
        grid.setVerticalSpacing(unit * 3)
        for position, figure in enumerate(FIGURES):
            tile = QFrame(self)
            tile.setObjectName("figureTile")
            label = QLabel(figure.label, tile)
            label.setObjectName("figureLabel")
            value = QLabel("—", tile)
            value.setObjectName("figureValue")
            value.setAccessibleName(figure.label)
            box = QVBoxLayout(tile)
            box.setContentsMargins(unit * 3, unit * 2, unit * 3, unit * 2)
            box.setSpacing(0)
            box.addWidget(label)
            box.addWidget(value)
            grid.addWidget(tile, position // 4, position % 4)
            self.values[figure.label] = value

        self.lag_chart = Sparkline("Realtime lag", "ms", colors=colors, parent=self)
        self.hit_chart = Sparkline("Cache hit rate", "%", scale=100, colors=colors, parent=self)
        self.backend_chart = Sparkline("Supabase latency p95", "ms", colors=colors, parent=self)
        charts = QGridLayout()
        charts.setSpacing(unit * 3)
        charts.addWidget(self.lag_chart, 0, 0)
        charts.addWidget(self.hit_chart, 0, 1)
        charts.addWidget(self.backend_chart, 0, 2)

        self.table = QTreeWidget(self)
        self.table.setObjectName("metricsTable")
        self.table.setAccessibleName("All metrics")
        self.table.setHeaderLabels(["Metric", "Value"])
        self.table.setRootIsDecorated(False)
        self.table.setAlternatingRowColors(True)
        self.table.setColumnWidth(0, self.fontMetrics().averageCharWidth() * 36)

        self.table.setMinimumHeight(self.fontMetrics().height() * 6)
        content = QWidget(self)
        layout = QVBoxLayout(content)
        layout.setContentsMargins(unit * 4, unit * 4, unit * 4, unit * 4)
        layout.setSpacing(unit * 4)
        layout.addLayout(grid)
        layout.addLayout(charts)
        layout.addWidget(self.table, 1)
        # On a small screen the whole page scrolls rather than running off the bottom of it.
        self.scroll_area = QScrollArea(self)
        self.scroll_area.setWidgetResizable(True)
        self.scroll_area.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll_area.setWidget(content)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(self.scroll_area)

        line = self.fontMetrics().height()
        self.resize(line * 62, line * 40)
        self._timer = QTimer(self)
        self._timer.setInterval(REFRESH_MS)
        self._timer.timeout.connect(self.refresh)

    def set_colors(self, colors: Colors) -> None:
        for chart in (self.lag_chart, self.hit_chart, self.backend_chart):
            chart.set_colors(colors)

    def refresh(self) -> None:
        """Take a snapshot now and show it."""
        self._refreshes += 1
        if self._measure is not None and self._refreshes % MEASURE_EVERY == 1:
            self._measure()  # its figures are in one of the next snapshots
        snapshot = self._snapshot()
        for figure in FIGURES:
            self.values[figure.label].setText(figure.read(snapshot))
        self.lag_chart.add(_number(lookup(snapshot, "realtime.lag_ms")))
        self.hit_chart.add(_number(_hit_rate(snapshot)))
        self.backend_chart.add(_number(_latency(snapshot, "supabase", "p95")))
        rows = list(flatten(snapshot))
        if self.table.topLevelItemCount() != len(rows):
            self.table.clear()
            for key, value in rows:
                QTreeWidgetItem(self.table, [key, _display(value)])
        else:
            for position, (key, value) in enumerate(rows):
                item = self.table.topLevelItem(position)
                assert item is not None  # the count matched just above
                item.setText(0, key)
                item.setText(1, _display(value))

    def fit_to_screen(self) -> None:
        """No taller or wider than the screen's free area, and all of it on that screen."""
        free = (self.screen() or QGuiApplication.primaryScreen()).availableGeometry()
        # What the window manager adds around it (title bar, borders) is not known before it is shown.
        width = min(self.width(), free.width() - FRAME_ALLOWANCE)
        height = min(self.height(), free.height() - FRAME_ALLOWANCE)
        if (width, height) != (self.width(), self.height()):
            self.resize(width, height)
        frame = self.frameGeometry()
        left = min(max(frame.left(), free.left()), free.right() - frame.width())
        top = min(max(frame.top(), free.top()), free.bottom() - frame.height())
        if (left, top) != (frame.left(), frame.top()):
            self.move(max(free.left(), left), max(free.top(), top))

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Escape or event.matches(QKeySequence.StandardKey.Close):
            self.close()
            return
        super().keyPressEvent(event)

    def showEvent(self, event: QShowEvent) -> None:
        self._refreshes = 0
        self.fit_to_screen()
        self.refresh()
        self._timer.start()
        super().showEvent(event)

    def hideEvent(self, event: QHideEvent) -> None:
        self._timer.stop()
        super().hideEvent(event)


def _display(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)
