"""HTTP for push: the session's Web Push subscription (Mastodon's API) and native devices."""

from __future__ import annotations

from sanic import Blueprint, Request
from sanic.response import HTTPResponse
from sanic_ext import openapi

from nubo_backend.auth.guard import caller_id, require_auth
from nubo_backend.edge.replies import no_content, refusal, returns
from nubo_backend.edge.validation import parse_body, parse_query
from nubo_backend.jsonutil import json_response
from nubo_backend.push import service
from nubo_backend.push.schemas import (
    DeviceBody,
    DeviceQuery,
    DeviceReply,
    PushSubscriptionReply,
    SubscribeBody,
    SubscriptionUpdateBody,
)

bp = Blueprint("push")

NONE = refusal(404, "The session has no push subscription (`push_subscription_not_found`)")


def _session_id(request: Request) -> str:
    return request.ctx.principal.session_id


@bp.post("/push/subscription")
@openapi.tag("push")
@openapi.body({"application/json": openapi.Component(SubscribeBody)}, required=True)
@returns(200, PushSubscriptionReply)
@refusal(422, "Bad keys, or an endpoint refused: not https, or not at a public address "
               "(`invalid_subscription`); Web Push not configured on this server (`push_unavailable`)")
@require_auth
async def subscribe(request: Request) -> HTTPResponse:
    """Subscribe this session to Web Push (RFC 8030), replacing its subscription if it had one.
    Pushes are encrypted for `keys` (RFC 8291, aes128gcm) and signed with the VAPID key whose
    public half is `server_key` (RFC 8292). Alerts: `message`, `mention`, `comment`, `like`,
    `follow`, each on unless false; policy: from `all`, people you follow (`followed`), your
    followers (`follower`), or `none`. Logout or revocation of the session removes it."""
    body = parse_body(request, SubscribeBody)
    sub = body.subscription
    result = await service.subscribe(
        request.app.ctx.stores, caller_id(request), _session_id(request), sub.endpoint, sub.keys.p256dh,
        sub.keys.auth, body.data.alerts.given(), body.data.policy or "all",
    )
    return json_response(result)


@bp.get("/push/subscription")
@openapi.tag("push")
@returns(200, PushSubscriptionReply)
@NONE
@require_auth
async def show_subscription(request: Request) -> HTTPResponse:
    """This session's Web Push subscription."""
    return json_response(await service.subscription(request.app.ctx.stores, _session_id(request)))


@bp.put("/push/subscription")
@openapi.tag("push")
@openapi.body({"application/json": openapi.Component(SubscriptionUpdateBody)}, required=True)
@returns(200, PushSubscriptionReply)
@NONE
@require_auth
async def update_subscription(request: Request) -> HTTPResponse:
    """Change the alerts (kinds not named keep their state) or the policy."""
    body = parse_body(request, SubscriptionUpdateBody)
    result = await service.update_subscription(
        request.app.ctx.stores, _session_id(request), body.data.alerts.given(), body.data.policy
    )
    return json_response(result)


@bp.delete("/push/subscription")
@openapi.tag("push")
@no_content("The session has no push subscription now")
@require_auth
async def unsubscribe(request: Request) -> HTTPResponse:
    """Remove this session's Web Push subscription (idempotent)."""
    await service.unsubscribe(request.app.ctx.stores, _session_id(request))
    return HTTPResponse(status=204)


@bp.post("/push/devices")
@openapi.tag("push")
@openapi.body({"application/json": openapi.Component(DeviceBody)}, required=True)
@returns(201, DeviceReply)
@refusal(422, "Not a device token of that platform (`invalid_device_token`); that platform not configured "
               "on this server (`push_unavailable`)")
@require_auth
async def register_device(request: Request) -> HTTPResponse:
    """Register an APNs or FCM device token for this session (alerts and policy as for Web
    Push). A token registered before by another session moves to this one."""
    body = parse_body(request, DeviceBody)
    result = await service.register_device(
        request.app.ctx.stores, caller_id(request), _session_id(request), body.platform, body.token,
        body.alerts.given(), body.policy,
    )
    return json_response(result, status=201)


@bp.delete("/push/devices")
@openapi.tag("push")
@openapi.parameter("platform", openapi.String(enum=["apns", "fcm"]), "query", required=True)
@openapi.parameter("token", openapi.String(pattern=r"^[A-Za-z0-9_:\-]+$", maxLength=4096), "query",
                   required=True)
@no_content("The device token receives no more pushes")
@require_auth
async def unregister_device(request: Request) -> HTTPResponse:
    """Stop pushing to one of your device tokens (idempotent)."""
    query = parse_query(request, DeviceQuery)
    await service.unregister_device(request.app.ctx.stores, caller_id(request), query.platform, query.token)
    return HTTPResponse(status=204)
