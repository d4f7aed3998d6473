"""Baseline for bench_http.py and bench_ws.py: the least a Sanic app can do for the same work.

`GET /ping` returns the same JSON as nubo's (one handler, access log off, no middleware); `/ws`
relays each text frame to every socket of this process, in memory (no auth, Redis or journal),
with Sanic's `send`; `/ws-prebuilt` does the same with one prebuilt frame written to every socket.
Usage: python bench/minimal_sanic.py PORT  (one worker, single process)
"""

from __future__ import annotations

import struct
import sys

from sanic import Request, Sanic, Websocket
from sanic.response import HTTPResponse

app = Sanic("minimal", configure_logging=False)
app.config.ACCESS_LOG = False
app.config.WEBSOCKET_MAX_SIZE = 64 * 1024
clients: set[Websocket] = set()
prebuilt_clients: set[Websocket] = set()


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


@app.websocket("/ws-prebuilt")
async def relay_prebuilt(request: Request, ws: Websocket) -> None:
    """The same relay written the way nubo writes a broadcast (realtime/frames.py, Hub.on_broadcast):
    the text frame built once, then one non-blocking transport write per socket, with no
    per-socket framing, lock or await. The fastest a Sanic process can fan a line out."""
    prebuilt_clients.add(ws)
    try:
        async for message in ws:
            wire = _text_frame(message.encode() if isinstance(message, str) else message)
            for other in list(prebuilt_clients):
                if other.io_proto is not None and other.io_proto.transport is not None:
                    other.io_proto.transport.write(wire)
    finally:
        prebuilt_clients.discard(ws)


def _text_frame(payload: bytes) -> bytes:
    """One unfragmented, unmasked text frame (RFC 6455, 5.2)."""
    size = len(payload)
    if size < 126:
        return bytes((0x81, size)) + payload
    if size < 1 << 16:
        return struct.pack("!BBH", 0x81, 126, size) + payload
    return struct.pack("!BBQ", 0x81, 127, size) + payload


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(sys.argv[1]), single_process=True, access_log=False, backlog=4096)
