"""Our one adapter to Sanic's HTTP/1.1 protocol internals (sanic.http.Http, its protocol).

What it changes, each where Sanic gives no setting for it:
- A request refused before its body was read (a 413, above all) is answered, then the rest of
  the body is drained and discarded for a bounded time before the socket closes, as nginx's
  lingering close does. Closing at once with unread bytes in the kernel's buffer sends a TCP
  reset, and a client still writing its body (httpx.AsyncClient does) loses the answer.
- `Expect: 100-continue` with a Content-Length over the limit gets the 413, not an invitation
  to upload it.
- The request head is held to RFC 9112's grammar before Sanic parses it leniently: a token for
  the method and each field name (so `Transfer-Encoding : chunked`, which a proxy might honour
  while Sanic ignores it, is a 400, not a desync), visible ASCII in the target, no control
  character but tab in a field value (NUL, bare CR or LF), and exactly one Host in HTTP/1.1.
- Per-response work that every answer needs (the request id header, the access line, closing
  kept-alive connections while draining, metrics) runs as plain calls just before the response
  head is written (`NuboSanic.before_response_head`), and per-request work at its start (the
  in-flight gauge, the trace's span) once its head is parsed (`after_request_head`), not as
  middleware: a middleware is a
  coroutine awaited through Sanic's middleware runner, and three of them cost more than Sanic's
  whole answer to `/ping` takes beyond the minimal app (docs/benchmarks.md). The hooks see
  every answer that has a head, error answers included (a 400 for a malformed head, a 499 for
  a client that hung up), as the middleware did; the WebSocket handshake's 101, written by the
  WebSocket protocol itself, has none, as before.
- A stop asked for while the start-up listeners still run waits until the server serves
  (`NuboSanic.stop`): Sanic's would end the start-up's loop run and be lost.
- Sanic strips CR, LF and NUL from every response header name and value with `str.translate`
  on a table of those three: CPython looks each other character up in the table and misses,
  raising and clearing a LookupError per distinct character, about 0.7 µs for a 32-character
  value and so several µs per response (a tenth of /ping's cost). Where `str.isprintable()`
  holds, none of the three can be there and translate would return the value unchanged, so
  the value is returned as it is; otherwise Sanic's translate runs. Same output for every
  string (tests/test_http_protocol.py checks all of Unicode).

It relies on these parts of Sanic, pinned by tests/test_http_protocol.py: `Http.http1()`,
`Http.read()`, `Http.http1_request_header()`, `Http.http1_response_header(data, end_stream)`
(which `http1()` makes the response's first `send`), `HEADER_MAX_SIZE`, `recv_buffer`,
`_receive_more()`, the attributes `expecting_continue`, `request_body`, `request_bytes`,
`request_max_size`, `protocol`, `request`, `response`, `keep_alive`; the protocol's `transport`,
`recv_buffer`, `receive_more()`, `HTTP_CLASS`; `Sanic.prepare(protocol=...)`; and
`BaseHTTPResponse._sanitize_header_value` (a staticmethod that `processed_headers` calls, whose
body is `value.translate(HEADER_TRANSLATION_TABLE)`).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from functools import partial
from time import perf_counter
from typing import Any

from sanic import Sanic
from sanic.exceptions import BadRequest
from sanic.http import Http
from sanic.response.types import HEADER_TRANSLATION_TABLE, BaseHTTPResponse
from sanic.server.protocols.websocket_protocol import WebSocketProtocol

# Lingering close, after nginx's lingering_time / lingering_timeout (30 s / 5 s there): long
# enough for a client on a fast link to finish writing a body of tens of MiB, short enough
# that a client cannot hold the connection open with a trickle.
LINGER_SECONDS = 5.0
LINGER_IDLE_SECONDS = 1.0
# How often a stop asked for during start-up looks whether the server serves yet.
EARLY_STOP_POLL_SECONDS = 0.05


_TOKEN = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_HEAD = re.compile(
    rb"%s [\x21-\x7e]+ HTTP/(1\.[01])(?:\r\n%s:[\t\x20-\x7e\x80-\xff]*)*" % (_TOKEN, _TOKEN)
)
_HOST_FIELD = re.compile(rb"\r\nhost:", re.IGNORECASE)


def check_head(head: bytes) -> None:
    """Refuse (400) a request line and header section that RFC 9112 does not allow."""
    match = _HEAD.fullmatch(head)
    if match is None:
        raise BadRequest("Malformed request")
    hosts = len(_HOST_FIELD.findall(head))
    if hosts > 1 or (hosts == 0 and match.group(1) == b"1.1"):
        raise BadRequest("Missing or duplicate Host header")


class NuboHttp(Http):
    # `started`: perf_counter() when the request's first bytes were in (http1() calls
    # http1_request_header once some have arrived), for the access line's duration.
    # `observed`: what the request head hooks keep for the response head hooks (None: nothing).
    __slots__ = ("started", "observed")

    async def http1_request_header(self) -> None:
        self.started = perf_counter()
        self.observed = None
        # Wait for the whole head as Sanic does (its own loop then finds it at once), and check
        # it first; a head over Sanic's size limit is left to Sanic's 413.
        buf = self.recv_buffer
        while (end := buf.find(b"\r\n\r\n")) == -1:
            if len(buf) - 3 >= self.HEADER_MAX_SIZE:
                break
            await self._receive_more()
        if end != -1:
            check_head(bytes(buf[:end]))
        await super().http1_request_header()
        for hook in self.protocol.app.request_head_hooks:
            hook(self)

    async def http1_response_header(self, data: bytes, end_stream: bool) -> None:
        # Sanic's first send of every response with a head (normal, streamed or an error's).
        for hook in getattr(self.protocol.app, "response_head_hooks", ()):
            hook(self)
        await super().http1_response_header(data, end_stream)

    async def http1(self) -> None:
        self.started = self.observed = None  # (a connection that sends nothing has no request to time)
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


def sanitize_header_value(value: str) -> str:
    """Sanic's header sanitizer (CR, LF and NUL removed), without its cost for printable text."""
    return value if value.isprintable() else value.translate(HEADER_TRANSLATION_TABLE)


