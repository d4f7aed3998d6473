"""WebSocket frames built once per event and written as is to every connection.

The server never compresses (no permessage-deflate is negotiated) and never masks, so a
text frame is a 2-10 byte header plus the UTF-8 payload: building it once and writing
the same bytes to 5,000 sockets is what keeps a broadcast cheap.
"""

from __future__ import annotations

import struct
from typing import Any

from nubo_backend.jsonutil import dumps

_FIN_TEXT = 0x81


def text_frame(payload: bytes) -> bytes:
    """The wire bytes of one unfragmented, unmasked text frame carrying payload (UTF-8)."""
    size = len(payload)
    if size < 126:
        return bytes((_FIN_TEXT, size)) + payload
    if size < 1 << 16:
        return struct.pack("!BBH", _FIN_TEXT, 126, size) + payload
    return struct.pack("!BBQ", _FIN_TEXT, 127, size) + payload


def json_frame(body: dict[str, Any]) -> bytes:
    return text_frame(dumps(body))


def error_frame(code: str, message: str, ref: Any = None) -> bytes:
    """`{"type": "error", "code", "error", ["ref"]}`: a command failed; the connection stays open."""
    body: dict[str, Any] = {"type": "error", "code": code, "error": message}
    if ref is not None:
        body["ref"] = ref
    return json_frame(body)
