"""Reports over HTTP: anyone signed in files one; moderators list, read and resolve them."""

from __future__ import annotations

from sanic import Blueprint, Request
from sanic.response import HTTPResponse
from sanic_ext import openapi

from nubo_backend.auth import ratelimit
from nubo_backend.auth.guard import caller_id, require_auth
from nubo_backend.edge.pagination import page_parameters
from nubo_backend.edge.replies import refusal, returns
from nubo_backend.edge.validation import parse_body, parse_query
from nubo_backend.jsonutil import json_response
from nubo_backend.moderation import service
from nubo_backend.moderation.schemas import (
    ReportDetail,
    ReportIn,
    ReportOut,
    ReportPage,
    ReportsQuery,
    ResolutionIn,
    SuspensionLifted,
)

bp = Blueprint("moderation")

# The answers particular to these routes; openapi_errors adds those every route shares.
NOT_A_MODERATOR = refusal(403, "Not a moderator (`not_a_moderator`)")


@bp.post("/reports")
@openapi.tag("moderation")
@returns(201, ReportOut, "The report")
@refusal(403, "A message of a conversation you are not in (`not_a_member`)")
@refusal(429, "More than 100 reports in a minute (`rate_limited`, Retry-After)")
@openapi.body({"application/json": openapi.Component(ReportIn)}, required=True)
@require_auth
async def file_report(request: Request) -> HTTPResponse:
    """Report a user, post, comment or message (of a conversation you are in) with a reason;
    the report keeps a copy of the content as it is now. At most 100 a minute."""
    body = parse_body(request, ReportIn)
    stores = request.app.ctx.stores
    await ratelimit.hit(
        stores.redis, stores.keys, "report", {"account": str(caller_id(request))},
        service.REPORTS_PER_WINDOW, service.REPORT_WINDOW_SECONDS,
    )
    return json_response(await service.file_report(stores, caller_id(request), body), status=201)


@bp.get("/reports")
@openapi.tag("moderation")
@returns(200, ReportPage)
@NOT_A_MODERATOR
@openapi.parameter("status", openapi.String(enum=["open", "resolved"]), "query")
@page_parameters
@require_auth
async def list_reports(request: Request) -> HTTPResponse:
    """Moderators: reports, open ones first, newest first within each status."""
    query = parse_query(request, ReportsQuery)
    return json_response(
        await service.list_reports(request.app.ctx.stores, caller_id(request), query.status, query.limit, query.cursor)
    )


@bp.get("/reports/<report_id:id>")
@openapi.tag("moderation")
@returns(200, ReportDetail)
@NOT_A_MODERATOR
@require_auth
async def get_report(request: Request, report_id: int) -> HTTPResponse:
    """Moderators: one report and every action taken on it (who, when, what)."""
    return json_response(await service.get_report(request.app.ctx.stores, caller_id(request), report_id))


@bp.post("/reports/<report_id:id>/resolve")
@openapi.tag("moderation")
@returns(200, ReportDetail, "The report, resolved")
@NOT_A_MODERATOR
@refusal(409, "Already resolved (`report_resolved`), or the content cannot be removed")
@openapi.body({"application/json": openapi.Component(ResolutionIn)}, required=True)
@require_auth
async def resolve_report(request: Request, report_id: int) -> HTTPResponse:
    """Moderators: dismiss the report, remove the content, or suspend the account behind it."""
    body = parse_body(request, ResolutionIn)
    result = await service.resolve_report(
        request.app.ctx.stores, caller_id(request), report_id, body.action, body.note
    )
    return json_response(result)


@bp.delete("/users/<user_id:id>/suspension")
@openapi.tag("moderation")
@returns(200, SuspensionLifted)
@NOT_A_MODERATOR
@refusal(404, "No such user (`user_not_found`)")
@require_auth
async def lift_suspension(request: Request, user_id: int) -> HTTPResponse:
    """Moderators: lift an account's suspension (idempotent; `lifted` says whether there was
    one). It may log in again; recorded in the moderation log as `unsuspend`."""
    return json_response(await service.lift_suspension(request.app.ctx.stores, caller_id(request), user_id))
