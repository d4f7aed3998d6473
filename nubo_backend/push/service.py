"""Push subscriptions: the session's Web Push subscription (Mastodon's API) and native devices."""

from __future__ import annotations

import binascii
import logging
import re
from collections.abc import Mapping
from typing import Any

import asyncpg

from nubo_backend.edge.errors import NuboError, not_found
from nubo_backend.jsonutil import dumps_str, loads
from nubo_backend.push.queue import ALERTS
from nubo_backend.push.vapid import b64url_decode, server_key
from nubo_backend.stores import Stores

log = logging.getLogger("nubo.push")

PLATFORMS = ("apns", "fcm")
# APNs device tokens are hex (32 bytes today, up to 100 allowed); FCM registration tokens use
# base64url letters and colons. Either way nothing that could leave the URL path it goes in.
TOKEN_PATTERNS = {"apns": re.compile(r"[0-9a-fA-F]{64,200}"), "fcm": re.compile(r"[A-Za-z0-9_:\-]{20,4096}")}


def _unavailable(what: str) -> NuboError:
    # 422, not 503: an operator's choice, which waiting does not change.
    return NuboError(422, "push_unavailable", f"{what} is not configured on this server")


def _invalid(field: str, message: str) -> NuboError:
    return NuboError(422, "invalid_subscription", message, details=[{"field": field, "message": message}])


def _alerts(stored: str | Mapping[str, Any]) -> dict[str, bool]:
    """Every kind with its state: on unless turned off."""
    off = loads(stored) if isinstance(stored, str) else stored
    return {kind: off.get(kind, True) is not False for kind in ALERTS}


def _stored_alerts(alerts: Mapping[str, bool] | None) -> str:
    return dumps_str({k: bool(v) for k, v in (alerts or {}).items() if k in ALERTS})


def _subscription_view(stores: Stores, row: Mapping[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "endpoint": row["endpoint"], "alerts": _alerts(row["alerts"]), "policy": row["policy"],
            "server_key": server_key(stores.settings.push_vapid_private_key)}


def _check_keys(p256dh: str, auth: str) -> None:
    try:
        point = b64url_decode(p256dh)
    except (binascii.Error, ValueError):
        point = b""
    if len(point) != 65 or point[0] != 4:
        raise _invalid("subscription.keys.p256dh", "p256dh must be a base64url P-256 public key (65 bytes)")
    try:
        secret = b64url_decode(auth)
    except (binascii.Error, ValueError):
        secret = b""
    if len(secret) != 16:
        raise _invalid("subscription.keys.auth", "auth must be a base64url 16-byte secret")


async def subscribe(
    stores: Stores, user_id: int, session_id: str, endpoint: str, p256dh: str, auth: str,
    alerts: Mapping[str, bool] | None, policy: str,
) -> dict[str, Any]:
    """The session's Web Push subscription, replacing any it had."""
    if not stores.settings.push_vapid_private_key:
        raise _unavailable("Web Push")
    _check_keys(p256dh, auth)
    from nubo_backend.push.endpoints import EndpointRefused, check_endpoint  # (httpx: only when used)

    try:
        origin = await check_endpoint(endpoint, stores.settings.push_allow_private_endpoints)
    except EndpointRefused as exc:
        raise _invalid("subscription.endpoint", f"Endpoint refused: {exc}") from None
    q = stores.sql.push
    async with stores.pg.acquire() as conn, conn.transaction():
        await q.delete_replaced_webpush(conn, session_id=session_id, endpoint=endpoint)
        row = await q.insert_webpush(
            conn, user_id=user_id, session_id=session_id, endpoint=endpoint, origin=origin,
            p256dh=p256dh, auth=auth, alerts=_stored_alerts(alerts), policy=policy,
        )
    return _subscription_view(stores, row)


def _no_subscription() -> NuboError:
    return not_found("No push subscription for this session", "push_subscription_not_found")


async def subscription(stores: Stores, session_id: str) -> dict[str, Any]:
    row = await stores.sql.push.webpush_of_session(stores.pg, session_id=session_id)
    if row is None:
        raise _no_subscription()
    return _subscription_view(stores, row)


async def update_subscription(
    stores: Stores, session_id: str, alerts: Mapping[str, bool] | None, policy: str | None
) -> dict[str, Any]:
    """Change alerts (the kinds named; the others keep their state) and policy."""
    current = await stores.sql.push.webpush_of_session(stores.pg, session_id=session_id)
    if current is None:
        raise _no_subscription()
    merged = {**loads(current["alerts"]), **(alerts or {})}
    row = await stores.sql.push.update_webpush_data(
        stores.pg, session_id=session_id, alerts=_stored_alerts(merged), policy=policy or current["policy"]
    )
    if row is None:
        raise _no_subscription()
    return _subscription_view(stores, row)


async def unsubscribe(stores: Stores, session_id: str) -> None:
    """Idempotent: no subscription left for the session."""
    await stores.sql.push.delete_webpush(stores.pg, session_id=session_id)


async def forget_sessions(stores: Stores, session_ids: list[str]) -> None:
    """Sessions ended (logout, revocation): their subscriptions and devices go. If PostgreSQL
    cannot say so now, the sender deletes them instead of pushing (it checks the session)."""
    if not session_ids:
        return
    try:
        await stores.sql.push.delete_of_sessions(stores.pg, session_ids=session_ids)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        log.warning("push subscriptions of %d ended session(s) left to the sender: %s", len(session_ids), exc)


def _check_platform(stores: Stores, platform: str, token: str) -> None:
    configured = {"apns": stores.settings.push_apns_key_file, "fcm": stores.settings.push_fcm_service_account_file}
    if not configured[platform]:
        raise _unavailable("APNs" if platform == "apns" else "FCM")
    if not TOKEN_PATTERNS[platform].fullmatch(token):
        raise NuboError(422, "invalid_device_token", f"Not a valid {platform} device token",
                        details=[{"field": "token", "message": f"not a valid {platform} device token"}])


async def register_device(
    stores: Stores, user_id: int, session_id: str, platform: str, token: str,
    alerts: Mapping[str, bool] | None, policy: str,
) -> dict[str, Any]:
    """A device token for this session (moved here if another session had it)."""
    _check_platform(stores, platform, token)
    row = await stores.sql.push.upsert_device(
        stores.pg, user_id=user_id, session_id=session_id, kind=platform, token=token,
        alerts=_stored_alerts(alerts), policy=policy,
    )
    return {"id": row["id"], "platform": row["kind"], "token": row["token"], "alerts": _alerts(row["alerts"]),
            "policy": row["policy"]}


async def unregister_device(stores: Stores, user_id: int, platform: str, token: str) -> None:
    """Idempotent: the caller's device token no longer receives pushes."""
    if not TOKEN_PATTERNS[platform].fullmatch(token):
        return  # no such token can have been registered
    await stores.sql.push.delete_device(stores.pg, user_id=user_id, kind=platform, token=token)
