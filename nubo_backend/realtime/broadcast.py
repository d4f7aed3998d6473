"""The seed's broadcast: a plain text frame goes to every client on every instance.

Lines travel as raw text on the Redis channel `nubo-websocket` and are kept 30 days in
MongoDB (`broadcasts`), readable with GET /broadcast.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from bson import ObjectId
from bson.errors import InvalidId

from nubo_backend.errors import NuboError
from nubo_backend.pagination import page
from nubo_backend.stores import Stores

BROADCASTS = "broadcasts"


async def publish(stores: Stores, user_id: int, text: str) -> None:
    """Relay text to every instance (delivery first), then keep it for GET /broadcast."""
    await stores.redis.publish(stores.keys.broadcast_channel, text.encode())
    await stores.mongo[BROADCASTS].insert_one(
        {"user_id": user_id, "text": text, "created_at": datetime.now(UTC)}
    )


async def recent(stores: Stores, limit: int, cursor: list[Any] | None) -> dict[str, Any]:
    """The last broadcast lines, newest first; expired ones are left out even before MongoDB deletes them."""
    cutoff = datetime.now(UTC) - timedelta(days=stores.settings.mongo_ttl_days)
    query: dict[str, Any] = {"created_at": {"$gt": cutoff}}
    if cursor:
        try:
            query["_id"] = {"$lt": ObjectId(str(cursor[0]))}
        except InvalidId:
            raise NuboError(400, "invalid_cursor", "Invalid cursor") from None
    docs = await stores.mongo[BROADCASTS].find(query).sort("_id", -1).limit(limit + 1).to_list()
    items = [
        {"id": str(d["_id"]), "user_id": d["user_id"], "text": d["text"],
         "created_at": d["created_at"].isoformat()}
        for d in docs
    ]
    return page(items, limit, lambda item: [item["id"]])
