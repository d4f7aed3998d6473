"""GET /ws (the authenticated WebSocket) and GET /broadcast (the last broadcast lines)."""

from __future__ import annotations

import logging

from pydantic import Field
from sanic import Blueprint, Request, Sanic
from sanic.response import HTTPResponse
from sanic.server.websockets.impl import WebsocketImplProtocol
from sanic_ext import openapi

from nubo_backend.auth.guard import authenticate, caller_id, require_auth
from nubo_backend.edge.pagination import PageQuery, decode_cursor, page_parameters
from nubo_backend.edge.replies import returns
from nubo_backend.edge.validation import Query, parse_query
from nubo_backend.jsonutil import json_response
from nubo_backend.observability import metrics
from nubo_backend.realtime import broadcast
from nubo_backend.realtime.commands import command_handlers
from nubo_backend.realtime.connection import CLOSE_TOO_MANY_CONNECTIONS, CLOSE_TRY_AGAIN, Connection
from nubo_backend.realtime.hub import Hub
from nubo_backend.realtime.sanic_ws import close_code, close_on_invalid_utf8
from nubo_backend.realtime.schemas import BroadcastPage

log = logging.getLogger("nubo.realtime")

ws_bp = Blueprint("realtime_ws")
bp = Blueprint("realtime")


class WsQuery(Query):
    last_event_id: int | None = Field(None, ge=0)


@ws_bp.on_request
async def guard_upgrade(request: Request) -> None:
    """Runs before the handshake: a refused client gets the guard's JSON 401, never an upgrade."""
    await authenticate(request, allow_query_token=True)
    request.ctx.ws_query = parse_query(request, WsQuery)


@ws_bp.websocket("/ws")
async def websocket(request: Request, ws: WebsocketImplProtocol) -> None:
    """Real-time events and commands; see docs/realtime.md for the protocol."""
    user_id = caller_id(request)
    hub: Hub | None = getattr(request.app.ctx, "hub", None)
    if hub is None:  # a connection in the instant before start-up finished
        metrics.ws_refusals.labels("starting").inc()
        await ws.close(CLOSE_TRY_AGAIN, "server starting, reconnect")
        return
    log.info("Utilisateur connecté (userID): %s", user_id, extra={"user_id": user_id})
    close_on_invalid_utf8(ws)
    principal = request.ctx.principal
    conn = Connection(ws, hub, user_id, principal.session_id, principal.expires_at)
    metrics.ws_opens.inc()
    metrics.ws_open.inc()
    try:
        held = await hub.attach(conn)
        if held is not None and held > hub.settings.ws_max_connections_per_user:
            metrics.ws_refusals.labels("too_many_connections").inc()
            await conn.close(CLOSE_TOO_MANY_CONNECTIONS, "too many connections for this user")
            return
        await conn.start_stream(request.ctx.ws_query.last_event_id)
        conn.watch_expiry()
        await conn.run(request.app.ctx.command_handlers)
    finally:
        metrics.ws_open.dec()
        metrics.ws_closes.labels(str(close_code(ws))).inc()
        await hub.detach(conn)
        log.info("websocket closed (userID): %s", user_id, extra={"user_id": user_id})


@ws_bp.before_server_start(priority=1000)
async def describe_websocket_route(app: Sanic) -> None:
    """Sanic wraps websocket handlers in a partial, which route decorators never reach; describe
    the wrapper itself, before sanic-ext builds the OpenAPI document."""
    for route in ws_bp.routes:
        openapi.definition(
            summary="Real-time events and commands (WebSocket)",
            description="Upgrade after the auth guard (Bearer header or ?access_token=); optional "
            "?last_event_id= to resume. Protocol: docs/realtime.md.",
            tag="realtime",
            secured="bearer",
        )(route.handler)
        openapi.parameter("last_event_id", openapi.Long(minimum=0), "query")(route.handler)
        openapi.parameter("access_token", str, "query",
                          description="For browsers, which cannot set the header")(route.handler)


@ws_bp.after_server_start
async def start_hub(app: Sanic) -> None:
    app.ctx.command_handlers = command_handlers()
    hub = Hub(app.ctx.stores, app.ctx.token_verifier)
    hub.start()
    app.ctx.hub = hub


@ws_bp.before_server_stop
async def stop_hub(app: Sanic) -> None:
    hub: Hub | None = getattr(app.ctx, "hub", None)
    if hub is not None:
        await hub.shutdown()


@bp.get("/broadcast")
@openapi.tag("realtime")
@returns(200, BroadcastPage)
@page_parameters
@require_auth
async def recent_broadcasts(request: Request) -> HTTPResponse:
    """The last broadcast lines (kept 30 days), newest first; `?limit=&cursor=`."""
    query = parse_query(request, PageQuery)
    return json_response(
        await broadcast.recent(request.app.ctx.stores, query.limit, decode_cursor(query.cursor))
    )
