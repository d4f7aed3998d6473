"""The one adapter between HTTP answers and observability: metrics for every request, and the
request's span when tracing is on, as plain calls at the request's head and its answer's head
(serving/http_protocol.py says why not middleware)."""

from __future__ import annotations

import re
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
    """Count and time every answer of app, and (spans given) trace it."""
    tally = metrics.tally
    # Route path (None: unmatched) -> method -> its tally, each looked up in the Tally once.
    tallies: dict[str | None, dict[str, metrics.RouteTally]] = {}

    def tally_of(path: str | None, method: str) -> metrics.RouteTally:
        found = tally.route(UNMATCHED if path is None else route_template(path), method)
        tallies.setdefault(path, {})[method] = found
        return found

    @app.after_request_head
    def request_started(http: NuboHttp) -> None:
        request = http.request
        headers = request.headers
        if "upgrade" in headers and headers.get("upgrade", "").lower() == "websocket":
            return  # a socket, counted by the WebSocket metrics; its 101 has no response hook
        tally.http_in_flight += 1
        http.observed = spans.start(request) if spans is not None else True

    @app.before_response_head
    def request_answered(http: NuboHttp) -> None:
        request, status = http.request, http.response.status
        observed = http.observed
        if observed is not None:
            http.observed = None
            tally.http_in_flight -= 1
        matched = request.route
        path = matched.path if matched is not None else None
        method = request.method
        counted = tallies.get(path, {}).get(method)
        if counted is None:
            counted = tally_of(path, method if method in KNOWN_METHODS else "other")
        started = http.started
        counted.answered(status, perf_counter() - started if started is not None else None)
        if spans is not None and observed is not None and observed is not True:
            spans.end(observed, counted.route, status)
