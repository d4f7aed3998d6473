"""metrics.tally and flush(): the hot counts reach the metrics exactly as direct calls would,
including through prometheus-client's histogram internals (`_buckets`, `_sum`)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Histogram

from nubo_backend.observability import metrics
from nubo_backend.observability.metrics import HTTP_BUCKETS, RouteTally, _add_observations


def _samples(histogram: Histogram) -> dict[tuple[str, str], float]:
    """Suffix (_bucket, _count, _sum) and bound -> value."""
    return {(s.name.rpartition("_")[2], s.labels.get("le", "")): s.value
            for family in histogram.collect() for s in family.samples if not s.name.endswith("_created")}


def test_batched_observations_equal_observe_one_by_one() -> None:
    seconds = [0.0001, 0.0005, 0.0007, 0.001, 0.3, 2.5, 11.0, 0.0025, 0.0026]  # bounds, between, beyond
    direct = Histogram("direct", "d", buckets=HTTP_BUCKETS, registry=CollectorRegistry())
    batched = Histogram("batched", "b", buckets=HTTP_BUCKETS, registry=CollectorRegistry())
    for s in seconds:
        direct.observe(s)
    counted = RouteTally("/ping", "GET")
    for s in seconds:
        counted.answered(200, s)
    _add_observations(batched, counted.buckets, counted.seconds)
    assert _samples(batched) == _samples(direct)
    assert len(_samples(direct)) == len(HTTP_BUCKETS) + 3  # every bucket, +Inf, count and sum compared


def test_flush_moves_the_tally_into_the_metrics_once() -> None:
    before = metrics.http_requests.labels("/tally-test", "GET", "201")._value.get()
    metrics.tally.route("/tally-test", "GET").answered(201, 0.002)
    metrics.tally.route("/tally-test", "GET").answered(201, None)
    metrics.flush()
    metrics.flush()
    assert metrics.http_requests.labels("/tally-test", "GET", "201")._value.get() == before + 2
    assert metrics.http_duration.labels("/tally-test", "GET")._sum.get() >= 0.002
