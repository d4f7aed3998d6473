"""Our one adapter to Sanic's HTTP/1.1 protocol internals (sanic.http.Http, its protocol).

What it changes, each where Sanic gives no setting for it:
- A request refused before its body was read (a 413, above all) is answered, then the rest of
  the body is drained and discarded for a bounded time before the socket closes, as nginx's
  lingering close does. Closing at once with unread bytes in the kernel's buffer sends a TCP
  reset, and a client still writing its body (httpx.AsyncClient does) loses the answer.
- `Expect: 100-continue` with a Content-Length over the limit gets the 413, not an invitation
  to upload it.

It relies on these parts of Sanic, pinned by tests/test_http_protocol.py: `Http.http1()`,
`Http.read()`, the attributes `expecting_continue`, `request_body`, `request_bytes`,
`request_max_size`, `protocol`; the protocol's `transport`, `recv_buffer`, `receive_more()`,
`HTTP_CLASS`; and `Sanic.prepare(protocol=...)`.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sanic import Sanic
from sanic.http import Http
from sanic.server.protocols.websocket_protocol import WebSocketProtocol

# Lingering close, after nginx's lingering_time / lingering_timeout (30 s / 5 s there): long
# enough for a client on a fast link to finish writing a body of tens of MiB, short enough
# that a client cannot hold the connection open with a trickle.
LINGER_SECONDS = 5.0
LINGER_IDLE_SECONDS = 1.0


class NuboHttp(Http):
    __slots__ = ()

    async def http1(self) -> None:
        await super().http1()
        if self.request_body:  # the connection ends with a body left unread
            await self._drain_unread_body()

    async def read(self) -> bytes | None:
        if self.expecting_continue and self.request_bytes > self.request_max_size:
            # Sanic would send "100 Continue" first, then refuse what it invited.
            self.expecting_continue = False
        return await super().read()

    async def _drain_unread_body(self) -> None:
        protocol = self.protocol
        transport = protocol.transport
        if transport is None or transport.is_closing():
            return
        if transport.can_write_eof():
            transport.write_eof()  # the answer is complete: a client reading it sees its end
        loop = asyncio.get_running_loop()
        deadline = loop.time() + LINGER_SECONDS
        protocol.recv_buffer.clear()
        while (left := deadline - loop.time()) > 0:
            try:
                async with asyncio.timeout(min(LINGER_IDLE_SECONDS, left)):
                    await protocol.receive_more()
            except TimeoutError:
                return
            if protocol.transport is None or protocol.transport.is_closing():
                return
            protocol.recv_buffer.clear()


class NuboProtocol(WebSocketProtocol):
    """Sanic's protocol (HTTP and the WebSocket upgrade) on our Http."""

    HTTP_CLASS = NuboHttp


class NuboSanic(Sanic):
    """Sanic serving with NuboProtocol unless told otherwise: `nubo serve` and tests both get it."""

    def prepare(self, *args: Any, protocol: Any = None, **kwargs: Any) -> None:
        super().prepare(*args, protocol=protocol or NuboProtocol, **kwargs)
