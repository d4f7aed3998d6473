"""Reports and their resolution: who may report what, what a moderator's action does, and
the record of every action. No HTTP in sight.

Content is removed through the domains' own services (acting as its author), so that caches,
counters and events stay what they would be had the author deleted it. A suspension marks the
account (login refuses it) and revokes every session (open sockets close through the
revocation channel, access tokens stop working).
"""

from __future__ import annotations

import logging
from typing import Any

import asyncpg

from nubo_backend.auth.service import logout_everywhere
from nubo_backend.edge.errors import NuboError, conflict, forbidden, not_found
from nubo_backend.edge.pagination import MAX_ROW_ID, decode_cursor, page
from nubo_backend.jsonutil import dumps_str, loads
from nubo_backend.media import service as media
from nubo_backend.messaging import service as messaging
from nubo_backend.moderation.schemas import ReportIn
from nubo_backend.posts import comments
from nubo_backend.posts import service as posts
from nubo_backend.stores import Stores

log = logging.getLogger("nubo.moderation")

REPORTS_PER_WINDOW = 100  # per reporter
REPORT_WINDOW_SECONDS = 60

_NOT_FOUND = {
    "user": ("User not found", "user_not_found"),
    "post": ("Post not found", "post_not_found"),
    "comment": ("Comment not found", "comment_not_found"),
    "message": ("Message not found", "message_not_found"),
}


def _target_not_found(target_type: str) -> NuboError:
    return not_found(*_NOT_FOUND[target_type])


def report_not_found() -> NuboError:
    return not_found("Report not found", "report_not_found")


# --- reporting -----------------------------------------------------------------------


async def _snapshot(
    conn: asyncpg.Connection, stores: Stores, reporter_id: int, target_type: str, target_id: int
) -> tuple[dict[str, Any], int | None]:
    """The target as it is now, and the account behind it; 404 if there is none, 403 for a
    message of a conversation the reporter is not in."""
    q = stores.sql.moderation
    load = {"user": q.user_target, "post": q.post_target, "comment": q.comment_target, "message": q.message_target}
    row = await load[target_type](conn, target_id=target_id)
    if row is None:
        raise _target_not_found(target_type)
    snapshot = dict(row)
    if target_type == "message":
        # Only a member sees the message, so only a member may report it (as messaging answers).
        membership = await stores.sql.messaging.membership(
            conn, conversation_id=row["conversation_id"], user_id=reporter_id
        )
        if membership is None or membership["role"] is None:
            raise forbidden("You are not a member of this conversation", "not_a_member")
        snapshot["media"] = (await media.media_for_messages(conn, stores, [target_id])).get(target_id, [])
    elif target_type == "post":
        snapshot["media"] = (await media.media_for_posts(conn, stores, [target_id])).get(target_id, [])
    return snapshot, row["id"] if target_type == "user" else row["author_id"]


def public_report(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "reporter_id": row["reporter_id"],
        "target": {"type": row["target_type"], "id": row["target_id"], "user_id": row["target_user_id"]},
        "reason": row["reason"],
        "note": row["note"],
        "snapshot": loads(row["snapshot"]),
        "status": row["status"],
        "resolution": row["resolution"],
        "resolved_by": row["resolved_by"],
        "resolved_at": row["resolved_at"],
        "created_at": row["created_at"],
    }


async def file_report(stores: Stores, reporter_id: int, body: ReportIn) -> dict[str, Any]:
    """Store a report with a copy of its target; refuses the reporter's own account or content."""
    async with stores.pg.acquire() as conn:
        snapshot, target_user_id = await _snapshot(conn, stores, reporter_id, body.target_type, body.target_id)
        if target_user_id == reporter_id:
            raise NuboError(422, "own_content", "You cannot report yourself or your own content")
        row = await stores.sql.moderation.insert_report(
            conn,
            reporter_id=reporter_id,
            target_type=body.target_type,
            target_id=body.target_id,
            target_user_id=target_user_id,
            reason=body.reason,
            note=body.note,
            snapshot=dumps_str(snapshot),
        )
    log.info("report filed", extra={"report_id": row["id"], "reporter_id": reporter_id})
    return public_report(row)


# --- moderators ----------------------------------------------------------------------


async def require_moderator(stores: Stores, user_id: int) -> None:
    if await stores.sql.moderation.user_role(stores.pg, user_id=user_id) != "moderator":
        raise forbidden("Only moderators may do this", "not_a_moderator")


def _decode_queue_cursor(cursor: str | None) -> tuple[int, int] | None:
    key = decode_cursor(cursor, 2)
    if key is None:
        return None
    rank, row_id = key
    if type(rank) is not int or rank not in (0, 1) or type(row_id) is not int or not 0 < row_id <= MAX_ROW_ID:
        raise NuboError(400, "invalid_cursor", "Invalid cursor")
    return rank, row_id


async def list_reports(
    stores: Stores, moderator_id: int, status: str | None, limit: int, cursor: str | None
) -> dict[str, Any]:
    """Open reports first, then resolved ones; newest first within each."""
    await require_moderator(stores, moderator_id)
    after = _decode_queue_cursor(cursor)
    rows = stores.sql.moderation.reports_page(
        stores.pg,
        status=status,
        after_rank=after[0] if after else None,
        after_id=after[1] if after else None,
        lim=limit + 1,
    )
    items = [(r["rank"], public_report(r)) async for r in rows]
    result = page(items, limit, lambda item: [item[0], item[1]["id"]])
    return {"items": [report for _, report in result["items"]], "next_cursor": result["next_cursor"]}


