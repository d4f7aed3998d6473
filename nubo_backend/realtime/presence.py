"""Presence: a user is online while they hold at least one connection on any instance.

Redis keeps a connection count per user (INCR on connect, DECR on disconnect). Each instance
refreshes the expiry of the counts it holds every heartbeat, so the count of a crashed
instance's users runs out after PRESENCE_TTL_FACTOR heartbeats instead of staying forever.
The first connection anywhere announces `online`, the last one `offline`, to the user's
contacts (people sharing a conversation with them), as transient events.
"""

from __future__ import annotations

import logging

from redis.exceptions import RedisError

from nubo_backend.realtime.events import publish_transient
from nubo_backend.stores import Stores

log = logging.getLogger("nubo.presence")

PRESENCE_TTL_FACTOR = 3
ONLINE, OFFLINE = "online", "offline"


def _key(stores: Stores, user_id: int) -> str:
    return stores.keys("presence", user_id)


def _ttl(stores: Stores) -> int:
    return max(int(stores.settings.ws_heartbeat_interval * PRESENCE_TTL_FACTOR), 10)


async def connected(stores: Stores, user_id: int) -> int | None:
    """Count one more connection; announce `online` if it is the user's first anywhere. Returns
    the user's connections on every instance (None when Redis cannot say)."""
    try:
        async with stores.redis.pipeline(transaction=True) as pipe:
            pipe.incr(_key(stores, user_id))
            pipe.expire(_key(stores, user_id), _ttl(stores))
            count, _ = await pipe.execute()
    except (RedisError, OSError) as exc:
        log.warning("presence of user %s not recorded: %s", user_id, exc)
        return None
    if count == 1:
        await _announce(stores, user_id, ONLINE)
    return int(count)


async def disconnected(stores: Stores, user_id: int, *, announce: bool = True) -> None:
    """Count one connection less; announce `offline` when it was the user's last anywhere."""
    try:
        count = await stores.redis.decr(_key(stores, user_id))
        if count <= 0:
            await stores.redis.delete(_key(stores, user_id))
    except (RedisError, OSError) as exc:
        log.warning("presence of user %s not recorded: %s", user_id, exc)
        return
    if count <= 0 and announce:
        await _announce(stores, user_id, OFFLINE)


async def refresh(stores: Stores, local_counts: dict[int, int]) -> None:
    """Keep alive the counts of the users this instance holds; put back any Redis lost."""
    users = list(local_counts)
    async with stores.redis.pipeline(transaction=False) as pipe:
        for uid in users:
            pipe.expire(_key(stores, uid), _ttl(stores))
        alive = await pipe.execute()
    lost = [uid for uid, ok in zip(users, alive, strict=True) if not ok]
    if lost:
        async with stores.redis.pipeline(transaction=False) as pipe:
            for uid in lost:
                pipe.incrby(_key(stores, uid), local_counts[uid])
                pipe.expire(_key(stores, uid), _ttl(stores))
            await pipe.execute()


async def is_online(stores: Stores, user_id: int) -> bool:
    return int(await stores.redis.get(_key(stores, user_id)) or 0) > 0


async def _announce(stores: Stores, user_id: int, status: str) -> None:
    try:
        async with stores.pg.acquire() as conn:
            contacts = [row["user_id"] async for row in stores.sql.realtime.contacts(conn, user_id=user_id)]
    except Exception as exc:  # noqa: BLE001 - presence is best effort, never fails a connection
        log.warning("contacts of user %s unavailable: %s", user_id, exc)
        return
    if contacts:
        await publish_transient(stores, contacts, "presence", {"user_id": user_id, "status": status})
