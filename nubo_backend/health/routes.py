"""Liveness and readiness: /ping (the seed's), /health (process alive), /ready (stores
reachable, schema current, not shutting down)."""

from __future__ import annotations

import asyncio

from sanic import Blueprint, Request
from sanic.response import HTTPResponse

from nubo_backend.health.schemas import Alive, NotReady, Pong, Ready
from nubo_backend.jsonutil import json_response
from nubo_backend.migrations import schema_problem
from nubo_backend.replies import returns
from nubo_backend.stores import Stores, check_all, short_reason

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
        return await asyncio.wait_for(schema_problem(stores.pg), 2.0) or "ok"
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        return short_reason(exc)


@bp.get("/ready")
@returns(200, Ready)
@returns(503, NotReady, "A store is unreachable, the schema is not the code's, or shutting down")
async def ready(request: Request) -> HTTPResponse:
    """200 when PostgreSQL, Redis and MongoDB answer and the schema is the code's; 503 naming
    what is wrong, and at once when the instance is shutting down (load balancers move on)."""
    if getattr(request.app.ctx, "draining", False):
        return json_response(
            {"status": "draining", "error": "Not ready: shutting down", "code": "shutting_down"},
            status=503,
        )
    stores = request.app.ctx.stores
    checks = await check_all(stores)
    checks["schema"] = await _schema_check(stores) if checks["postgres"] == "ok" else "not checked"
    failed = sorted(name for name, state in checks.items() if state != "ok")
    if failed:
        reasons = [f"{name} unreachable" if name != "schema" else f"schema: {checks[name]}" for name in failed]
        return json_response(
            {
                "status": "unavailable",
                "error": f"Not ready: {'; '.join(reasons)}",
                "code": "not_ready",
                "checks": checks,
            },
            status=503,
        )
    return json_response({"status": "ok", "checks": checks})
