"""OpenTelemetry traces: off unless OTEL_EXPORTER_OTLP_ENDPOINT (or its _TRACES_ variant) is
set; then a span per HTTP request (observability/http.py) with child spans for the SQL,
Redis and MongoDB calls made under it, exported over OTLP/HTTP.

Events announced by a request are relayed later, in batches that serve many requests: the
outbox row keeps the announcing span's W3C `traceparent` (`announcing_trace_context`), and
the relay's batch span (`RelaySpans`) is the root of a trace of its own, with a span Link to
each of its rows' requests. Its children are the batch's MongoDB, Redis (the publish) and SQL
calls. With tracing off nothing is written to the row and the relay opens no span.

Everything else follows the standard OTEL_* variables, read by the SDK itself:
OTEL_SERVICE_NAME (default here: nubo-backend), OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER
and its _ARG, OTEL_EXPORTER_OTLP_HEADERS, OTEL_BSP_* (batching), OTEL_SDK_DISABLED.

Child spans come from OpenTelemetry's own instrumentations, which patch the clients' classes
for the whole process: asyncpg (every query), redis-py (every command and pipeline) and
PyMongo (its command monitoring). The hot cached reads on stores/redis_reads.py's own
connection do not go through redis-py and have no span. With tracing off nothing is patched
and the HTTP adapter takes no tracing branch: the cost is none (docs/benchmarks.md).
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Iterable
from contextlib import AbstractContextManager
from typing import Any

from sanic.request import Request

log = logging.getLogger("nubo.tracing")

DEFAULT_SERVICE_NAME = "nubo-backend"
_ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


def tracing_wanted(environ: dict[str, str] | os._Environ[str] = os.environ) -> bool:
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return any(environ.get(name, "").strip() for name in _ENDPOINT_VARIABLES)


@functools.cache
def tracing_on() -> bool:
    """Whether this process traces: `tracing_wanted` read once (the SDK reads its variables
    once too), so that the paths asking on every event pay one call with tracing off."""
    return tracing_wanted()


def setup_tracing() -> RequestSpans | None:
    """The tracer for requests when tracing is wanted (installing the SDK once per process), else None."""
    if not tracing_on():
        return None
    from opentelemetry import trace
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider

    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):  # (create_app may run more than once in a process)
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        attributes = {} if os.environ.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: DEFAULT_SERVICE_NAME}
        provider = TracerProvider(resource=Resource.create(attributes))
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        trace.set_tracer_provider(provider)
        _instrument_store_clients()
        log.info("tracing on: spans exported over OTLP/HTTP")
    return RequestSpans(provider.get_tracer("nubo_backend"), provider)


def _instrument_store_clients() -> None:
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
    from opentelemetry.instrumentation.pymongo import PymongoInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    for instrumentor in (AsyncPGInstrumentor(), RedisInstrumentor(), PymongoInstrumentor()):
        if not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument()


class RequestSpans:
    """The server span of each request, current while its handler runs so that the stores'
    spans become its children; the caller's `traceparent` header, if any, is its parent."""

    def __init__(self, tracer: Any, provider: Any) -> None:
        from opentelemetry import context, propagate, trace

        self.tracer = tracer
        self.provider = provider
        self._extract = propagate.extract
        self._attach, self._detach = context.attach, context.detach
        self._in_context = trace.set_span_in_context
        self._server = trace.SpanKind.SERVER
        self._error = trace.Status(trace.StatusCode.ERROR)

    def start(self, request: Request) -> tuple[Any, object]:
        parent = self._extract(request.headers) if "traceparent" in request.headers else None
        span = self.tracer.start_span(
            request.method, context=parent, kind=self._server,
            attributes={"http.request.method": request.method, "url.path": request.path},
        )
        return span, self._attach(self._in_context(span))

    def end(self, started: tuple[Any, object], route: str, status: int) -> None:
        span, token = started
        span.update_name(f"{span.name} {route}")
        span.set_attribute("http.route", route)
        span.set_attribute("http.response.status_code", status)
        if status >= 500:
            span.set_status(self._error)
        span.end()
        self._detach(token)

    def flush(self, timeout_ms: int = 5000) -> None:
        self.provider.force_flush(timeout_ms)


def current_trace_id() -> str:
    """The current span's trace id in hex (the access line's `trace_id`), or "" outside a trace."""
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else ""


def announcing_trace_context() -> str | None:
    """The current span's W3C `traceparent`, for the outbox rows a request announces (the
    relay links its batch to it); None with tracing off or outside any span."""
    if not tracing_on():
        return None
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier)  # (nothing when no valid span is current)
    return carrier.get("traceparent")


def relay_spans() -> RelaySpans | None:
    """The relay's batch spans when this process traces, else None."""
    return RelaySpans() if tracing_on() else None


class RelaySpans:
    """A span per relay batch, current while the batch journals and publishes (so those calls
    are its children), in a trace of its own: a batch serves many requests, so each announcing
    request is a Link, not the parent. Beyond the SDK's link limit (OTEL_SPAN_LINK_COUNT_LIMIT,
    128) links are dropped and counted by the SDK."""

    def __init__(self) -> None:
        from opentelemetry import trace
        from opentelemetry.context import Context
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        self.tracer = trace.get_tracer("nubo_backend.relay")
        self._root = Context()  # (no parent, whatever is current)
        self._extract = TraceContextTextMapPropagator().extract
        self._span_of = trace.get_current_span
        self._link = trace.Link
        self._producer = trace.SpanKind.PRODUCER

    def batch(self, lane: int, trace_contexts: Iterable[str | None], rows: int) -> AbstractContextManager[Any]:
        """The span of one batch of `rows` outbox rows of `lane`, linked to the rows' contexts."""
        links = []
        for traceparent in dict.fromkeys(c for c in trace_contexts if c):  # (one link per request)
            linked = self._span_of(self._extract({"traceparent": traceparent})).get_span_context()
            if linked.is_valid:
                links.append(self._link(linked))
        return self.tracer.start_as_current_span(
            "relay batch", context=self._root, kind=self._producer, links=links,
            attributes={"nubo.relay.lane": lane, "messaging.batch.message_count": rows},
        )
