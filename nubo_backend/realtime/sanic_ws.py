"""What we add to Sanic's WebSocket implementation, in one place, pinned by tests/test_sanic_ws.py.

Sanic (25.12) decodes text frames in its frame assembler (`WebsocketFrameAssembler.put`), inside
the task that processes each TCP read, and does not catch a decoding error: an invalid UTF-8
frame kills that task ("Task exception was never retrieved"), the rest of the read is dropped,
and the socket stays open and may wedge. RFC 6455 (8.1) says: fail the connection with 1007.
"""

from __future__ import annotations

from sanic.server.websockets.frame import WebsocketFrameAssembler
from sanic.server.websockets.impl import WebsocketImplProtocol
from websockets.frames import Frame

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
