"""OpenTelemetry traces: off unless OTEL_EXPORTER_OTLP_ENDPOINT (or its _TRACES_ variant) is
set; then a span per HTTP request (observability/http.py) with child spans for the SQL,
Redis and MongoDB calls made under it, exported over OTLP/HTTP.

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

import logging
import os
from typing import Any

from sanic.request import Request

log = logging.getLogger("nubo.tracing")

DEFAULT_SERVICE_NAME = "nubo-backend"
_ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


def tracing_wanted(environ: dict[str, str] | os._Environ[str] = os.environ) -> bool:
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return any(environ.get(name, "").strip() for name in _ENDPOINT_VARIABLES)


def setup_tracing() -> RequestSpans | None:
    """The tracer for requests when tracing is wanted (installing the SDK once per process), else None."""
    if not tracing_wanted():
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
