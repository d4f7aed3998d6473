"""HTTP for link preview cards: the card's image, served by us (never the site's URL)."""

from __future__ import annotations

from sanic import Blueprint, Request
from sanic.response import HTTPResponse
from sanic_ext import openapi

from nubo_backend.previews import service

bp = Blueprint("previews")

# The same URL may serve a newer image once the card is fetched again (link_preview_cache_ttl).
CACHE_CONTROL = "public, max-age=86400"


@bp.get("/previews/<preview_id:id>/image")
@openapi.tag("posts")
@openapi.response(304, None, "Not modified (If-None-Match)")
@openapi.response(200, {"image/jpeg": openapi.Binary(), "image/png": openapi.Binary()}, "The image")
async def preview_image(request: Request, preview_id: int) -> HTTPResponse:
    """A link preview card's image, checked and re-encoded (readable without auth)."""
    data, content_type, etag = await service.preview_image(request.app.ctx.stores, preview_id)
    headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL, "X-Content-Type-Options": "nosniff"}
    if etag in [t.strip() for t in request.headers.get("if-none-match", "").split(",")]:
        return HTTPResponse(status=304, headers=headers)
    return HTTPResponse(data, headers=headers, content_type=content_type)
