"""Conversations and messages: membership rules, idempotent sends, read markers, live events.

Every write announces its events in its own transaction (outbox.announce): a message and
its `message.created` commit together, and the relay delivers them once it has.

Blocks (docs/moderation.md): a direct conversation across a block refuses messages both
ways (403 `blocked`); a group keeps working, but what each side sends (messages, edits,
read receipts, typing) goes to everyone except the other, whose history leaves it out too.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from nubo_backend.accounts.verified import require_verified_email
from nubo_backend.blocks.visibility import hidden_from, refuse_if_any_blocked, refuse_if_blocked, without_blocked
from nubo_backend.edge.errors import NuboError, forbidden, not_found, unprocessable
from nubo_backend.edge.pagination import page, time_id_key
from nubo_backend.jsonutil import loads
from nubo_backend.media import service as media
from nubo_backend.messaging.reaction_counts import reactions_for  # social31
from nubo_backend.outbox import Event, announce
from nubo_backend.realtime.events import publish_transient
from nubo_backend.stores import Stores


def _message(row: asyncpg.Record) -> dict[str, Any]:
    deleted = row["deleted_at"] is not None
    return {
        "id": row["id"],
        "conversation_id": row["conversation_id"],
        "sender_id": row["sender_id"],
        "client_id": row["client_id"],
        "body": None if deleted else row["body"],
        "created_at": row["created_at"],
        "edited_at": row["edited_at"],
        "deleted": deleted,
        "media": [],  # filled by media.attach_to_message / media_for_messages
        "reactions": [],  # social31: filled by reactions.reactions_for where a message is read
        "preview": loads(row["preview"]) if row.get("preview") else None,  # social31: its first link's card
    }


def _conversation_summary(row: asyncpg.Record) -> dict[str, Any]:
    last = None
    if row["lm_id"] is not None:
        deleted = row["lm_deleted_at"] is not None
        last = {
            "id": row["lm_id"],
            "sender_id": row["lm_sender_id"],
            "body": None if deleted else row["lm_body"],
            "created_at": row["lm_created_at"],
            "edited_at": row["lm_edited_at"],
            "deleted": deleted,
        }
    return {
        "id": row["id"],
        "kind": row["kind"],
        "title": row["title"],
        "member_ids": list(row["member_ids"]),
        "created_at": row["created_at"],
        "last_activity": row["last_activity"],
        "last_message": last,
        "last_read_message_id": row["last_read_message_id"],
        "unread_count": row["unread_count"],
    }


def _check_length(stores: Stores, body: str) -> None:
    limit = stores.settings.message_max_length
    if len(body) > limit:
        raise unprocessable(
            [{"field": "body", "message": f"At most {limit} characters"}], "Message too long"
        )


async def _require_member(
    conn: asyncpg.Connection, stores: Stores, conversation_id: int, user_id: int, *, lock: bool = False
) -> asyncpg.Record:
    query = stores.sql.messaging.lock_membership if lock else stores.sql.messaging.membership
    row = await query(conn, conversation_id=conversation_id, user_id=user_id)
    if row is None:
        raise not_found("Conversation not found", "conversation_not_found")
    if row["role"] is None:
        raise forbidden("You are not a member of this conversation", "not_a_member")
    return row


async def _member_ids(conn: asyncpg.Connection, stores: Stores, conversation_id: int) -> list[int]:
    rows = [row async for row in stores.sql.messaging.member_ids(conn, conversation_id=conversation_id)]
    return [r["user_id"] for r in rows]


async def _audience(conn: asyncpg.Connection, stores: Stores, conversation_id: int, user_id: int) -> list[int]:
    """Who hears of what user_id does in a conversation: its members, but across no block."""
    return await without_blocked(conn, stores, user_id, await _member_ids(conn, stores, conversation_id))


async def _refuse_direct_across_block(
    conn: asyncpg.Connection, stores: Stores, membership: asyncpg.Record, conversation_id: int, user_id: int
) -> None:
    if membership["kind"] == "direct":
        for other_id in await _member_ids(conn, stores, conversation_id):
            await refuse_if_blocked(conn, stores, user_id, other_id)


async def _add_members(
    conn: asyncpg.Connection, stores: Stores, conversation_id: int, user_ids: list[int], role: str
) -> list[int]:
    """Add members (those already in are left alone); returns the ids actually added."""
    rows = stores.sql.messaging.add_members(conn, conversation_id=conversation_id, user_ids=user_ids, role=role)
    return [row["user_id"] async for row in rows]


async def _require_users(conn: asyncpg.Connection, stores: Stores, user_ids: list[int], field: str) -> None:
    found = {row["id"] async for row in stores.sql.messaging.existing_user_ids(conn, user_ids=user_ids)}
    missing = [uid for uid in user_ids if uid not in found]
    if missing:
        raise NuboError(
            404, "user_not_found", f"Unknown user id(s): {', '.join(map(str, missing))}",
            details=[{"field": field, "message": f"Unknown user {uid}"} for uid in missing],
        )


async def open_direct(stores: Stores, user_id: int, other_id: int) -> tuple[dict[str, Any], bool]:
    """The direct conversation between two users, created on first use. Returns (it, created)."""
    if other_id == user_id:
        raise unprocessable([{"field": "user_id", "message": "Cannot open a conversation with yourself"}])
    low, high = sorted((user_id, other_id))
    key = f"{low}:{high}"
    q = stores.sql.messaging
    async with stores.pg.acquire() as conn, conn.transaction():
        await _require_users(conn, stores, [other_id], "user_id")
        conversation_id = await q.insert_direct(conn, direct_key=key, created_by=user_id)
        created = conversation_id is not None
        if created:
            await refuse_if_blocked(conn, stores, user_id, other_id)  # (rolls the insert back)
            await _add_members(conn, stores, conversation_id, [low, high], "member")
            conversation = await _conversation(conn, stores, conversation_id)
            await announce(conn, stores, Event([other_id, user_id], "conversation.created", conversation))
    if not created:
        async with stores.pg.acquire() as conn:
            conversation_id = await q.direct_by_key(conn, direct_key=key)
        conversation = await get_conversation(stores, user_id, conversation_id)
    return conversation, created


def group_full(cap: int) -> NuboError:
    return NuboError(409, "group_full", f"A group has at most {cap} members, owner included")


async def create_group(stores: Stores, owner_id: int, title: str, member_ids: list[int]) -> dict[str, Any]:
    others = [uid for uid in dict.fromkeys(member_ids) if uid != owner_id]
    if 1 + len(others) > stores.settings.group_max_members:
        raise group_full(stores.settings.group_max_members)
    q = stores.sql.messaging
    async with stores.pg.acquire() as conn, conn.transaction():
        await _require_users(conn, stores, others, "member_ids")
        await refuse_if_any_blocked(conn, stores, owner_id, others)
        conversation_id = await q.insert_group(conn, title=title, created_by=owner_id)
        await _add_members(conn, stores, conversation_id, [owner_id], "owner")
        await _add_members(conn, stores, conversation_id, others, "member")
        conversation = await _conversation(conn, stores, conversation_id)
        await announce(conn, stores, Event([owner_id, *others], "conversation.created", conversation))
    return conversation


async def get_conversation(stores: Stores, user_id: int, conversation_id: int) -> dict[str, Any]:
    async with stores.pg.acquire() as conn:
        await _require_member(conn, stores, conversation_id, user_id)
        return await _conversation(conn, stores, conversation_id)


async def _conversation(conn: asyncpg.Connection, stores: Stores, conversation_id: int) -> dict[str, Any]:
    q = stores.sql.messaging
    row = await q.conversation_by_id(conn, conversation_id=conversation_id)
    members = [row async for row in q.conversation_members(conn, conversation_id=conversation_id)]
    return {
        "id": row["id"],
        "kind": row["kind"],
        "title": row["title"],
        "created_by": row["created_by"],
        "created_at": row["created_at"],
        "last_activity": row["last_activity"],
        "last_message_id": row["last_message_id"],
        "members": [dict(m) for m in members],
    }


async def list_conversations(
    stores: Stores, user_id: int, limit: int, before: tuple[datetime, int] | None
) -> dict[str, Any]:
    """`before`: the (last activity, id) of the last conversation of the previous page."""
    before_activity, before_id = before or (None, None)
    hidden = await hidden_from(stores, user_id)
    async with stores.pg.acquire() as conn:
        rows = [row async for row in stores.sql.messaging.list_conversations(
            conn, user_id=user_id, hidden_ids=list(hidden), before_activity=before_activity, before_id=before_id,
            limit=limit + 1,
        )]
    items = [_conversation_summary(r) for r in rows]
    for item in items:  # a group's last message from across a block is not shown
        last = item["last_message"]
        if last is not None and item["kind"] == "group" and last["sender_id"] in hidden:
            item["last_message"] = None
    return page(items, limit, lambda c: time_id_key(c["last_activity"], c["id"]))


async def add_members(
    stores: Stores, user_id: int, conversation_id: int, new_ids: list[int]
) -> dict[str, Any]:
    """Owners add people to a group; everyone in it hears of the newcomers."""
    async with stores.pg.acquire() as conn, conn.transaction():
        membership = await _require_member(conn, stores, conversation_id, user_id, lock=True)
        if membership["kind"] != "group":
            raise NuboError(409, "not_a_group", "Members can only be added to a group conversation")
        if membership["role"] != "owner":
            raise forbidden("Only an owner can add members", "not_an_owner")
        new_ids = list(dict.fromkeys(new_ids))
        await _require_users(conn, stores, new_ids, "user_ids")
        await refuse_if_any_blocked(conn, stores, user_id, new_ids)
        await stores.sql.messaging.lock_conversation(conn, conversation_id=conversation_id)
        added = await _add_members(conn, stores, conversation_id, new_ids, "member")
        cap = stores.settings.group_max_members
        if added and await stores.sql.messaging.member_count(conn, conversation_id=conversation_id) > cap:
            raise group_full(cap)  # the transaction rolls the additions back
        if added:
            everyone = await _member_ids(conn, stores, conversation_id)
            await announce(conn, stores, Event(everyone, "conversation.members_added",
                                               {"conversation_id": conversation_id, "user_ids": added, "by": user_id}))
        return await _conversation(conn, stores, conversation_id)


async def remove_member(stores: Stores, user_id: int, conversation_id: int, target_id: int) -> None:
    """A member leaves (target is themselves) or an owner removes someone from a group."""
    q = stores.sql.messaging
    async with stores.pg.acquire() as conn, conn.transaction():
        membership = await _require_member(conn, stores, conversation_id, user_id, lock=True)
        if membership["kind"] != "group":
            raise NuboError(409, "not_a_group", "A direct conversation has no members to remove")
        if target_id != user_id and membership["role"] != "owner":
            raise forbidden("Only an owner can remove other members", "not_an_owner")
        before = await _member_ids(conn, stores, conversation_id)
        if await q.remove_member(conn, conversation_id=conversation_id, user_id=target_id) is None:
            raise not_found("That user is not a member of this conversation", "member_not_found")
        await q.promote_oldest_member(conn, conversation_id=conversation_id)
        await announce(conn, stores, Event(before, "conversation.member_removed",
                                           {"conversation_id": conversation_id, "user_id": target_id, "by": user_id}))


async def send_message(
    stores: Stores, user_id: int, conversation_id: int, body: str, client_id: str | None,
    media_ids: list[int] | None = None,  # media
) -> tuple[dict[str, Any], bool]:
    """Store a message, once per client_id; returns (message, created). Durable on return."""
    _check_length(stores, body)
    await require_verified_email(stores, user_id)  # NUBO_EMAIL_VERIFICATION (REST and sockets)
    q = stores.sql.messaging
    async with stores.pg.acquire() as conn, conn.transaction():
        membership = await _require_member(conn, stores, conversation_id, user_id)
        await _refuse_direct_across_block(conn, stores, membership, conversation_id, user_id)
        row = await q.insert_message(
            conn, conversation_id=conversation_id, sender_id=user_id, client_id=client_id, body=body
        )
        if row is None:  # a retry: hand back what the first attempt stored
            row = await q.message_by_client_id(conn, sender_id=user_id, client_id=client_id)
            if row["conversation_id"] != conversation_id:
                raise NuboError(409, "client_id_reused", "This client_id was already used in another conversation")
            message = _message(row)
            message["media"] = (await media.media_for_messages(conn, stores, [row["id"]])).get(row["id"], [])  # media
            return message, False
        attached = await media.attach_to_message(conn, stores, user_id, row["id"], media_ids or [])  # media
        await q.touch_conversation(
            conn, conversation_id=conversation_id, message_id=row["id"], at=row["created_at"]
        )
        members = await _audience(conn, stores, conversation_id, user_id)
        message = _message(row)
        message["media"] = attached  # media
        await announce(conn, stores, Event(members, "message.created", message))
    return message, True


async def list_messages(
    stores: Stores, user_id: int, conversation_id: int, limit: int, before_id: int | None
) -> dict[str, Any]:
    hidden = await hidden_from(stores, user_id)
    async with stores.pg.acquire() as conn:
        membership = await _require_member(conn, stores, conversation_id, user_id)
        rows = [row async for row in stores.sql.messaging.list_messages(
            conn, conversation_id=conversation_id, before_id=before_id, limit=limit + 1,
        )]
        attached = await media.media_for_messages(conn, stores, [r["id"] for r in rows])  # media
        reacted = await reactions_for(conn, stores, [r["id"] for r in rows], user_id, hidden)  # social31
    messages = [_message(r) | {"media": attached.get(r["id"], []),  # media
                               "reactions": reacted.get(r["id"], [])} for r in rows]
    result = page(messages, limit, lambda m: [m["id"]])
    if hidden and membership["kind"] == "group":  # a direct conversation keeps its history
        result["items"] = [m for m in result["items"] if m["sender_id"] not in hidden]
    return result


async def _own_message(
    conn: asyncpg.Connection, stores: Stores, user_id: int, message_id: int
) -> tuple[asyncpg.Record, asyncpg.Record]:
    """The caller's message and their membership of its conversation."""
    row = await stores.sql.messaging.message_by_id(conn, message_id=message_id)
    if row is None:
        raise not_found("Message not found", "message_not_found")
    membership = await _require_member(conn, stores, row["conversation_id"], user_id)
    if row["sender_id"] != user_id:
        raise forbidden("Only the sender can change this message", "not_the_sender")
    if row["deleted_at"] is not None:
        raise NuboError(409, "message_deleted", "This message was deleted")
    return row, membership


