"""A small metrics registry: counters, gauges and histograms with fixed log-spaced buckets.

The composition root makes one ``MetricsRegistry`` and passes it to whatever records (the cache, the
data layer); nothing here is global. A series is a name plus string labels; asking for the same name and
labels again returns the same object. ``snapshot()`` gives a JSON-serializable dict for the diagnostics
view and ``desktop-chat doctor --json``.

Histograms count observations into fixed buckets spaced evenly on a log scale (``LATENCY_BUCKETS``:
10 per decade from 1 µs to 100 s), so memory is constant and the p50/p95/p99 estimates are within one
bucket (about 26 %) of the true value, and usually far closer, because the estimate interpolates inside
the bucket and is clamped to the observed minimum and maximum.

Everything runs on the event loop's thread; there are no locks.

Names the app records (labels in brackets)::

    cache.hits / cache.misses          [tier=redis|memory, kind=recent|chat|msgs]
    cache.latency_seconds              [tier, op]        histogram of store calls
    cache.breaker.transitions          [to=closed|open|half-open, reason]
    cache.breaker.open                 gauge, 1 while Redis is not used
    cache.redis.used_memory_bytes      gauge, INFO used_memory, polled on demand
    cache.memory.bytes / .entries      gauges of the in-process tier, polled on demand
    supabase.latency_seconds           [op]              histogram, recorded by the data layer
    errors                             [kind]            e.g. cache.timeout, cache.corrupt, supabase.http
"""

from __future__ import annotations

import bisect
import itertools
import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

__all__ = [
    "BREAKER_OPEN",
    "BREAKER_TRANSITIONS",
    "CACHE_HITS",
    "CACHE_LATENCY",
    "CACHE_MISSES",
    "ERRORS",
    "LATENCY_BUCKETS",
    "MEMORY_TIER_BYTES",
    "MEMORY_TIER_ENTRIES",
    "REDIS_USED_MEMORY",
    "SUPABASE_LATENCY",
    "Counter",
    "Gauge",
    "Histogram",
    "MetricsRegistry",
    "log_buckets",
]

CACHE_HITS = "cache.hits"
CACHE_MISSES = "cache.misses"
CACHE_LATENCY = "cache.latency_seconds"
BREAKER_TRANSITIONS = "cache.breaker.transitions"
BREAKER_OPEN = "cache.breaker.open"
REDIS_USED_MEMORY = "cache.redis.used_memory_bytes"
MEMORY_TIER_BYTES = "cache.memory.bytes"
MEMORY_TIER_ENTRIES = "cache.memory.entries"
SUPABASE_LATENCY = "supabase.latency_seconds"
REALTIME_LAG = "realtime.lag_seconds"  # a new message written on the server to its push in this client
REALTIME_JOINS = "realtime.joins"  # channel joins sent, by topic kind (user, chat)
ERRORS = "errors"


def log_buckets(low: float, high: float, per_decade: int) -> tuple[float, ...]:
    """Upper bounds from ``low`` to ``high`` (inclusive), ``per_decade`` of them per factor of ten."""
    if not 0 < low < high or per_decade < 1:
        raise ValueError("need 0 < low < high and at least one bucket per decade")
    steps = round(math.log10(high / low) * per_decade)
    return tuple(low * 10 ** (step / per_decade) for step in range(steps + 1))


LATENCY_BUCKETS = log_buckets(1e-6, 100.0, 10)


class Counter:
    """A count that only goes up."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        if amount < 0:
            raise ValueError("a counter only goes up")
        self.value += amount


class Gauge:
    """A value that is set, e.g. bytes in use."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def set(self, value: float) -> None:
        self.value = float(value)


