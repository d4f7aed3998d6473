"""Baseline for bench_http.py and bench_ws.py: the least a Sanic app can do for the same work.

`GET /ping` returns the same JSON as nubo's (one handler, access log off, no middleware); `/ws`
relays each text frame to every socket of this process, in memory (no auth, Redis or journal).
Usage: python bench/minimal_sanic.py PORT  (one worker, single process)
"""

from __future__ import annotations

import sys

from sanic import Request, Sanic, Websocket
from sanic.response import HTTPResponse

app = Sanic("minimal", configure_logging=False)
app.config.ACCESS_LOG = False
app.config.WEBSOCKET_MAX_SIZE = 64 * 1024
clients: set[Websocket] = set()


@app.get("/ping")
async def ping(request: Request) -> HTTPResponse:
    return HTTPResponse(b'{"message":"pong"}', content_type="application/json")


@app.websocket("/ws")
async def relay(request: Request, ws: Websocket) -> None:
    clients.add(ws)
    try:
        async for message in ws:
            for other in list(clients):
                try:
                    await other.send(message)
                except Exception:  # noqa: BLE001 - a client that left; its own handler ends
                    clients.discard(other)
    finally:
        clients.discard(ws)


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(sys.argv[1]), single_process=True, access_log=False, backlog=4096)
