"""The metrics registry: series identity, histogram math, quantile estimates, JSON snapshots."""

from __future__ import annotations

import itertools
import json
import math

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from desktop_chat.telemetry.metrics import LATENCY_BUCKETS, Histogram, MetricsRegistry, log_buckets


def test_log_buckets_are_evenly_spaced_on_a_log_scale() -> None:
    bounds = log_buckets(1e-3, 1.0, 3)
    assert len(bounds) == 10
    assert bounds[0] == pytest.approx(1e-3) and bounds[-1] == pytest.approx(1.0)
    ratios = {round(b / a, 9) for a, b in itertools.pairwise(bounds)}
    assert ratios == {round(10 ** (1 / 3), 9)}
    assert len(LATENCY_BUCKETS) == 81 and LATENCY_BUCKETS[0] == pytest.approx(1e-6)


@pytest.mark.parametrize("args", [(0, 1, 3), (1, 1, 3), (1e-3, 1, 0)])
def test_log_buckets_refuse_nonsense(args: tuple[float, float, int]) -> None:
    with pytest.raises(ValueError, match="need"):
        log_buckets(*args)


def test_the_same_name_and_labels_give_the_same_series() -> None:
    registry = MetricsRegistry()
    registry.counter("cache.hits", tier="redis", kind="msgs").inc()
    registry.counter("cache.hits", kind="msgs", tier="redis").inc(2)
    registry.counter("cache.hits", tier="memory", kind="msgs").inc()
    assert registry.value("cache.hits", tier="redis", kind="msgs") == 3
    assert registry.total("cache.hits") == 4
    assert registry.total("cache.hits", kind="msgs") == 4
    assert registry.total("cache.hits", tier="memory") == 1
    assert registry.value("cache.hits", tier="nowhere", kind="msgs") == 0


def test_a_name_keeps_its_kind() -> None:
    registry = MetricsRegistry()
    registry.counter("errors", kind="x")
    with pytest.raises(TypeError):
        registry.histogram("errors", kind="y")
    with pytest.raises(TypeError):
        registry.gauge("errors", kind="x")


def test_counters_only_go_up_and_gauges_are_set() -> None:
    registry = MetricsRegistry()
    with pytest.raises(ValueError, match="only goes up"):
        registry.counter("c").inc(-1)
    registry.gauge("g").set(5)
    registry.gauge("g").set(3)
    assert registry.value("g") == 3


def test_histogram_counts_into_the_right_buckets() -> None:
    h = Histogram([1, 2, 4])
    for value in (0.5, 1, 1.5, 4, 9):
        h.observe(value)
    assert h.counts == [2, 1, 1, 1]  # <=1, <=2, <=4, overflow
    assert (h.count, h.sum, h.min, h.max) == (5, 16, 0.5, 9)
    with pytest.raises(ValueError, match="NaN"):
        h.observe(math.nan)
    with pytest.raises(ValueError, match="ascending"):
        Histogram([1, 1, 2])


def test_quantiles_of_an_empty_histogram_are_unknown() -> None:
    assert Histogram().quantile(0.5) is None
    with pytest.raises(ValueError, match="within"):
        Histogram().quantile(1.5)


def test_one_observation_is_every_quantile() -> None:
    h = Histogram()
    h.observe(0.0123)
    assert h.quantile(0.5) == pytest.approx(0.0123) and h.quantile(0.99) == pytest.approx(0.0123)


def test_quantiles_of_a_uniform_spread() -> None:
    h = Histogram()
    for i in range(1, 1001):
        h.observe(i / 1000)  # 1 ms .. 1 s
    ratio = 10 ** (1 / 10)
    for q, true in ((0.5, 0.5), (0.95, 0.95), (0.99, 0.99)):
        estimate = h.quantile(q)
        assert estimate is not None and true / ratio <= estimate <= true * ratio


latencies = st.floats(min_value=0, max_value=500, allow_nan=False)


@given(st.lists(latencies, min_size=1, max_size=300), st.sampled_from([0.0, 0.5, 0.9, 0.95, 0.99, 1.0]))
@example([0.0, 405.482421875], 0.9)  # interpolation once rounded one ulp past the observed maximum
def test_an_estimate_lies_in_the_bucket_of_the_true_quantile(values: list[float], q: float) -> None:
    h = Histogram()
    for value in values:
        h.observe(value)
    ordered = sorted(values)
    true = ordered[max(1, math.ceil(q * len(values))) - 1]  # nearest-rank definition
    index = next((i for i, bound in enumerate(h.bounds) if true <= bound), len(h.bounds))
    lower = max(h.bounds[index - 1] if index > 0 else h.min, h.min)
    upper = min(h.bounds[index] if index < len(h.bounds) else h.max, h.max)
    estimate = h.quantile(q)
    assert estimate is not None
    assert lower - 1e-12 <= estimate <= upper + 1e-12
    assert h.min <= estimate <= h.max


def test_timing_a_block_uses_the_given_clock_even_when_it_raises() -> None:
    ticks = iter([10.0, 10.25, 20.0, 21.0])
    h = Histogram()
    with h.time(clock=lambda: next(ticks)):
        pass
    with pytest.raises(KeyError), h.time(clock=lambda: next(ticks)):
        raise KeyError("x")
    assert h.count == 2 and h.sum == pytest.approx(1.25)


def test_snapshot_is_json_and_holds_every_series() -> None:
    registry = MetricsRegistry()
    registry.counter("cache.hits", tier="redis", kind="chat").inc(3)
    registry.gauge("cache.redis.used_memory_bytes").set(1_048_576)
    latency = registry.histogram("supabase.latency_seconds", op="messages")
    for value in (0.010, 0.012, 0.5, 1000.0):
        latency.observe(value)
    snapshot = json.loads(json.dumps(registry.snapshot(), allow_nan=False))
    assert snapshot["counters"]["cache.hits"] == [{"labels": {"kind": "chat", "tier": "redis"}, "value": 3}]
    assert snapshot["gauges"]["cache.redis.used_memory_bytes"][0]["value"] == 1_048_576
    (series,) = snapshot["histograms"]["supabase.latency_seconds"]
    assert series["labels"] == {"op": "messages"} and series["count"] == 4
    assert series["min"] == 0.01 and series["max"] == 1000
    assert series["p50"] is not None and 0.01 <= series["p50"] <= 0.0126
    assert sum(bucket["count"] for bucket in series["buckets"]) == 4
    assert series["buckets"][-1] == {"le": "+Inf", "count": 1}


def test_an_empty_histogram_snapshots_cleanly() -> None:
    registry = MetricsRegistry()
    registry.histogram("cache.latency_seconds", tier="redis", op="get")
    (series,) = json.loads(json.dumps(registry.snapshot(), allow_nan=False))["histograms"]["cache.latency_seconds"]
    assert series["count"] == 0 and series["p99"] is None and series["min"] is None and series["buckets"] == []
