"""The seed's broadcast: a plain text frame goes to every client on every instance.

Lines travel as raw text on the Redis channel `nubo-websocket` and are kept 30 days in
MongoDB (`broadcasts`), readable with GET /broadcast.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from nubo_backend.pagination import recent_documents
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
    return await recent_documents(
        stores.mongo[BROADCASTS], {}, limit, cursor, stores.settings.mongo_ttl_days, _public
    )


def _public(doc: dict[str, Any]) -> dict[str, Any]:
    return {"id": str(doc["_id"]), "user_id": doc["user_id"], "text": doc["text"],
            "created_at": doc["created_at"].isoformat()}
