"""GET /notifications (cursor pagination) and POST /notifications/read."""

from __future__ import annotations

from sanic import Blueprint, Request
from sanic.response import HTTPResponse
from sanic_ext import openapi

from nubo_backend.auth.guard import caller_id, require_auth
from nubo_backend.edge.pagination import PageQuery, decode_cursor, page_parameters
from nubo_backend.edge.replies import returns
from nubo_backend.edge.validation import parse_body, parse_query
from nubo_backend.jsonutil import json_response
from nubo_backend.notifications.schemas import MarkedRead, MarkRead, NotificationPage
from nubo_backend.notifications.service import list_notifications, mark_read

bp = Blueprint("notifications")


@bp.get("/notifications")
@openapi.tag("notifications")
@returns(200, NotificationPage)
@page_parameters
@require_auth
async def notifications(request: Request) -> HTTPResponse:
    """The caller's notifications of the last 30 days, newest first; `?limit=&cursor=`."""
    query = parse_query(request, PageQuery)
    user_id = caller_id(request)
    return json_response(
        await list_notifications(request.app.ctx.stores, user_id, query.limit, decode_cursor(query.cursor))
    )


@bp.post("/notifications/read")
@openapi.tag("notifications")
@returns(200, MarkedRead)
@openapi.body({"application/json": openapi.Component(MarkRead)})
@require_auth
async def read_notifications(request: Request) -> HTTPResponse:
    """Mark notifications read: `{"ids": [...]}`, or every unread one with `{}`."""
    body = parse_body(request, MarkRead) if request.body else MarkRead()
    changed = await mark_read(request.app.ctx.stores, caller_id(request), body.ids)
    return json_response({"updated": changed})
