"""HTTP for search: parse the query, call the service, respond."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field
from sanic import Blueprint, Request
from sanic.response import HTTPResponse
from sanic_ext import openapi

from nubo_backend.auth.budgets import budgeted
from nubo_backend.auth.guard import optional_auth, viewer_id
from nubo_backend.edge.pagination import PageQuery, page_parameters
from nubo_backend.edge.replies import returns
from nubo_backend.edge.validation import OneLine, parse_query
from nubo_backend.jsonutil import json_response
from nubo_backend.posts.schemas import PostPage
from nubo_backend.search import service
from nubo_backend.search.service import MAX_QUERY_LENGTH
from nubo_backend.users.schemas import UserPage

bp = Blueprint("search")


class SearchQuery(PageQuery):
    q: Annotated[str, OneLine] = Field(min_length=1, max_length=MAX_QUERY_LENGTH)


def query_parameter(handler: object) -> object:
    """Route decorator documenting `q`."""
    schema = openapi.String(minLength=1, maxLength=MAX_QUERY_LENGTH, pattern=OneLine.nonblank_pattern,
                            description="Words to find; case and accents are ignored")
    return openapi.parameter("q", schema, "query", required=True)(handler)


@bp.get("/search/users")
@openapi.tag("search")
@returns(200, UserPage)
@query_parameter
@page_parameters
@optional_auth
@budgeted("search")
async def search_users(request: Request) -> HTTPResponse:
    """People whose username starts with `q` or whose display name contains it, best match first."""
    query = parse_query(request, SearchQuery)
    result = await service.search_users(request.app.ctx.stores, query.q, query.limit, query.cursor,
                                        viewer_id(request))
    return json_response(result)


@bp.get("/search/posts")
@openapi.tag("search")
@returns(200, PostPage)
@query_parameter
@page_parameters
@optional_auth
@budgeted("search")
async def search_posts(request: Request) -> HTTPResponse:
    """Posts containing every word of `q` (English or French, accents folded), best match first.
    `q` is words only: `& | ! :*`, quotes and SQL are text, punctuation alone finds nothing."""
    query = parse_query(request, SearchQuery)
    result = await service.search_posts(request.app.ctx.stores, query.q, query.limit, query.cursor,
                                        viewer_id(request))
    return json_response(result)
