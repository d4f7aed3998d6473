"""HTTP for hashtags: a tag's posts, and what is trending."""

from __future__ import annotations

from sanic import Blueprint, Request
from sanic.response import HTTPResponse
from sanic_ext import openapi

from nubo_backend.auth.guard import optional_auth, viewer_id
from nubo_backend.edge.pagination import PageQuery, decode_id_cursor, page_parameters
from nubo_backend.edge.replies import returns
from nubo_backend.edge.validation import parse_query
from nubo_backend.jsonutil import json_response
from nubo_backend.posts.schemas import PostPage
from nubo_backend.tags import service
from nubo_backend.tags.hashtags import MAX_TAG_LENGTH
from nubo_backend.tags.schemas import Trending

bp = Blueprint("tags")

# What tag_from_path takes: word characters (any script; accents are folded), not only digits,
# with or without the `#`.
TAG_PATH_PATTERN = rf"^#?(?=\w{{1,{MAX_TAG_LENGTH}}}$)\w*[^\W\d]\w*$"


@bp.get("/tags/trending")
@openapi.tag("tags")
@returns(200, Trending)
async def trending(request: Request) -> HTTPResponse:
    """The 20 tags used in most posts over the last 24 hours, `{items: [{tag, uses}]}`
    (cached: up to `cache_ttl` seconds old)."""
    return json_response(await service.trending(request.app.ctx.stores))


@bp.get("/tags/<tag:str>/posts", unquote=True)
@openapi.tag("tags")
@openapi.parameter("tag", openapi.String(pattern=TAG_PATH_PATTERN), "path", required=True)
@returns(200, PostPage)
@page_parameters
@optional_auth
async def tag_posts(request: Request, tag: str) -> HTTPResponse:
    """Posts with `#tag`, newest first; case and accents ignored (422 if it cannot be a tag)."""
    query = parse_query(request, PageQuery)
    result = await service.tag_posts(request.app.ctx.stores, service.tag_from_path(tag), query.limit,
                                     decode_id_cursor(query.cursor), viewer_id(request))
    return json_response(result)
