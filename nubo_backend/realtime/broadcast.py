"""The seed's broadcast: a plain text frame goes to every client on every instance.

Lines travel as raw text on the Redis channel `nubo-websocket` and are kept 30 days in
MongoDB (`broadcasts`) with their sender, readable with GET /broadcast.

Every listener receives every line, so a line is held to a line of chat
(NUBO_BROADCAST_MAX_CHARS), to a rate per sender and a rate for everyone together, and, where
NUBO_BROADCAST_SENDERS says so (production by default), to moderators (docs/security.md).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from nubo_backend.auth import ratelimit
from nubo_backend.edge.errors import NuboError
from nubo_backend.edge.pagination import recent_documents
from nubo_backend.moderation.service import require_moderator
from nubo_backend.stores import Stores

BROADCASTS = "broadcasts"
RATE_WINDOW = 60  # seconds: the window of both broadcast rates


async def may_broadcast(stores: Stores, user_id: int, text: str) -> None:
    """Refuse a line that is too long, from someone not allowed to broadcast, or over a rate."""
    settings = stores.settings
    if len(text) > settings.broadcast_max_chars:
        raise NuboError(422, "broadcast_too_long",
                        f"A broadcast line is at most {settings.broadcast_max_chars} characters")
    if settings.broadcast_moderators_only:
        await require_moderator(stores, user_id)
    # The sender's rate first: lines it refuses must not use up everyone's.
    for bucket in (ratelimit.Bucket("user", str(user_id), settings.broadcast_per_user),
                   ratelimit.Bucket("all", "all", settings.broadcast_global)):
        await ratelimit.charge(stores.redis, stores.keys, "broadcast", [bucket], RATE_WINDOW)


async def publish(stores: Stores, user_id: int, text: str) -> None:
    """Relay text to every instance (delivery first), then keep it for GET /broadcast."""
    await may_broadcast(stores, user_id, text)
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
