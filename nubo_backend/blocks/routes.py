"""HTTP for blocks and mutes: the caller's own, idempotent PUT/DELETE, and their lists."""

from __future__ import annotations

from sanic import Blueprint, Request
from sanic.response import HTTPResponse
from sanic_ext import openapi

from nubo_backend.auth.guard import caller_id, require_auth
from nubo_backend.blocks import service
from nubo_backend.blocks.schemas import BlocksPage, BlockState, MutesPage, MuteState
from nubo_backend.edge.pagination import PageQuery, decode_id_cursor, page_parameters
from nubo_backend.edge.replies import refusal, returns
from nubo_backend.edge.validation import parse_query
from nubo_backend.jsonutil import json_response

bp = Blueprint("blocks")

SELF = refusal(422, "Yourself (`self_block`, `self_mute`)")
UNKNOWN = refusal(404, "No such user (`user_not_found`)")


@bp.put("/users/<user_id:id>/block")
@openapi.tag("blocks")
@returns(200, BlockState, "The state after the request")
@SELF
@UNKNOWN
@require_auth
async def block(request: Request, user_id: int) -> HTTPResponse:
    """Block a user (idempotent): follows both ways go; neither of you sees the other's posts,
    comments, likes or profile, messages in your direct conversation are refused (403
    `blocked`), and no notification, presence or typing crosses the block."""
    return json_response(await service.block(request.app.ctx.stores, caller_id(request), user_id))


@bp.delete("/users/<user_id:id>/block")
@openapi.tag("blocks")
@returns(200, BlockState, "The state after the request")
@SELF
@UNKNOWN
@require_auth
async def unblock(request: Request, user_id: int) -> HTTPResponse:
    """Lift a block (idempotent); the follows it removed are not restored."""
    return json_response(await service.unblock(request.app.ctx.stores, caller_id(request), user_id))


@bp.put("/users/<user_id:id>/mute")
@openapi.tag("blocks")
@returns(200, MuteState, "The state after the request")
@SELF
@UNKNOWN
@require_auth
async def mute(request: Request, user_id: int) -> HTTPResponse:
    """Mute a user (idempotent, they are not told): their posts leave your feed and their
    notifications stop reaching you."""
    return json_response(await service.mute(request.app.ctx.stores, caller_id(request), user_id))


@bp.delete("/users/<user_id:id>/mute")
@openapi.tag("blocks")
@returns(200, MuteState, "The state after the request")
@SELF
@UNKNOWN
@require_auth
async def unmute(request: Request, user_id: int) -> HTTPResponse:
    """Unmute a user (idempotent)."""
    return json_response(await service.unmute(request.app.ctx.stores, caller_id(request), user_id))


@bp.get("/me/blocks")
@openapi.tag("blocks")
@returns(200, BlocksPage)
@page_parameters
@require_auth
async def my_blocks(request: Request) -> HTTPResponse:
    """The people you blocked, most recent first."""
    query = parse_query(request, PageQuery)
    result = await service.list_blocks(
        request.app.ctx.stores, caller_id(request), query.limit, decode_id_cursor(query.cursor)
    )
    return json_response(result)


@bp.get("/me/mutes")
@openapi.tag("blocks")
@returns(200, MutesPage)
@page_parameters
@require_auth
async def my_mutes(request: Request) -> HTTPResponse:
    """The people you muted, most recent first."""
    query = parse_query(request, PageQuery)
    result = await service.list_mutes(
        request.app.ctx.stores, caller_id(request), query.limit, decode_id_cursor(query.cursor)
    )
    return json_response(result)
