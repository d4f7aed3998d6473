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
    templates: dict[str, str] = {}  # each route's template, made once

    @app.after_request_head
    def request_started(http: NuboHttp) -> None:
        request = http.request
        if request.headers.get("upgrade", "").lower() == "websocket":
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
        method = request.method if request.method in KNOWN_METHODS else "other"
        matched = request.route
        if matched is None:
            route = UNMATCHED
        elif (route := templates.get(matched.path)) is None:
            route = templates[matched.path] = route_template(matched.path)
        started = http.started
        tally.http_answered(route, method, status, perf_counter() - started if started is not None else None)
        if spans is not None and observed is not None and observed is not True:
            spans.end(observed, route, status)
