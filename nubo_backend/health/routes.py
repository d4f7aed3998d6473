"""Liveness and readiness: /ping (the seed's), /health (process alive), /ready (stores reachable)."""

from __future__ import annotations

from sanic import Blueprint, Request
from sanic.response import HTTPResponse

from nubo_backend.jsonutil import json_response
from nubo_backend.stores import check_all

bp = Blueprint("health")

_PONG = b'{"message":"pong"}'


@bp.get("/ping")
async def ping(request: Request) -> HTTPResponse:
    """The seed's liveness probe: `{"message": "pong"}`."""
    return HTTPResponse(_PONG, content_type="application/json")


@bp.get("/health")
async def health(request: Request) -> HTTPResponse:
    """The process is up and serving; says nothing about the stores."""
    return json_response({"status": "ok"})


@bp.get("/ready")
async def ready(request: Request) -> HTTPResponse:
    """200 when PostgreSQL, Redis and MongoDB all answer; 503 naming those that do not."""
    checks = await check_all(request.app.ctx.stores)
    failed = sorted(name for name, state in checks.items() if state != "ok")
    if failed:
        return json_response(
            {
                "status": "unavailable",
                "error": f"Not ready: {', '.join(failed)} unreachable",
                "code": "not_ready",
                "checks": checks,
            },
            status=503,
        )
    return json_response({"status": "ok", "checks": checks})