async def edit_message(stores: Stores, user_id: int, message_id: int, body: str) -> dict[str, Any]:
    _check_length(stores, body)
    async with stores.pg.acquire() as conn, conn.transaction():
        found, membership = await _own_message(conn, stores, user_id, message_id)
        await _refuse_direct_across_block(conn, stores, membership, found["conversation_id"], user_id)
        await stores.sql.messaging.keep_message_version(conn, message_id=message_id)  # social31: edit history
        row = await stores.sql.messaging.edit_message(conn, message_id=message_id, body=body)
        members = await _audience(conn, stores, row["conversation_id"], user_id)
        attached = await media.media_for_messages(conn, stores, [message_id])  # media
        reacted = await reactions_for(conn, stores, [message_id], user_id)  # social31
        message = _message(row) | {"media": attached.get(message_id, []),  # media
                                   "reactions": reacted.get(message_id, [])}
        await announce(conn, stores, Event(members, "message.updated", message))
    return message


async def delete_message(stores: Stores, user_id: int, message_id: int) -> dict[str, Any]:
    """Delete for everyone; the message stays as a tombstone and a message.deleted event."""
    async with stores.pg.acquire() as conn, conn.transaction():
        _, membership = await _own_message(conn, stores, user_id, message_id)
        row = await stores.sql.messaging.delete_message(conn, message_id=message_id)
        await media.delete_for_message(conn, stores, message_id)  # media: rows go, files queued
        await stores.sql.messaging.forget_deleted_message(conn, message_id=message_id)  # social31
        # A direct conversation keeps its history across a block: both see the tombstone.
        members = (await _member_ids(conn, stores, row["conversation_id"]) if membership["kind"] == "direct"
                   else await _audience(conn, stores, row["conversation_id"], user_id))
        tombstone = _message(row)
        await announce(conn, stores, Event(members, "message.deleted", tombstone))
    media.collect_later(stores)  # media: remove the queued files
    return tombstone


