"""Per-user events: numbered, journaled in MongoDB (30 days), then published on Redis.

Every change a user should see live goes through `emit`. The id comes from a Redis
counter per user, so it increases across all instances; the journal write happens
before the publish, so a client that resumes from its last id never misses an event
that was already delivered to its other devices.
"""

from __future__ import annotations

import logging
from collections.abc import Coroutine, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.errors import BulkWriteError, DuplicateKeyError, PyMongoError
from redis.exceptions import RedisError

from nubo_backend.jsonutil import dumps
from nubo_backend.stores import Stores

log = logging.getLogger("nubo.events")

EVENTS = "events"
_DUPLICATE_KEY = 11000
# Move a user's counter past the journal's highest id, then take the next one.
_RESEED = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end
return redis.call('INCR', KEYS[1])
"""


def user_channel(stores: Stores, user_id: int) -> str:
    return stores.keys("user", user_id)


def frame(event_id: int, event_type: str, data: dict[str, Any]) -> dict[str, Any]:
    """What a client receives: `{"id", "type", "data"}`."""
    return {"id": event_id, "type": event_type, "data": data}


async def emit(
    stores: Stores, user_ids: Iterable[int], event_type: str, data: dict[str, Any]
) -> dict[int, int]:
    """Journal and publish one event to each user; returns user id -> event id.

    Called after the change it announces is committed, so it never fails that change:
    with Redis or MongoDB down the event is logged and dropped (clients resync via REST).
    """
    try:
        return await _emit(stores, user_ids, event_type, data)
    except (RedisError, PyMongoError, OSError) as exc:
        log.warning("event %s not delivered: %s", event_type, exc)
        return {}


async def _emit(
    stores: Stores, user_ids: Iterable[int], event_type: str, data: dict[str, Any]
) -> dict[int, int]:
    targets = list(dict.fromkeys(user_ids))
    if not targets:
        return {}
    async with stores.redis.pipeline(transaction=False) as pipe:
        for uid in targets:
            pipe.incr(stores.keys("evseq", uid))
        ids = await pipe.execute()
    now = datetime.now(UTC)
    docs = [
        {"user_id": uid, "id": eid, "type": event_type, "data": data, "created_at": now}
        for uid, eid in zip(targets, ids, strict=True)
    ]
    try:
        await stores.mongo[EVENTS].insert_many(docs, ordered=False)
    except (BulkWriteError, DuplicateKeyError) as exc:
        await _renumber_after_counter_loss(stores, docs, ids, exc)
    async with stores.redis.pipeline(transaction=False) as pipe:
        for uid, eid in zip(targets, ids, strict=True):
            pipe.publish(user_channel(stores, uid), dumps(frame(eid, event_type, data)))
        await pipe.execute()
    return dict(zip(targets, ids, strict=True))


async def _renumber_after_counter_loss(
    stores: Stores, docs: list[dict[str, Any]], ids: list[int], exc: PyMongoError
) -> None:
    """Redis lost its counters (restarted without persistence): ids restarted at 1 and clash
    with the journal. Move each clashing counter past the journal and number those again."""
    if isinstance(exc, BulkWriteError):
        if any(e.get("code") != _DUPLICATE_KEY for e in exc.details.get("writeErrors", [])):
            raise exc
    retry = []
    for index, doc in enumerate(docs):
        held = await stores.mongo[EVENTS].find_one({"user_id": doc["user_id"], "id": doc["id"]})
        if held is not None and held["_id"] == doc.get("_id"):
            continue  # this one went in
        newest = await stores.mongo[EVENTS].find_one({"user_id": doc["user_id"]}, sort=[("id", -1)])
        highest = newest["id"] if newest else 0
        doc["id"] = ids[index] = int(
            await stores.redis.eval(_RESEED, 1, stores.keys("evseq", doc["user_id"]), highest)
        )
        doc.pop("_id", None)
        retry.append(doc)
    if retry:
        log.warning("event counters reseeded from the journal for %d user(s)", len(retry))
        await stores.mongo[EVENTS].insert_many(retry, ordered=False)


async def read_sequence(stores: Stores, user_id: int) -> int:
    """The last event id issued to user_id (0 when none)."""
    return int(await stores.redis.get(stores.keys("evseq", user_id)) or 0)


def announce_later(stores: Stores, what: str, action: Coroutine[Any, Any, Any]) -> None:
    """Announce a committed change (event, notification) without making the request wait.

    The change is already durable and visible; the fan-out (a Redis counter, a MongoDB
    journal write and a publish per recipient) runs beside the response, and a failure is
    logged, never turned into an error for the writer. Clients that miss an event resync
    through REST."""

    async def run() -> None:
        try:
            await action
        except (RedisError, PyMongoError, OSError) as exc:
            log.warning("%s not delivered: %s", what, exc)

    stores.run_in_background(run())


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
    """Journaled events after last_event_id, oldest first; None when the journal no longer
    reaches back that far (the client must resync through REST)."""
    cutoff = datetime.now(UTC) - timedelta(days=stores.settings.mongo_ttl_days)
    query = {"user_id": user_id, "id": {"$gt": last_event_id}, "created_at": {"$gt": cutoff}}
    docs = await stores.mongo[EVENTS].find(query).sort("id", 1).limit(limit).to_list(limit)
    expected_first = last_event_id + 1
    if last_event_id > 0 and (not docs or docs[0]["id"] != expected_first):
        current = await stores.redis.get(stores.keys("evseq", user_id))
        if current is not None and int(current) >= expected_first and (
            not docs or docs[0]["id"] > expected_first
        ):
            return None
    return [frame(d["id"], d["type"], d["data"]) for d in docs]
