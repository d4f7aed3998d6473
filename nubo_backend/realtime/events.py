"""Per-user events as clients see them: their channel, their frame, and reading them back.

Events are written by `nubo_backend.outbox` in the transaction of the change they announce,
numbered per user in PostgreSQL (gapless, in commit order), then journaled in MongoDB for
30 days and published on the user's Redis channel by the relay. Reading back (resume, gap
fill) takes the journal and, for what the relay has not moved yet, the outbox itself: the
ids a user was given are all there until they expire, so a hole is always reported.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from redis.exceptions import RedisError

from nubo_backend.jsonutil import dumps, loads
from nubo_backend.stores import Stores

log = logging.getLogger("nubo.events")

EVENTS = "events"


def user_channel(stores: Stores, user_id: int) -> str:
    return stores.keys("user", user_id)


def frame(event_id: int, event_type: str, data: dict[str, Any]) -> dict[str, Any]:
    """What a client receives: `{"id", "type", "data"}`."""
    return {"id": event_id, "type": event_type, "data": data}


async def read_sequence(stores: Stores, user_id: int) -> int:
    """The last event id given to user_id (0 when none)."""
    async with stores.pg.acquire() as conn:
        return int(await stores.sql.outbox.last_event_id(conn, user_id=user_id) or 0)


async def publish_transient(
    stores: Stores, user_ids: Iterable[int], event_type: str, data: dict[str, Any]
) -> None:
    """Deliver without numbering or journaling (typing indicators, presence); best effort."""
    payload = dumps({"id": None, "type": event_type, "data": data})
    try:
        async with stores.redis.pipeline(transaction=False) as pipe:
            for uid in dict.fromkeys(user_ids):
                pipe.publish(user_channel(stores, uid), payload)
            await pipe.execute()
    except (RedisError, OSError) as exc:
        log.warning("transient %s not delivered: %s", event_type, exc)


async def events_after(
    stores: Stores, user_id: int, last_event_id: int, limit: int = 1000
) -> list[dict[str, Any]] | None:
    """The user's events after last_event_id, oldest first, without a hole: from the journal,
    and from the outbox for those not journaled yet. None when the events right after
    last_event_id are gone (past the journal's lifetime): the client must reload through REST."""
    current = await read_sequence(stores, user_id)
    if last_event_id >= current:
        return [] if last_event_id == current else None  # None: an id never given out
    cutoff = datetime.now(UTC) - timedelta(days=stores.settings.mongo_ttl_days)
    query = {"user_id": user_id, "id": {"$gt": last_event_id}, "created_at": {"$gt": cutoff}}
    docs = await stores.mongo[EVENTS].find(query).sort("id", 1).limit(limit).to_list(limit)
    found = {d["id"]: frame(d["id"], d["type"], d["data"]) for d in docs}
    wanted = min(current, last_event_id + limit)
    if len(found) < wanted - last_event_id:
        async with stores.pg.acquire() as conn:
            rows = stores.sql.outbox.pending_for_user(conn, user_id=user_id, after=last_event_id)
            async for row in rows:
                if row["id"] <= wanted:
                    found.setdefault(row["id"], frame(row["id"], row["type"], loads(row["data"])))
        if len(found) < wanted - last_event_id:
            # A relay may have moved them between our two reads: it journals before it deletes
            # from the outbox, so the journal has them now.
            docs = await stores.mongo[EVENTS].find(query).sort("id", 1).limit(limit).to_list(limit)
            for d in docs:
                found.setdefault(d["id"], frame(d["id"], d["type"], d["data"]))
    events = []
    for event_id in range(last_event_id + 1, wanted + 1):
        event = found.get(event_id)
        if event is None:
            break  # expired (or never journaled): the caller stops here, and reports the hole
        events.append(event)
    if not events:
        return None
    return events
