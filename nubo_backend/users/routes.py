"""HTTP for public profiles and follows."""

from __future__ import annotations

from sanic import Blueprint, Request
from sanic.response import HTTPResponse
from sanic_ext import openapi

from nubo_backend.auth.budgets import budgeted
from nubo_backend.auth.guard import caller_id, optional_auth, require_auth, viewer_id
from nubo_backend.edge.pagination import PageQuery, decode_id_cursor, page_parameters
from nubo_backend.edge.replies import returns
from nubo_backend.edge.validation import parse_query
from nubo_backend.jsonutil import json_response
from nubo_backend.posts import service as posts
from nubo_backend.posts.schemas import PostPage
from nubo_backend.users import service
from nubo_backend.users.schemas import FollowPage, Profile

bp = Blueprint("users")


@bp.get("/users/<ref:str>")
@openapi.tag("users")
@returns(200, Profile)
@optional_auth
async def profile(request: Request, ref: str) -> HTTPResponse:
    """A public profile by id or username, with follower/following/post counts."""
    stores = request.app.ctx.stores
    user_id = await service.resolve_user(stores, ref)
    return json_response(await service.get_profile(stores, user_id, viewer_id(request)))


@bp.post("/users/<user_id:id>/follow")
@openapi.tag("users")
@returns(200, Profile, "Their profile, followed")
@require_auth
@budgeted("follow")
async def follow(request: Request, user_id: int) -> HTTPResponse:
    """Follow a user (idempotent); returns their profile."""
    result = await service.follow(request.app.ctx.stores, caller_id(request), user_id)
    return json_response(result)


@bp.delete("/users/<user_id:id>/follow")
@openapi.tag("users")
@returns(200, Profile, "Their profile, not followed")
@require_auth
@budgeted("follow")
async def unfollow(request: Request, user_id: int) -> HTTPResponse:
    """Stop following a user (idempotent); returns their profile."""
    result = await service.unfollow(request.app.ctx.stores, caller_id(request), user_id)
    return json_response(result)


async def _follow_list(request: Request, user_id: int, direction: str) -> HTTPResponse:
    query = parse_query(request, PageQuery)
    result = await service.follow_list(request.app.ctx.stores, user_id, direction, query.limit,
                                       decode_id_cursor(query.cursor), viewer_id(request))
    return json_response(result)


@bp.get("/users/<user_id:id>/followers")
@openapi.tag("users")
@returns(200, FollowPage)
@page_parameters
@optional_auth
async def followers(request: Request, user_id: int) -> HTTPResponse:
    """Who follows this user, most recent first."""
    return await _follow_list(request, user_id, "followers")


@bp.get("/users/<user_id:id>/following")
@openapi.tag("users")
@returns(200, FollowPage)
@page_parameters
@optional_auth
async def following(request: Request, user_id: int) -> HTTPResponse:
    """Whom this user follows, most recent first."""
    return await _follow_list(request, user_id, "following")


@bp.get("/users/<user_id:id>/posts")
@openapi.tag("users")
@returns(200, PostPage)
@page_parameters
@optional_auth
async def user_posts(request: Request, user_id: int) -> HTTPResponse:
    """This user's posts, newest first."""
    query = parse_query(request, PageQuery)
    result = await posts.user_posts(request.app.ctx.stores, user_id, query.limit,
                                    decode_id_cursor(query.cursor), viewer_id(request))
    return json_response(result)
