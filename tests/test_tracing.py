"""OpenTelemetry traces from a real instance, received by an OTLP/HTTP endpoint of the test's own."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from nubo_backend.observability.tracing import tracing_on, tracing_wanted
from nubo_backend.outbox import Event, announce
from nubo_backend.stores import Stores
from tests.factories import make_user


class Collector:
    """The smallest OTLP/HTTP trace receiver: every span posted to /v1/traces, as dicts."""

    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                request = ExportTraceServiceRequest.FromString(body)
                for resource in request.resource_spans:
                    service = {a.key: a.value.string_value for a in resource.resource.attributes}
                    for scope in resource.scope_spans:
                        for span in scope.spans:
                            collector.spans.append({
                                "name": span.name, "trace_id": span.trace_id.hex(), "span_id": span.span_id.hex(),
                                "parent": span.parent_span_id.hex(), "service": service.get("service.name"),
                                "attributes": {a.key: _plain(a.value) for a in span.attributes},
                                "links": [(link.trace_id.hex(), link.span_id.hex()) for link in span.links],
                            })
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def wait_for(self, name: str, within: float = 20.0, where: Any = None) -> dict[str, Any]:
        """The first span called `name` (and for which `where(span)` holds, when given)."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            for span in list(self.spans):
                if span["name"] == name and (where is None or where(span)):
                    return span
            time.sleep(0.1)
        raise AssertionError(f"no span {name!r} among {[s['name'] for s in self.spans]}")

    def children(self, span: dict[str, Any]) -> list[dict[str, Any]]:
        return [s for s in self.spans if s["parent"] == span["span_id"] and s["trace_id"] == span["trace_id"]]


def _plain(value: Any) -> Any:
    return getattr(value, value.WhichOneof("value")) if value.WhichOneof("value") else None


@pytest.fixture
def collector() -> Iterator[Collector]:
    found = Collector()
    found.thread.start()
    yield found
    found.server.shutdown()
    found.server.server_close()


def test_tracing_is_off_unless_an_otlp_endpoint_is_set() -> None:
    assert not tracing_wanted({})
    assert tracing_wanted({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"})
    assert tracing_wanted({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"})
    assert not tracing_wanted({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_SDK_DISABLED": "true"})


async def test_a_sent_message_is_one_trace_with_its_stores_calls_then_a_relay_batch_linked_to_it(
    own_stores: Stores, start_patiently, collector: Collector,
) -> None:
    """The request's span has its SQL as children; the relay's batch that publishes its event is
    the root of a trace of its own (a batch serves many requests), linked to the request's span,
    with the batch's journal write (MongoDB) and publish (Redis) as its children."""
    # The traced server on stores of its own: the session's untraced servers share the test
    # database, and one of their relays would take the batch (no span).
    stores, own = own_stores, own_stores.settings
    server = start_patiently({
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url, "OTEL_BSP_SCHEDULE_DELAY": "100",
        "NUBO_POSTGRES_DSN": own.postgres_dsn, "NUBO_MONGO_DB": own.mongo_db,
        "NUBO_REDIS_NAMESPACE": own.redis_namespace,
    })
    alice, bob = await make_user(stores), await make_user(stores)
    async with httpx.AsyncClient(base_url=server.url, timeout=10, headers=alice.headers) as api:
        conversation = (await api.post("/conversations", json={"user_id": bob.id})).json()
        sent = await api.post(f"/conversations/{conversation['id']}/messages", json={"body": "hello"})
        assert sent.status_code == 201, sent.text

    request = collector.wait_for("POST /conversations/{conversation_id}/messages")
    assert request["service"] == "nubo-backend"
    assert request["parent"] == ""  # a root: no traceparent came with the request
    assert request["attributes"]["http.route"] == "/conversations/{conversation_id}/messages"
    assert request["attributes"]["http.response.status_code"] == 201
    # Children end before their parent: queued before it, they were exported with it or before.
    children = collector.children(request)
    systems = {child["attributes"].get("db.system") or child["attributes"].get("db.system.name")
               for child in children}
    assert "postgresql" in systems, children
    assert f"trace_id={request['trace_id']}" in server.output()  # the access line names its trace

    linked = (request["trace_id"], request["span_id"])
    batch = collector.wait_for("relay batch", where=lambda span: linked in span["links"])
    assert batch["parent"] == "" and batch["trace_id"] != request["trace_id"]  # linked, not a child
    assert batch["attributes"]["nubo.relay.lane"] >= 0
    # The batch's calls end before it does: exported with it or before.
    calls = collector.children(batch)
    commands = [(c["attributes"].get("db.system") or c["attributes"].get("db.system.name"), c["name"])
                for c in calls]
    assert any(system == "mongodb" and "insert" in name for system, name in commands), commands
    assert any(system == "redis" and "PUBLISH" in name for system, name in commands), commands


async def test_with_tracing_off_an_announced_row_carries_no_trace_context(stores: Stores) -> None:
    assert not tracing_on()  # (this test process exports no traces)
    user = await make_user(stores)
    async with stores.pg.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        try:  # (read before the commit, so that no relay takes the row first; then rolled back)
            await announce(conn, stores, Event([user.id], "post.created", {"post_id": 1}))
            row = await conn.fetchrow("SELECT trace_context FROM outbox WHERE recipients = $1", [user.id])
        finally:
            await transaction.rollback()
    assert row is not None and row["trace_context"] is None


def test_a_caller_traceparent_becomes_the_request_span_parent(start_patiently, collector: Collector) -> None:
    server = start_patiently({"OTEL_EXPORTER_OTLP_ENDPOINT": collector.url, "OTEL_BSP_SCHEDULE_DELAY": "100"})
    trace_id, parent = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    assert httpx.get(f"{server.url}/health", headers={"traceparent": f"00-{trace_id}-{parent}-01"}).status_code == 200
    span = collector.wait_for("GET /health")
    assert (span["trace_id"], span["parent"]) == (trace_id, parent)