async def mark_read(stores: Stores, user_id: int, conversation_id: int, message_id: int) -> dict[str, Any]:
    """Move the caller's read marker forward (never back) and tell the other members."""
    q = stores.sql.messaging
    async with stores.pg.acquire() as conn, conn.transaction():
        await _require_member(conn, stores, conversation_id, user_id)
        message = await q.message_by_id(conn, message_id=message_id)
        if message is None or message["conversation_id"] != conversation_id:
            raise not_found("Message not found in this conversation", "message_not_found")
        moved = await q.advance_read_marker(
            conn, conversation_id=conversation_id, user_id=user_id, message_id=message_id
        )
        receipt = {"conversation_id": conversation_id, "user_id": user_id, "message_id": message_id}
        if moved is not None:
            members = await _audience(conn, stores, conversation_id, user_id)
            await announce(conn, stores, Event(members, "conversation.read", receipt))
    return receipt


async def typing(stores: Stores, user_id: int, conversation_id: int) -> None:
    """A passing signal to the other members: delivered live, never stored."""
    async with stores.pg.acquire() as conn:
        await _require_member(conn, stores, conversation_id, user_id)
        members = await _audience(conn, stores, conversation_id, user_id)
    others = [m for m in members if m != user_id]
    await publish_transient(stores, others, "typing", {"conversation_id": conversation_id, "user_id": user_id})
