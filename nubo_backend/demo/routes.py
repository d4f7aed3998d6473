"""/demo and its three static files, served from this package (no build step).

On in development and test, off in production unless NUBO_DEMO_PAGE=on. The page uses
only the public API from the same origin, so its Content-Security-Policy allows nothing
else: its own script and style, and sockets and requests to this host."""

from __future__ import annotations

from pathlib import Path

from sanic import Blueprint, Request
from sanic.response import HTTPResponse
from sanic_ext import openapi

from nubo_backend.edge.errors import not_found

bp = Blueprint("demo")

STATIC = Path(__file__).parent / "static"
FILES = {
    "index.html": "text/html; charset=utf-8",
    "demo.js": "text/javascript; charset=utf-8",
    "demo.css": "text/css; charset=utf-8",
}


def _headers(request: Request) -> dict[str, str]:
    host = request.host  # the page talks to the instance that served it, and nothing else
    return {
        "Content-Security-Policy": (
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
            f"connect-src 'self' ws://{host} wss://{host}; base-uri 'none'; form-action 'none'; "
            "frame-ancestors 'none'"
        ),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-cache",
    }


def _serve(request: Request, name: str) -> HTTPResponse:
    if not request.app.ctx.settings.demo_enabled or name not in FILES:
        raise not_found()
    return HTTPResponse((STATIC / name).read_bytes(), content_type=FILES[name], headers=_headers(request))


@bp.get("/demo")
@openapi.exclude()
async def demo_page(request: Request) -> HTTPResponse:
    """The demo page (docs/client.md)."""
    return _serve(request, "index.html")


@bp.get("/demo/<name:str>")
@openapi.exclude()
async def demo_file(request: Request, name: str) -> HTTPResponse:
    return _serve(request, name)