class NuboProtocol(WebSocketProtocol):
    """Sanic's protocol (HTTP and the WebSocket upgrade) on our Http."""

    HTTP_CLASS = NuboHttp


class NuboSanic(Sanic):
    """Sanic serving with NuboProtocol unless told otherwise: `nubo serve` and tests both get it."""

    __slots__ = ("request_head_hooks", "response_head_hooks", "stop_carried_out")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.request_head_hooks: list[Callable[[NuboHttp], None]] = []
        self.response_head_hooks: list[Callable[[NuboHttp], None]] = []
        self.stop_carried_out = False
        # (Sanic's responses are of its own classes, whatever the app: this is process-wide.)
        BaseHTTPResponse._sanitize_header_value = staticmethod(sanitize_header_value)  # type: ignore[method-assign]

    def before_response_head(self, hook: Callable[[NuboHttp], None]) -> Callable[[NuboHttp], None]:
        """Call `hook(http)` before each response head is written (in the order registered): a
        plain function, not a coroutine, that may add headers to `http.response`, read
        `http.request` and `http.started`, or set `http.keep_alive = False`. It must not raise."""
        self.response_head_hooks.append(hook)
        return hook

    def after_request_head(self, hook: Callable[[NuboHttp], None]) -> Callable[[NuboHttp], None]:
        """Call `hook(http)` once each request's head is parsed (`http.request` exists), before
        routing and the handler, in the handler's task: a plain function that may set
        `http.observed` for a `before_response_head` hook to find. It must not raise. A request
        refused while its head is read (400, 413) gets the response hooks but not this."""
        self.request_head_hooks.append(hook)
        return hook

    def prepare(self, *args: Any, protocol: Any = None, **kwargs: Any) -> None:
        super().prepare(*args, protocol=protocol or NuboProtocol, **kwargs)

    def stop(self, terminate: bool = True, unregister: bool = False) -> None:
        """Sanic's stop, carried out once the server serves when asked for before.

        Sanic answers requests while its after_server_start listeners still run, and installs
        its stop-signal handlers before them. Its stop then (Ctrl-C, SIGTERM, a supervisor that
        stops an instance as soon as it answers) calls loop.stop(), which ends the start-up's
        run_until_complete instead of the serving loop: the stop is lost and the server runs
        on. So until the server serves, the stop waits for it, polling. And it is carried out
        once: a second, asked for meanwhile by another handler, would stop the loop again in
        the middle of the shutdown's listeners, which Sanic then runs again from the start."""
        if self.stop_carried_out:
            return
        if self.state.is_running:
            self.stop_carried_out = True
            super().stop(terminate=terminate, unregister=unregister)
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop: nothing is serving, nothing to stop
            return
        loop.call_later(EARLY_STOP_POLL_SECONDS, partial(self.stop, terminate=terminate, unregister=unregister))
