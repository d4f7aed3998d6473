"""HTTP for media: upload (raw body or multipart), serve an image or its thumbnail.

POST /media streams its body (Sanic's 1 MiB limit on other routes stays as it is) and counts
the bytes itself against media_max_upload_bytes. A body over the limit is read to its end
(up to a bound) before the 413 goes out, so that a client still writing can read the answer.
"""

from __future__ import annotations

from typing import Any

from sanic import Blueprint, Request, Sanic
from sanic.headers import parse_content_header
from sanic.request.form import parse_multipart_form
from sanic.response import HTTPResponse
from sanic_ext import openapi

from nubo_backend.auth.guard import caller_id, optional_auth, require_auth, viewer_id
from nubo_backend.edge.errors import NuboError
from nubo_backend.edge.replies import returns
from nubo_backend.jsonutil import json_response
from nubo_backend.media import service
from nubo_backend.media.schemas import MediaOut

bp = Blueprint("media")

IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp", "image/gif")
MULTIPART = "multipart/form-data"
MULTIPART_OVERHEAD = 16 * 1024  # boundaries and part headers around the file
# A body over the limit is drained, for a readable 413, up to this many times the limit;
# past that the connection is dropped instead.
DRAIN_FACTOR = 4

def _too_large(limit: int) -> NuboError:
    return NuboError(413, "payload_too_large", f"An upload may be at most {limit} bytes",
                     details={"max_bytes": limit})


async def _read_body(request: Request, limit: int) -> bytes:
    """The whole body if it fits in limit bytes; else, once it is drained, a 413."""
    declared = request.headers.get("content-length")
    over = declared is not None and declared.isdigit() and int(declared) > limit
    chunks: list[bytes] = []
    size = 0
    while (chunk := await request.stream.read()) is not None:
        size += len(chunk)
        if size > limit:
            over = True
        if over:
            if size > limit * DRAIN_FACTOR:
                break  # Sanic drops the connection for what is left
            continue
        chunks.append(chunk)
    if over:
        raise _too_large(limit)
    return b"".join(chunks)


def _file_from_multipart(request: Request, body: bytes, limit: int) -> bytes:
    # Sanic's parser itself, called directly: `request.files` would log a malformed form (no
    # boundary, a part without headers) as an ERROR with a traceback, one per hostile request.
    _, parameters = parse_content_header(request.headers.get("content-type", ""))
    boundary = parameters.get("boundary")
    try:
        _, files = parse_multipart_form(body, str(boundary).encode()) if boundary else (None, {})
    except Exception:  # noqa: BLE001 - whatever a malformed form trips the parser on, it is the client's
        files = {}
    upload = files.get("file")
    if upload is None:
        raise NuboError(422, "validation_error", "Invalid input: file",
                        details=[{"field": "file", "message": "A part named file is required"}])
    if len(upload.body) > limit:
        raise _too_large(limit)
    return upload.body


@bp.post("/media", stream=True)
@openapi.tag("media")
@openapi.description(
    "Upload a photo: the raw bytes with their Content-Type (image/jpeg, image/png, image/webp, "
    "image/gif), or multipart/form-data with a part named `file`. The image is decoded, turned "
    "upright, stripped of EXIF and anything appended, and re-encoded as an original and a "
    "thumbnail. Attach it within a day with `media_ids` on a post or a message. "
    "413 past media_max_upload_bytes, 415 for another Content-Type, 422 for a file that is not "
    "a usable image, 429 past media_uploads_per_hour.")
@openapi.body({t: openapi.Binary() for t in IMAGE_TYPES}
              | {MULTIPART: {"type": "object", "required": ["file"],
                             "properties": {"file": {"type": "string", "format": "binary"}}}}, required=True)
@returns(201, MediaOut, "The stored media object")
@require_auth
async def upload(request: Request) -> HTTPResponse:
    stores = request.app.ctx.stores
    limit = stores.settings.media_max_upload_bytes
    content_type = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if content_type not in IMAGE_TYPES and content_type != MULTIPART:
        raise NuboError(415, "unsupported_media_type",
                        f"Send the image as {', '.join(IMAGE_TYPES)} or {MULTIPART}")
    await service.check_upload_quota(stores, caller_id(request))
    if content_type == MULTIPART:
        data = _file_from_multipart(request, await _read_body(request, limit + MULTIPART_OVERHEAD), limit)
    else:
        data = await _read_body(request, limit)
    if not data:
        raise NuboError(422, "not_an_image", "The body is empty")
    media = await service.upload(stores, caller_id(request), data)
    return json_response(media, status=201, headers={"Location": media["url"]})


# An <img src> cannot carry an Authorization header; the access log records the path only,
# so a token in the query string is not written down.
ACCESS_TOKEN_PARAMETER = ("The access token, for a page's <img src> that cannot send the Authorization "
                          "header (a message's media); the header is preferred")


async def _serve(request: Request, media_id: int, thumbnail: bool) -> HTTPResponse:
    served = await service.read_media(request.app.ctx.stores, viewer_id(request), media_id, thumbnail,
                                      request.headers.get("if-none-match"))
    headers: dict[str, Any] = {
        "ETag": served.etag,
        "Cache-Control": served.cache_control,
        "X-Content-Type-Options": "nosniff",
    }
    if served.not_modified:
        return HTTPResponse(status=304, headers=headers)
    return HTTPResponse(served.data, headers=headers, content_type=served.content_type)


@bp.get("/media/<media_id:id>")
@openapi.tag("media")
@openapi.response(304, None, "Not modified (If-None-Match)")
@openapi.response(200, {"image/jpeg": openapi.Binary(), "image/png": openapi.Binary()}, "The image")
@openapi.parameter("access_token", str, "query", description=ACCESS_TOKEN_PARAMETER)
@optional_auth(allow_query_token=True)
async def get_media(request: Request, media_id: int) -> HTTPResponse:
    """An image (long side at most media_original_side). A post's is public; a message's is for
    the conversation's members; an unattached upload for its uploader."""
    return await _serve(request, media_id, thumbnail=False)


@bp.get("/media/<media_id:id>/thumbnail")
@openapi.tag("media")
@openapi.response(304, None, "Not modified (If-None-Match)")
@openapi.response(200, {"image/jpeg": openapi.Binary(), "image/png": openapi.Binary()}, "The thumbnail")
@openapi.parameter("access_token", str, "query", description=ACCESS_TOKEN_PARAMETER)
@optional_auth(allow_query_token=True)
async def get_thumbnail(request: Request, media_id: int) -> HTTPResponse:
    """The image's thumbnail (long side at most media_thumbnail_side), read as the image is."""
    return await _serve(request, media_id, thumbnail=True)


@bp.after_server_start
async def start_workers_and_sweep(app: Sanic) -> None:
    stores = app.ctx.stores
    stores.media.images.warm_up()
    app.add_task(service.sweep_periodically(stores), name="nubo-media-sweep")
