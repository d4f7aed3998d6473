"""A small HTTP server of the test's own, serving the pages link previews are tried on."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from tests.media_support import png

OPENGRAPH = b"""<!doctype html><html><head>
<meta property="og:title" content="OG title">
<meta property="og:description" content="OG description">
<meta property="og:image" content="/image.png">
<title>ignored</title></head><body>hello</body></html>"""
TWITTER = b"""<html><head><meta name="twitter:card" content="summary">
<meta name="twitter:title" content="Twitter title"><meta name="twitter:description" content="Twitter text">
</head><body></body></html>"""
BARE_TITLE = b"<html><head><title>  Just a\n title </title></head><body><p>x</p></body></html>"
NOTHING = b"<html><head></head><body>no metadata</body></html>"
BIG_HEAD = b"<html><head><title>Big</title></head><body>"
BIG_SIZE = 50 * 1024 * 1024


class PreviewPages:
    """GET /og, /twitter, /title, /nothing, /image.png, /big (50 MB), /slow (answers after
    30 s), /loop (redirects to itself), /redirect-to?url (302 to url), /count (how many
    requests each path had)."""

    def __init__(self) -> None:
        self.hits: dict[str, int] = {}
        self.user_agents: list[str] = []
        self.port = 0
        self._server: asyncio.Server | None = None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            request_line, *header_lines = head.decode("latin-1").split("\r\n")
            target = request_line.split(" ")[1]
            path, _, query = target.partition("?")
            self.hits[path] = self.hits.get(path, 0) + 1
            self.user_agents += [h.split(":", 1)[1].strip() for h in header_lines
                                 if h.lower().startswith("user-agent:")]
            await self._route(path, query, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def _route(self, path: str, query: str, writer: asyncio.StreamWriter) -> None:
        pages: dict[str, tuple[str, bytes]] = {
            "/og": ("text/html; charset=utf-8", OPENGRAPH), "/twitter": ("text/html", TWITTER),
            "/title": ("text/html", BARE_TITLE), "/nothing": ("text/html", NOTHING),
            "/image.png": ("image/png", png(120, 80)),
        }
        if path in pages:
            content_type, body = pages[path]
            writer.write(_response(200, content_type, body))
        elif path == "/loop":
            writer.write(_redirect("/loop"))
        elif path == "/redirect-to":
            writer.write(_redirect(query))
        elif path == "/slow":
            await asyncio.sleep(30)
        elif path == "/big":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
                         + f"Content-Length: {BIG_SIZE}\r\nConnection: close\r\n\r\n".encode() + BIG_HEAD)
            chunk = b"x" * 65536
            for _ in range(BIG_SIZE // len(chunk)):  # until the client hangs up
                writer.write(chunk)
                await writer.drain()
        else:
            writer.write(_response(404, "text/plain", b"no"))
        await writer.drain()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[PreviewPages]:
        self._server = await asyncio.start_server(self._answer, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        try:
            yield self
        finally:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)


def _response(status: int, content_type: str, body: bytes) -> bytes:
    return (f"HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n").encode() + body


def _redirect(location: str) -> bytes:
    return f"HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode()


