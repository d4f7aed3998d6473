"""Every Prometheus metric of nubo, defined here and only here (prometheus-client's registry).

Code elsewhere records with one call on a metric below (`metrics.ws_opens.inc()`); what each
means is in docs/observability.md. Under `nubo serve --workers N` prometheus-client's
multiprocess mode is on (PROMETHEUS_MULTIPROC_DIR, set by `exporter.prepare_multiprocess`
before this module is first imported): each worker writes its values to memory-mapped files
that the main process adds up when scraped. `multiprocess_mode` says how a gauge combines
across workers ("live": only the workers still running).

Gauges that describe state rather than events (pool sizes, stores up, the outbox backlog)
are sampled every `metrics_sample_interval` seconds by `sampler.py`, not at scrape time:
the scrape may be served by a process (the workers' parent) that holds no store.

The hottest figures (every request, every WebSocket frame, every cached read) are counted in
`tally`, plain numbers, and added to their metrics by `flush()` once a second (sampler.py):
a prometheus-client increment takes a lock (about 0.5 µs, a histogram's observe 2 µs: 3.5 µs
an answer in all), where the tally's update of an answer takes 0.8 µs (docs/benchmarks.md).
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

# Request durations: a page answers in about a millisecond on one core, a login in tens.
HTTP_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Relay batches and commit-to-publish: milliseconds when well, up to BATCH_TIMEOUT (10 s) when not.
RELAY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

# -- HTTP (observability/http.py, one adapter on every answer) ------------------------------
http_requests = Counter(
    "nubo_http_requests", "HTTP requests answered, by route template, method and status.",
    ["route", "method", "status"],
)
http_duration = Histogram(
    "nubo_http_request_duration_seconds",
    "Time from a request's first bytes to its response head, by route template and method.",
    ["route", "method"], buckets=HTTP_BUCKETS,
)
http_in_flight = Gauge(
    "nubo_http_requests_in_flight", "HTTP requests read and not yet answered (WebSocket upgrades excluded).",
    multiprocess_mode="livesum",
)

# -- WebSocket (realtime/routes.py, realtime/connection.py) --------------------------------
ws_open = Gauge("nubo_ws_connections", "WebSocket connections open now.", multiprocess_mode="livesum")
ws_opens = Counter("nubo_ws_opens", "WebSocket connections accepted (after the handshake).")
ws_closes = Counter("nubo_ws_closes", "WebSocket connections ended, by close code (1006: no close frame).",
                    ["code"])
ws_frames = Counter("nubo_ws_frames", "WebSocket frames, by direction (in: from clients; out: to them).",
                    ["direction"])
ws_refusals = Counter(
    "nubo_ws_refusals",
    "WebSocket sockets or frames refused, by reason (too_many_connections, starting, rate_limited, busy).",
    ["reason"],
)
ws_drops = Counter("nubo_ws_drops", "Sockets dropped by the server, by reason (slow_consumer, no_pong, "
                   "events_unavailable).", ["reason"])
ws_resumes = Counter("nubo_ws_resumes", "Resumes from a last_event_id, by outcome (replayed, resync).",
                     ["outcome"])

# -- Delivery: the outbox relay, per lane --------------------------------------------------
relay_batch_seconds = Histogram("nubo_relay_batch_seconds", "Duration of one relay batch, by lane.", ["lane"],
                                buckets=RELAY_BUCKETS)
relay_deliveries = Counter("nubo_relay_deliveries", "Outbox events relayed (journaled and published), by lane.",
                           ["lane"])
relay_set_aside = Counter("nubo_relay_set_aside", "Outbox events set aside (not deliverable now), by lane.",
                          ["lane"])
relay_commit_to_publish = Histogram(
    "nubo_relay_commit_to_publish_seconds", "From an event's commit (outbox row created) to its publication, by lane.",
    ["lane"], buckets=RELAY_BUCKETS,
)
outbox_backlog = Gauge("nubo_outbox_backlog_events", "Outbox rows waiting for the relay, by lane.", ["lane"],
                       multiprocess_mode="livemax")
outbox_oldest_age = Gauge("nubo_outbox_oldest_age_seconds",
                          "Age of the oldest outbox row waiting for the relay (0: none), by lane.", ["lane"],
                          multiprocess_mode="livemax")

# -- Stores ------------------------------------------------------------------------------
store_up = Gauge("nubo_store_up", "1 if the store answered its last check, 0 if not.", ["store"],
                 multiprocess_mode="livemin")
store_errors = Counter("nubo_store_errors", "Requests answered 503 because a store was out of reach, by store.",
                       ["store"])
# By the name errors.py gives each store.
store_errors_by_name = {name: store_errors.labels(label)
                        for name, label in (("PostgreSQL", "postgres"), ("Redis", "redis"), ("MongoDB", "mongo"))}
pool_size = Gauge("nubo_pool_connections",
                  "Connections in a store's pool, by store and state (idle, busy; mongo also opening).",
                  ["store", "state"], multiprocess_mode="livesum")
pool_max = Gauge("nubo_pool_max_connections", "Size limit of a store's pool.", ["store"],
                 multiprocess_mode="livesum")
pool_wait = Histogram(
    "nubo_pool_wait_seconds",
    "Time to check a connection out of a store's pool (waiting for a free one, or opening one), by store "
    "(mongo: observability/mongo_pool.py).",
    ["store"], buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                        2.5, 5.0),
)
cache_lookups = Counter("nubo_cache_lookups", "Read-through cache lookups by result (hit, miss).", ["result"])

# -- Auth and abuse ----------------------------------------------------------------------
logins = Counter("nubo_auth_logins", "Login attempts by outcome (success, or the error code answered).",
                 ["outcome"])
rate_limited = Counter("nubo_rate_limit_refusals", "Requests refused by a rate limit (429), by limit.", ["limit"])


class RouteTally:
    """One route template and method's answers since the last flush."""

    __slots__ = ("route", "method", "statuses", "buckets", "seconds")

    def __init__(self, route: str, method: str) -> None:
        self.route, self.method = route, method
        self.statuses: dict[int, int] = {}
        self.buckets = [0] * (len(HTTP_BUCKETS) + 1)  # (+Inf last)
        self.seconds = 0.0

    def answered(self, status: int, seconds: float | None) -> None:
        statuses = self.statuses
        statuses[status] = statuses.get(status, 0) + 1
        if seconds is not None:
            self.buckets[bisect_left(HTTP_BUCKETS, seconds)] += 1  # (the first bound >= seconds: `le`)
            self.seconds += seconds


