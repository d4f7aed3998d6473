"""/docs's Swagger UI, served from this package rather than a CDN.

sanic-ext's page loads Swagger UI's script and style from cdnjs: without internet (a laptop
on a train, a locked-down network) `/docs` was a blank page. The files are Swagger UI's
release (swagger-ui-dist, Apache-2.0: LICENSE and NOTICE beside them), at the version
sanic-ext's page asks for, under the names it asks for. ReDoc, which sanic-ext would also
load from a CDN, is off (`/docs` is Swagger UI; `/docs/openapi.json` is the document)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from sanic import Blueprint, Request
from sanic.config import Config
from sanic.response import HTTPResponse
from sanic_ext import openapi

from nubo_backend.edge.errors import not_found

bp = Blueprint("apidocs")

STATIC = Path(__file__).parent / "static"
PREFIX = "/docs/ui"
# The name sanic-ext's page asks for -> the file of swagger-ui-dist, and its type.
FILES = {
    "swagger-ui.min.css": ("swagger-ui.css", "text/css; charset=utf-8"),
    "swagger-ui-bundle.min.js": ("swagger-ui-bundle.js", "text/javascript; charset=utf-8"),
    "swagger-ui-standalone-preset.min.js": ("swagger-ui-standalone-preset.js", "text/javascript; charset=utf-8"),
}


def configure(config: Config) -> None:
    """Point sanic-ext's pages at these files (before its extension builds them)."""
    config.OAS_UI_DEFAULT = "swagger"
    config.OAS_UI_SWAGGER_CDN_URL = PREFIX
    config.OAS_UI_REDOC = False


@bp.get(f"{PREFIX}/<version:str>/<name:str>")
@openapi.exclude()
async def swagger_ui_file(request: Request, version: str, name: str) -> HTTPResponse:
    if version != request.app.config.OAS_UI_SWAGGER_VERSION or name not in FILES:
        raise not_found()
    file, content_type = FILES[name]
    return HTTPResponse(_read(file), content_type=content_type, headers={
        "Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"})


@cache
def _read(file: str) -> bytes:
    """Read once per process (1.6 MB in all), on the first ask: never at start-up."""
    return (STATIC / file).read_bytes()