def _public_action(row: Any) -> dict[str, Any]:
    moderator = None
    if row["moderator_id"] is not None:
        moderator = {"id": row["moderator_id"], "username": row["moderator_username"]}
    return {
        "id": row["id"],
        "action": row["action"],
        "moderator": moderator,
        "target": {"type": row["target_type"], "id": row["target_id"]},
        "details": loads(row["details"]),
        "created_at": row["created_at"],
    }


async def get_report(stores: Stores, moderator_id: int, report_id: int) -> dict[str, Any]:
    """One report and the history of what moderators did about it, oldest first."""
    await require_moderator(stores, moderator_id)
    async with stores.pg.acquire() as conn:
        row = await stores.sql.moderation.report_by_id(conn, report_id=report_id)
        if row is None:
            raise report_not_found()
        actions = [_public_action(a) async for a in stores.sql.moderation.report_actions(conn, report_id=report_id)]
    return {**public_report(row), "actions": actions}


async def _remove_content(stores: Stores, report: Any) -> str:
    """Delete the reported content through its own service, as its author; "removed", or
    "already_gone" when it no longer exists."""
    kind, target_id, author_id = report["target_type"], report["target_id"], report["target_user_id"]
    if kind == "user":
        raise NuboError(422, "action_not_applicable", "An account cannot be removed: suspend it instead")
    if author_id is None:  # the author's account was erased: posts and comments went with it
        if kind != "message":
            return "already_gone"
        raise conflict("The sender's account was erased; the message cannot be removed", "content_not_removable")
    try:
        if kind == "post":
            await posts.delete_post(stores, target_id, author_id)
        elif kind == "comment":
            await comments.delete_comment(stores, target_id, author_id)
        else:
            await messaging.delete_message(stores, author_id, target_id)
    except NuboError as exc:
        if exc.status in (404, 409):  # deleted meanwhile (a message stays as a tombstone: 409)
            return "already_gone"
        if exc.code == "not_a_member":  # the sender left the conversation
            raise conflict(
                "The sender left the conversation; the message cannot be removed", "content_not_removable"
            ) from None
        raise
    return "removed"


async def _suspend(conn: asyncpg.Connection, stores: Stores, report: Any) -> int:
    """Mark the account suspended and revoke its sessions, in the caller's transaction: if
    Redis cannot revoke them, the suspension rolls back (503) and can be retried."""
    user_id = report["target_user_id"]
    if user_id is None:
        raise conflict("The account behind this report no longer exists", "account_gone")
    role = await stores.sql.moderation.user_role(conn, user_id=user_id)
    if role == "moderator":
        raise forbidden("A moderator cannot be suspended: make them a user first (nubo role)", "target_is_moderator")
    await stores.sql.moderation.suspend_user(conn, user_id=user_id)
    return await logout_everywhere(stores, user_id)


async def resolve_report(
    stores: Stores, moderator_id: int, report_id: int, action: str, note: str
) -> dict[str, Any]:
    """Apply the action, mark the report resolved and record who did what, once per report."""
    await require_moderator(stores, moderator_id)
    q = stores.sql.moderation
    details: dict[str, Any] = {"note": note}
    async with stores.pg.acquire() as conn, conn.transaction():
        report = await q.lock_report(conn, report_id=report_id)  # two moderators: one wins
        if report is None:
            raise report_not_found()
        if report["status"] != "open":
            raise conflict("This report is already resolved", "report_resolved")
        if action == "remove":
            details["outcome"] = await _remove_content(stores, report)
        elif action == "suspend":
            details["revoked_sessions"] = await _suspend(conn, stores, report)
        await q.resolve_report(conn, report_id=report_id, resolution=action, moderator_id=moderator_id)
        await q.record_action(
            conn,
            report_id=report_id,
            moderator_id=moderator_id,
            action=action,
            target_type=report["target_type"],
            target_id=report["target_id"],
            details=dumps_str(details),
        )
    if action == "suspend":
        # Again after commit: a login that read the account just before the suspension
        # committed may have opened a session since.
        try:
            await logout_everywhere(stores, report["target_user_id"])
        except NuboError as exc:
            log.warning("second revocation after suspension failed: %s", exc.message)
    log.info("report resolved", extra={"report_id": report_id, "action": action, "moderator_id": moderator_id})
    return await get_report(stores, moderator_id, report_id)


async def lift_suspension(stores: Stores, moderator_id: int, user_id: int, note: str = "") -> dict[str, Any]:
    """Lift an account's suspension (idempotent): it may log in again (its sessions stay
    revoked). Recorded as an `unsuspend` action when there was a suspension to lift."""
    await require_moderator(stores, moderator_id)
    q = stores.sql.moderation
    async with stores.pg.acquire() as conn, conn.transaction():
        row = await q.unsuspend_user(conn, user_id=user_id)
        if row is None:
            raise _target_not_found("user")
        lifted = row["suspended_at"] is not None
        if lifted:
            details = {"note": note, "suspended_at": row["suspended_at"].isoformat()}
            await q.record_action(conn, report_id=None, moderator_id=moderator_id, action="unsuspend",
                                  target_type="user", target_id=user_id, details=dumps_str(details))
    if lifted:
        log.info("suspension lifted", extra={"user_id": user_id, "moderator_id": moderator_id})
    return {"user_id": user_id, "suspended": False, "lifted": lifted}
