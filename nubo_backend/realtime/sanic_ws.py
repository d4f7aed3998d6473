"""What we add to Sanic's WebSocket implementation, in one place, pinned by tests/test_sanic_ws.py.

1. A ping sent at once (`ping_now`), for the instance-wide heartbeat (realtime/heartbeat.py).
   Sanic's `ping()` is a coroutine behind the connection's mutex; this writes the frame now
   and registers it where Sanic's pong handling (`process_pong`) resolves it.

2. Invalid UTF-8 fails the connection with 1007 (RFC 6455, 8.1). Sanic (25.12) decodes text
   frames in its frame assembler (`WebsocketFrameAssembler.put`), inside the task that processes
   each TCP read, and does not catch a decoding error: an invalid UTF-8 frame kills that task
   ("Task exception was never retrieved"), the rest of the read is dropped, and the socket stays
   open and may wedge.
"""

from __future__ import annotations

import asyncio

from sanic.server.websockets.frame import WebsocketFrameAssembler
from sanic.server.websockets.impl import WebsocketImplProtocol
from websockets.frames import Frame
from websockets.protocol import State

CLOSE_INVALID_DATA = 1007


class _Utf8CheckedAssembler(WebsocketFrameAssembler):
    """Sanic's assembler, failing the connection with 1007 where it would raise."""

    __slots__ = ()  # same layout as the parent's, so an instance can take this class

    async def put(self, frame: Frame) -> None:
        try:
            await super().put(frame)
        except UnicodeDecodeError:
            self.decoder = None
            self.protocol.fail_connection(CLOSE_INVALID_DATA, "invalid UTF-8 in a text frame")


def close_on_invalid_utf8(ws: WebsocketImplProtocol) -> None:
    """Make ws fail with 1007 on a text frame (or fragment) that is not UTF-8."""
    ws.assembler.__class__ = _Utf8CheckedAssembler


def ping_now(ws: WebsocketImplProtocol, payload: bytes) -> asyncio.Future[None] | None:
    """Write a ping frame now; the future is resolved when its pong arrives (None: not open).
    payload must differ from those of the socket's pings still unanswered."""
    io_proto = ws.io_proto
    if ws.ws_proto.state is not State.OPEN or io_proto is None or io_proto.transport is None:
        return None
    future: asyncio.Future[None] = io_proto.loop.create_future()
    ws.pings[payload] = future
    ws.ws_proto.send_ping(payload)
    io_proto.transport.write(b"".join(ws.ws_proto.data_to_send()))
    return future

