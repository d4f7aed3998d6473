"""Notifications (likes, comments, follows, mentions): kept 30 days in MongoDB, pushed live."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bson import ObjectId
from bson.errors import InvalidId

from nubo_backend.errors import NuboError
from nubo_backend.pagination import recent_documents
from nubo_backend.realtime.events import emit
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


async def notify(stores: Stores, user_id: int, event_type: str, data: dict[str, Any]) -> None:
    """Store a notification for user_id and deliver it live as an event of the same type.

    Nobody is notified of their own actions.
    """
    if data.get("actor_id") == user_id:
        return
    doc = {"user_id": user_id, "type": event_type, "data": data, "read": False,
           "created_at": datetime.now(UTC)}
    await stores.mongo[NOTIFICATIONS].insert_one(doc)
    await emit(stores, [user_id], event_type, {**data, "notification_id": str(doc["_id"])})


async def list_notifications(
    stores: Stores, user_id: int, limit: int, cursor: list[Any] | None
) -> dict[str, Any]:
    return await recent_documents(
        stores.mongo[NOTIFICATIONS], {"user_id": user_id}, limit, cursor, stores.settings.mongo_ttl_days, _public
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
