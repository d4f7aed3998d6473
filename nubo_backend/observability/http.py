"""The one adapter between HTTP answers and observability: metrics for every request, and the
request's span when tracing is on, as plain calls at the request's head and its answer's head
(serving/http_protocol.py says why not middleware)."""

from __future__ import annotations

import re
from bisect import bisect_left
from time import perf_counter

from nubo_backend.observability import metrics
from nubo_backend.observability.tracing import RequestSpans
from nubo_backend.serving.http_protocol import NuboHttp, NuboSanic

# What a request matched no route of (404, 405, or a head refused before routing): one label,
# so that scanners probing random paths do not create a series per path.
UNMATCHED = "unmatched"
# Methods a client may send are any token: the rest share one label, for the same reason.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_PARAMETER = re.compile(r"<([^:>]+)(?::[^>]*)?>")


def route_template(path: str) -> str:
    """A Sanic route path as OpenAPI writes it: `posts/<post_id:id>/comments` -> `/posts/{post_id}/comments`."""
    return "/" + _PARAMETER.sub(r"{\1}", path)


def observe_http(app: NuboSanic, spans: RequestSpans | None) -> None:
    """Count and time every answer of app, and (spans given) trace it. Two plain calls per
    request on the hottest path there is: written for speed (docs/benchmarks.md)."""
    tally = metrics.tally
    buckets = metrics.HTTP_BUCKETS
    # Route path (None: unmatched) -> method -> its tally, each looked up in the Tally once.
    tallies: dict[str | None, dict[str, metrics.RouteTally]] = {}

    def tally_of(path: str | None, method: str) -> metrics.RouteTally:
        found = tally.route(UNMATCHED if path is None else route_template(path),
                            method if method in KNOWN_METHODS else "other")
        tallies.setdefault(path, {})[method] = found
        return found

    @app.after_request_head
    def request_started(http: NuboHttp) -> None:
        headers = http.request.headers
        if "upgrade" in headers and headers.get("upgrade", "").lower() == "websocket":
            return  # a socket, counted by the WebSocket metrics; its 101 has no response hook
        tally.http_in_flight += 1
        http.observed = spans.start(http.request) if spans is not None else True

    @app.before_response_head
    def request_answered(http: NuboHttp) -> None:
        observed = http.observed
        if observed is not None:
            http.observed = None
            tally.http_in_flight -= 1
        request, status, started = http.request, http.response.status, http.started
        matched = request.route
        by_method = tallies.get(matched.path if matched is not None else None)
        counted = by_method.get(request.method) if by_method is not None else None
        if counted is None:
            counted = tally_of(matched.path if matched is not None else None, request.method)
        statuses = counted.statuses  # (RouteTally.answered, inlined)
        statuses[status] = statuses.get(status, 0) + 1
        if started is not None:
            seconds = perf_counter() - started
            counted.buckets[bisect_left(buckets, seconds)] += 1
            counted.seconds += seconds
        if spans is not None and observed is not None and observed is not True:
            spans.end(observed, counted.route, status)
