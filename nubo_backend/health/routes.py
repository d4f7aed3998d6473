"""Liveness and readiness: /ping (the seed's), /health (process alive), /ready (stores
reachable, schema current, events flowing, nothing evicted, not shutting down)."""

from __future__ import annotations

import asyncio
import os
import socket
from datetime import UTC, datetime

from sanic import Blueprint, Request
from sanic.response import HTTPResponse

from nubo_backend.edge.replies import returns
from nubo_backend.health.schemas import Alive, NotReady, Pong, Ready
from nubo_backend.jsonutil import json_response
from nubo_backend.stores import Stores, check_all, short_reason
from nubo_backend.stores import redis as redis_store
from nubo_backend.stores.migrations import schema_problem

bp = Blueprint("health")

_PONG = b'{"message":"pong"}'


@bp.get("/ping")
@returns(200, Pong)
async def ping(request: Request) -> HTTPResponse:
    """The seed's liveness probe: `{"message": "pong"}`."""
    return HTTPResponse(_PONG, content_type="application/json")


@bp.get("/health")
@returns(200, Alive)
async def health(request: Request) -> HTTPResponse:
    """The process is up and serving; says nothing about the stores."""
    return json_response({"status": "ok"})


async def _schema_check(stores: Stores) -> str:
    try:
        async with asyncio.timeout(2.0):
            return await schema_problem(stores.pg) or "ok"
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        return short_reason(exc)


async def _outbox_check(stores: Stores) -> str:
    """Events committed but not announced for too long: the relay is blocked or set aside
    (a store stalled, a lock held by a connection gone silent), so nobody hears of them."""
    try:
        async with asyncio.timeout(2.0):
            backlog = await stores.sql.outbox.backlog(stores.pg)
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        return short_reason(exc)
    oldest = backlog["oldest"] if backlog else None
    if oldest is None:
        return "ok"
    age = (datetime.now(UTC) - oldest).total_seconds()
    if age > stores.settings.ready_outbox_age:
        return f"oldest event waiting {age:.0f}s ({backlog['events']} waiting)"
    return "ok"


async def _eviction_check(stores: Stores) -> str:
    """A Redis that evicts (docs/deploy.md): sessions and rate limits vanish without a word."""
    try:
        async with asyncio.timeout(2.0):
            policy, evicted = await redis_store.eviction(stores.redis)
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        return short_reason(exc)
    if redis_store.evicts_any_key(policy):
        return f"maxmemory-policy {policy} evicts any key when full"
    if evicted > stores.evicted_at_start:
        return f"{evicted - stores.evicted_at_start} key(s) evicted (maxmemory-policy {policy})"
    return "ok"


def _bus_check(request: Request) -> str:
    """The Pub/Sub subscriber has not heard from Redis for too long: sockets here get nothing."""
    hub = getattr(request.app.ctx, "hub", None)
    if hub is None:
        return "ok"
    silent = hub.bus.silent_for()
    if silent > request.app.ctx.settings.ready_bus_silence:
        return f"no answer for {silent:.0f}s"
    return "ok"


_UNREACHABLE = ("postgres", "redis", "mongo")
_HOST = socket.gethostname()


def _instance() -> dict[str, object]:
    return {"host": _HOST, "pid": os.getpid()}  # (read each time: a worker forked after import has its own)


@bp.get("/ready")
@returns(200, Ready)
@returns(503, NotReady, "A store is unreachable, the schema is not the code's, events are not flowing, "
                        "Redis evicts, or shutting down")
async def ready(request: Request) -> HTTPResponse:
    """200 when PostgreSQL, Redis and MongoDB answer, the schema is the code's, the bus hears
    Redis, no event has waited in the outbox too long and Redis evicts nothing; 503 naming
    what is wrong, and at once when the instance is shutting down (load balancers move on)."""
    if getattr(request.app.ctx, "draining", False):
        return json_response(
            {"status": "draining", "error": "Not ready: shutting down", "code": "shutting_down",
             "instance": _instance()},
            status=503,
        )
    stores = request.app.ctx.stores
    checks = await check_all(stores)
    pg_ok, redis_ok = checks["postgres"] == "ok", checks["redis"] == "ok"
    schema, outbox, eviction = await asyncio.gather(
        _schema_check(stores) if pg_ok else _not_checked(),
        _outbox_check(stores) if pg_ok else _not_checked(),
        _eviction_check(stores) if redis_ok else _not_checked(),
    )
    checks.update(schema=schema, bus=_bus_check(request), outbox=outbox, redis_eviction=eviction)
    failed = sorted(name for name, state in checks.items() if state not in ("ok", "not checked"))
    if failed:
        reasons = [f"{name} unreachable" if name in _UNREACHABLE else f"{name}: {checks[name]}" for name in failed]
        return json_response(
            {
                "status": "unavailable",
                "error": f"Not ready: {'; '.join(reasons)}",
                "code": "not_ready",
                "checks": checks,
                "instance": _instance(),
            },
            status=503,
        )
    return json_response({"status": "ok", "checks": checks, "instance": _instance()})


async def _not_checked() -> str:
    return "not checked"
