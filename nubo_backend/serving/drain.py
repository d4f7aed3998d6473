"""Graceful shutdown on SIGTERM / Ctrl-C, as a load balancer needs it.

Sanic, on a stop, closes the listening socket and idle connections, then waits up to
GRACEFUL_SHUTDOWN_TIMEOUT for busy ones. Alone it leaves three gaps, closed here:
/ready still answers 200 (so traffic keeps coming), a kept-alive connection that is busy
goes back to serving new requests after its response, and WebSockets are cut with 1000
(normal closure) instead of 1001 (going away: reconnect elsewhere).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import Any

from sanic import Request, Sanic

from nubo_backend.serving.http_protocol import NuboHttp, NuboSanic

log = logging.getLogger("nubo.app")

WS_GOING_AWAY = 1001
WS_CLOSE_WAIT_SECONDS = 2.0


def install_graceful_shutdown(app: NuboSanic, grace_seconds: float) -> None:
    app.config.GRACEFUL_SHUTDOWN_TIMEOUT = grace_seconds
    app.ctx.draining = False
    sockets: weakref.WeakSet[Any] = weakref.WeakSet()

    @app.signal("websocket.handler.before")
    async def remember_websocket(request: Request, websocket: Any) -> None:
        sockets.add(websocket)

    def close_after_response(http: NuboHttp) -> None:
        # Http1.keep_alive decides the `Connection` header and whether the connection
        # reads another request: off, the client reconnects (to another instance).
        http.keep_alive = False

    # Sanic's own before_server_stop listener cancels WebSocket handlers (closing with 1000);
    # shutdown listeners run in reverse order of registration priority, so ours goes first.
    @app.listener("before_server_stop", priority=-1000)
    async def start_draining(app: Sanic) -> None:
        app.ctx.draining = True
        # From now on, every response closes its kept-alive connection (a plain call before each
        # response head, and only while draining: nothing is added to a request before then).
        app.before_response_head(close_after_response)
        open_sockets = list(sockets)
        log.info("draining", extra={"websockets": len(open_sockets), "grace_s": grace_seconds})
        if open_sockets:
            closes = [ws.close(WS_GOING_AWAY, "server shutting down, reconnect") for ws in open_sockets]
            await asyncio.wait(
                [asyncio.ensure_future(c) for c in closes], timeout=WS_CLOSE_WAIT_SECONDS
            )

