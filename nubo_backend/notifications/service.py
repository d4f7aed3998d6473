"""Notifications (likes, comments, follows, mentions): kept 30 days in MongoDB, pushed live.

They are written by the outbox relay (`outbox.notification` in the announcing transaction), so
a notification and its live event are never one without the other."""

from __future__ import annotations

from typing import Any

from bson import ObjectId
from bson.errors import InvalidId

from nubo_backend.blocks.visibility import hidden_from, muted_by
from nubo_backend.edge.errors import NuboError
from nubo_backend.edge.pagination import recent_documents
from nubo_backend.stores import Stores

NOTIFICATIONS = "notifications"


def _public(doc: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(doc["_id"]),
        "type": doc["type"],
        "data": doc["data"],
        "read": doc.get("read", False),
        "created_at": doc["created_at"].isoformat(),
    }


async def list_notifications(
    stores: Stores, user_id: int, limit: int, cursor: list[Any] | None
) -> dict[str, Any]:
    """Newest first; those from anyone now blocked (either way) or muted are left out too,
    not only the ones announced after the block or mute."""
    query: dict[str, Any] = {"user_id": user_id}
    silenced = await hidden_from(stores, user_id) | await muted_by(stores, user_id)
    if silenced:
        query["data.actor_id"] = {"$nin": sorted(silenced)}
    return await recent_documents(
        stores.mongo[NOTIFICATIONS], query, limit, cursor, stores.settings.mongo_ttl_days, _public
    )


async def mark_read(stores: Stores, user_id: int, ids: list[str] | None) -> int:
    """Mark the given notifications (or all when ids is None) read; returns how many changed."""
    query: dict[str, Any] = {"user_id": user_id, "read": False}
    if ids is not None:
        try:
            query["_id"] = {"$in": [ObjectId(i) for i in ids]}
        except InvalidId:
            raise NuboError(422, "validation_error", "Invalid notification id",
                            details=[{"field": "ids", "message": "Invalid id"}]) from None
    result = await stores.mongo[NOTIFICATIONS].update_many(query, {"$set": {"read": True}})
    return result.modified_count