class Histogram:
    """Observations counted in fixed buckets, with quantile estimates.

    Args:
        bounds: Ascending upper bounds; an observation ``v`` lands in the first bucket with ``v <= bound``,
            or in the overflow bucket above the last bound.
    """

    __slots__ = ("bounds", "count", "counts", "max", "min", "sum")

    def __init__(self, bounds: Sequence[float] = LATENCY_BUCKETS) -> None:
        if not bounds or any(upper <= lower for lower, upper in itertools.pairwise(bounds)):
            raise ValueError("bucket bounds must be ascending and distinct")
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)
        self.count = 0
        self.sum = 0.0
        self.min = math.inf
        self.max = -math.inf

    def observe(self, value: float) -> None:
        if math.isnan(value):
            raise ValueError("cannot observe NaN")
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.count += 1
        self.sum += value
        self.min = min(self.min, value)
        self.max = max(self.max, value)

    def quantile(self, q: float) -> float | None:
        """An estimate of the ``q`` quantile (0..1), or None before the first observation.

        Finds the bucket holding the ``ceil(q * count)``-th smallest observation and interpolates inside
        it (geometrically, as the buckets are log-spaced), clamped to the observed min and max.
        """
        if not 0 <= q <= 1:
            raise ValueError("q must be within 0..1")
        if self.count == 0:
            return None
        rank = max(1, math.ceil(q * self.count))
        seen = 0
        for index, in_bucket in enumerate(self.counts):
            if in_bucket == 0 or seen + in_bucket < rank:
                seen += in_bucket
                continue
            lower = self.bounds[index - 1] if index > 0 else self.min
            upper = self.bounds[index] if index < len(self.bounds) else self.max
            lower, upper = max(lower, self.min), min(upper, self.max)
            fraction = (rank - seen) / in_bucket
            if lower > 0 and upper > lower:
                estimate = lower * (upper / lower) ** fraction
            else:
                estimate = lower + (upper - lower) * fraction
            return float(min(max(estimate, lower), upper))  # rounding must not leave the bucket
        return self.max  # not reached: the ranks add up to count

    @contextmanager
    def time(self, clock: Callable[[], float] = time.perf_counter) -> Iterator[None]:
        """Observe how long the ``with`` block took, in seconds (also when it raises)."""
        started = clock()
        try:
            yield
        finally:
            self.observe(clock() - started)

    def summary(self) -> dict[str, Any]:
        def rounded(value: float | None) -> float | None:
            return None if value is None else float(f"{value:.6g}")

        return {
            "count": self.count,
            "sum": rounded(self.sum),
            "min": rounded(self.min) if self.count else None,
            "max": rounded(self.max) if self.count else None,
            "p50": rounded(self.quantile(0.50)),
            "p95": rounded(self.quantile(0.95)),
            "p99": rounded(self.quantile(0.99)),
            # Only non-empty buckets, to keep snapshots small; "+Inf" is the overflow bucket.
            "buckets": [
                {"le": rounded(self.bounds[i]) if i < len(self.bounds) else "+Inf", "count": n}
                for i, n in enumerate(self.counts)
                if n
            ],
        }


_Metric = TypeVar("_Metric", Counter, Gauge, Histogram)
_SeriesKey = tuple[str, tuple[tuple[str, str], ...]]


class MetricsRegistry:
    """All series of one app instance, by name and labels.

    A name belongs to one kind of metric: asking for a counter under a histogram's name is an error.
    """

    def __init__(self) -> None:
        self._series: dict[_SeriesKey, Counter | Gauge | Histogram] = {}
        self._kinds: dict[str, type] = {}

    def _get(self, kind: type[_Metric], name: str, labels: dict[str, str], make: Callable[[], _Metric]) -> _Metric:
        key: _SeriesKey = (name, tuple(sorted(labels.items())))
        metric = self._series.get(key)
        if metric is None:
            known = self._kinds.setdefault(name, kind)
            if known is not kind:
                raise TypeError(f"metric {name!r} is a {known.__name__}, not a {kind.__name__}")
            metric = self._series[key] = make()
        if not isinstance(metric, kind):
            raise TypeError(f"metric {name!r} is a {type(metric).__name__}, not a {kind.__name__}")
        return metric

    def counter(self, name: str, **labels: str) -> Counter:
        return self._get(Counter, name, labels, Counter)

    def gauge(self, name: str, **labels: str) -> Gauge:
        return self._get(Gauge, name, labels, Gauge)

    def histogram(self, name: str, bounds: Sequence[float] = LATENCY_BUCKETS, **labels: str) -> Histogram:
        return self._get(Histogram, name, labels, lambda: Histogram(bounds))

    def value(self, name: str, **labels: str) -> float:
        """A counter's or gauge's current value (0 for a series never recorded); for tests and views."""
        metric = self._series.get((name, tuple(sorted(labels.items()))))
        if metric is None:
            return 0.0
        if isinstance(metric, Histogram):
            raise TypeError(f"metric {name!r} is a histogram; use histogram(...)")
        return metric.value

    def total(self, name: str, **labels: str) -> float:
        """The sum of a counter over every series whose labels include ``labels``."""
        wanted = set(labels.items())
        return sum(
            metric.value
            for (series_name, series_labels), metric in self._series.items()
            if series_name == name and isinstance(metric, Counter) and wanted <= set(series_labels)
        )

    def snapshot(self) -> dict[str, Any]:
        """Every series, JSON-serializable: ``{"counters": {name: [{"labels", "value"}]}, "gauges": ...,
        "histograms": {name: [{"labels", "count", "sum", "min", "max", "p50", "p95", "p99", "buckets"}]}}``."""
        out: dict[str, dict[str, list[dict[str, Any]]]] = {"counters": {}, "gauges": {}, "histograms": {}}
        for (name, labels), metric in sorted(self._series.items(), key=lambda item: item[0]):
            entry: dict[str, Any] = {"labels": dict(labels)}
            if isinstance(metric, Histogram):
                entry.update(metric.summary())
                out["histograms"].setdefault(name, []).append(entry)
            elif isinstance(metric, Counter):
                entry["value"] = metric.value
                out["counters"].setdefault(name, []).append(entry)
            else:
                entry["value"] = metric.value
                out["gauges"].setdefault(name, []).append(entry)
        return out