class Tally:
    """The hottest counts as plain numbers, on the event loop's thread; `flush` adds them up."""

    __slots__ = ("routes", "http_in_flight", "ws_frames_in", "ws_frames_out", "cache_hits", "cache_misses")

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], RouteTally] = {}
        self.http_in_flight = 0
        self.ws_frames_in = self.ws_frames_out = 0
        self.cache_hits = self.cache_misses = 0

    def route(self, route: str, method: str) -> RouteTally:
        """The tally of a route template and method (callers keep it: looked up once)."""
        found = self.routes.get((route, method))
        if found is None:
            found = self.routes[(route, method)] = RouteTally(route, method)
        return found

    def cache_read(self, hits: int, misses: int) -> None:
        self.cache_hits += hits
        self.cache_misses += misses


tally = Tally()


def flush() -> None:
    """Add what `tally` counted since the last flush to the metrics (once a second, sampler.py)."""
    for counted in tally.routes.values():
        if not counted.statuses:
            continue
        for status, count in counted.statuses.items():
            http_requests.labels(counted.route, counted.method, str(status)).inc(count)
        counted.statuses.clear()
        if any(counted.buckets):
            _add_observations(http_duration.labels(counted.route, counted.method), counted.buckets, counted.seconds)
            counted.buckets[:] = [0] * len(counted.buckets)
            counted.seconds = 0.0
    http_in_flight.set(tally.http_in_flight)
    for name, child in (("ws_frames_in", _frames_in), ("ws_frames_out", _frames_out),
                        ("cache_hits", _cache_hits), ("cache_misses", _cache_misses)):
        count = getattr(tally, name)
        if count:
            setattr(tally, name, 0)
            child.inc(count)


_frames_in, _frames_out = ws_frames.labels(direction="in"), ws_frames.labels(direction="out")
_cache_hits, _cache_misses = cache_lookups.labels(result="hit"), cache_lookups.labels(result="miss")


def _add_observations(child: Any, buckets: list[int], seconds: float) -> None:
    """Many observations at once, into prometheus-client's histogram child: `_buckets` (one
    value per bucket, not cumulative, +Inf last) and `_sum`, as its `observe` writes them
    (pinned by tests/test_metrics_tally.py against `observe`)."""
    for bucket, count in zip(child._buckets, buckets, strict=True):
        if count:
            bucket.inc(count)
    child._sum.inc(seconds)
