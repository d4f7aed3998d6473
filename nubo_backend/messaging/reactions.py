"""Reactions on messages, and their edit history.

Reactions: one emoji per `PUT /messages/{id}/reactions/{emoji}`, one row per person and
emoji, counted per message and delivered to the conversation's members (`message.reaction`),
durable like read markers (outbox)."""

from __future__ import annotations

from typing import Any

from nubo_backend.blocks.visibility import hidden_from
from nubo_backend.edge.errors import NuboError, not_found
from nubo_backend.edge.pagination import MAX_ROW_ID, page
from nubo_backend.messaging.reaction_counts import check_emoji, reactions_for
from nubo_backend.messaging.service import _audience, _refuse_direct_across_block, _require_member
from nubo_backend.outbox import Event, announce
from nubo_backend.posts.history import public_version
from nubo_backend.stores import Stores


async def react(stores: Stores, user_id: int, message_id: int, emoji: str, add: bool) -> dict[str, Any]:
    """Add (or take back) the caller's reaction; idempotent both ways. Members only; a direct
    conversation across a block refuses it (403), a group tells everyone but the blocked."""
    check_emoji(emoji)
    q = stores.sql.messaging
    async with stores.pg.acquire() as conn, conn.transaction():
        message = await q.message_by_id(conn, message_id=message_id)
        if message is None:
            raise not_found("Message not found", "message_not_found")
        conversation_id = message["conversation_id"]
        membership = await _require_member(conn, stores, conversation_id, user_id)
        if message["deleted_at"] is not None:
            raise NuboError(409, "message_deleted", "This message was deleted")
        await _refuse_direct_across_block(conn, stores, membership, conversation_id, user_id)
        change = q.add_reaction if add else q.remove_reaction
        if await change(conn, message_id=message_id, user_id=user_id, emoji=emoji) is not None:
            members = await _audience(conn, stores, conversation_id, user_id)
            count = await q.reaction_count(conn, message_id=message_id, emoji=emoji)
            await announce(conn, stores, Event(members, "message.reaction", {
                "conversation_id": conversation_id, "message_id": message_id, "user_id": user_id,
                "emoji": emoji, "added": add, "count": count}))
    hidden = await hidden_from(stores, user_id)
    counts = await reactions_for(stores.pg, stores, [message_id], user_id, hidden)
    return {"message_id": message_id, "reactions": counts.get(message_id, [])}


async def message_history(
    stores: Stores, user_id: int, message_id: int, limit: int, before: int | None
) -> dict[str, Any]:
    """The versions a message's edits replaced, newest first: members only; in a group, the
    history of someone a block hides is 404 like the message, and a deleted message has none."""
    async with stores.pg.acquire() as conn:
        message = await stores.sql.messaging.message_by_id(conn, message_id=message_id)
        if message is None:
            raise not_found("Message not found", "message_not_found")
        membership = await _require_member(conn, stores, message["conversation_id"], user_id)
        if membership["kind"] == "group" and message["sender_id"] in await hidden_from(stores, user_id):
            raise not_found("Message not found", "message_not_found")
        rows = [r async for r in stores.sql.messaging.message_versions_page(
            conn, message_id=message_id, before=before or MAX_ROW_ID, lim=limit + 1)]
    result = page(rows, limit, lambda r: [r["id"]])
    result["items"] = [public_version(r) for r in result["items"]]
    return result
