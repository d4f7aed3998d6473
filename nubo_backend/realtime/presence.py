"""Presence: a user is online while they hold at least one connection on any instance.

Each instance writes its own **absolute** count of each user's connections into the user's
hash `presence:<id>`, one field per instance (`"<count> <deadline ms>"`), never an increment:
a write that fails is made again by the next flush with whatever the count is then, so a
connect storm that exhausts the Redis pool delays counts, it cannot lose or double them.
Writes are batched (`Presence` below): every user whose count changed since the last write
goes in one pipelined round trip, so 5,000 connects cost a handful of round trips, not 5,000.

Every heartbeat an instance writes all its counts again, which pushes its deadlines on; the
fields of a crashed instance stop counting PRESENCE_TTL_FACTOR heartbeats after its last
write (and are deleted by the next write to that hash). The script that writes a field sums
the live fields before and after, atomically, so exactly one write anywhere sees a user go
from none to some (announce `online`) or from some to none (`offline`), to the user's contacts
(the other members of conversations they have written in: sql/queries/realtime/presence.sql),
as transient events.

One key per script call, tagged by user id on a Redis Cluster (stores/redis_cluster.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sized

from redis.exceptions import NoScriptError

from nubo_backend.realtime.events import publish_transient
from nubo_backend.stores import Stores
from nubo_backend.stores.redis_cluster import is_cluster_url

log = logging.getLogger("nubo.presence")

PRESENCE_TTL_FACTOR = 3
ONLINE, OFFLINE = "online", "offline"
RETRY_DELAY = 0.5  # seconds before a failed write is made again
BATCH_MAX = 2000  # users per round trip (a heartbeat of 20,000 users is ten of them)

# The live fields of KEYS[1] at Redis's own clock (so instances' clocks never matter): their
# total, and the total without field ARGV[1]. Fields past their deadline are deleted.
_LIVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local total, others = 0, 0
local fields = redis.call('HGETALL', KEYS[1])
for i = 1, #fields, 2 do
  local count, deadline = string.match(fields[i + 1], '^(%d+) (%d+)$')
  if count == nil or tonumber(deadline) <= now then
    redis.call('HDEL', KEYS[1], fields[i])
  else
    total = total + tonumber(count)
    if fields[i] ~= ARGV[1] then others = others + tonumber(count) end
  end
end
"""

# ARGV: instance, its count of the user's connections, field lifetime in ms.
# Returns {live total before this write, connections on the other instances}.
_WRITE = _LIVE + """
local count = tonumber(ARGV[2])
if count > 0 then
  redis.call('HSET', KEYS[1], ARGV[1], count .. ' ' .. (now + tonumber(ARGV[3])))
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
else
  redis.call('HDEL', KEYS[1], ARGV[1])
end
return {total, others}
"""

_READ = _LIVE + "return total"


def _key(stores: Stores, user_id: int) -> str:
    return stores.keys("presence", user_id)


def _ttl_ms(stores: Stores) -> int:
    return max(int(stores.settings.ws_heartbeat_interval * PRESENCE_TTL_FACTOR), 10) * 1000


async def online_count(stores: Stores, user_id: int) -> int:
    """The user's connections on every live instance."""
    return int(await stores.redis.eval(_READ, 1, _key(stores, user_id), ""))


async def is_online(stores: Stores, user_id: int) -> bool:
    return await online_count(stores, user_id) > 0


# One EXISTS per key, in one call: 5,000 keys cost ~3 ms, where as many pipelined EXISTS
# cost ~85 ms of redis-py's packing and parsing.
_HELD = "local held = {} for i, key in ipairs(KEYS) do held[i] = redis.call('EXISTS', key) end return held"


async def held_among(stores: Stores, user_ids: list[int]) -> list[int]:
    """Those of user_ids whose presence hash exists: everyone holding a socket, and for a
    few heartbeats those who just left (a live-only event sent to them reaches nobody)."""
    if not user_ids:
        return []
    keys = [_key(stores, uid) for uid in user_ids]
    if is_cluster_url(stores.settings.redis_url):  # presence keys are spread over the slots
        async with stores.redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.exists(key)
            found = await pipe.execute()
    else:
        found = await stores.redis.eval(_HELD, len(keys), *keys)
    return [uid for uid, there in zip(user_ids, found, strict=True) if there]


class Presence:
    """This instance's connection counts per user, written to Redis in batches.

    `counted(uid)` after a connect (it learns how many connections the user holds on the
    other instances), `changed(uid)` after a disconnect. One writer task per instance runs one
    round trip at a time: whatever changes while it is in flight goes in the next one.
    """

    def __init__(self, stores: Stores, instance_id: str, held: Mapping[int, Sized]) -> None:
        self.stores = stores
        self.instance_id = instance_id
        self.held = held  # the hub's sockets per user: their number is the count written
        self.announce = True  # off while shutting down: clients move to other instances
        self.dirty: dict[int, list[asyncio.Future[int | None]]] = {}  # users to write, and who waits
        self.wake = asyncio.Event()
        self.writer: asyncio.Task[None] | None = None
        self.heartbeat: asyncio.Task[None] | None = None
        self.sha: str | None = None
        self.announcing: asyncio.Task[None] | None = None  # announcements go out in write order

    def start(self) -> None:
        self.writer = asyncio.create_task(self._write_forever(), name="nubo-presence-writer")
        self.heartbeat = asyncio.create_task(self._heartbeat(), name="nubo-presence")

    async def stop(self) -> None:
        """Shutting down: this instance's field goes to 0 for every user it holds or wrote, at
        once (their sockets are closing, some handlers may not have detached yet), announcing
        nothing: the clients reconnect to another instance."""
        self.announce = False
        for task in (self.heartbeat, self.writer):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        for uid in list(self.held):
            self.dirty.setdefault(uid, [])
        try:
            async with asyncio.timeout(5):
                while self.dirty:
                    await self._write_batch(self._take_batch(), final=True)
        except Exception as exc:  # noqa: BLE001 - the fields run out at their deadline anyway
            log.warning("last presence write failed: %s", exc)
        if self.announcing is not None:
            await asyncio.gather(self.announcing, return_exceptions=True)

    def changed(self, user_id: int) -> None:
        """The user's count here changed: write it with the next batch."""
        self.dirty.setdefault(user_id, [])
        self.wake.set()

    async def counted(self, user_id: int) -> int | None:
        """A connect: write the user's count, and return their connections on the other
        instances (None if Redis could not say; the count is written later all the same)."""
        future: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        self.dirty.setdefault(user_id, []).append(future)
        self.wake.set()
        return await future

    async def _heartbeat(self) -> None:
        """Write every held user's count again each heartbeat, pushing its deadline on."""
        interval = max(self.stores.settings.ws_heartbeat_interval, 1.0)
        while True:
            await asyncio.sleep(interval)
            for uid in self.held:
                self.dirty.setdefault(uid, [])
            self.wake.set()

    def _take_batch(self) -> dict[int, list[asyncio.Future[int | None]]]:
        if len(self.dirty) <= BATCH_MAX:
            batch, self.dirty = self.dirty, {}
            return batch
        batch = {}
        for uid in list(self.dirty)[:BATCH_MAX]:
            batch[uid] = self.dirty.pop(uid)
        return batch

    async def _write_forever(self) -> None:
        while True:
            await self.wake.wait()
            self.wake.clear()
            while self.dirty:
                batch = self._take_batch()
                try:
                    await self._write_batch(batch)
                except asyncio.CancelledError:
                    self._put_back(batch)  # stop() writes it
                    raise
                except Exception as exc:  # noqa: BLE001 - Redis away or its pool exhausted: retried
                    log.warning("presence of %d user(s) not written yet: %s", len(batch), exc)
                    self._put_back(batch)
                    await asyncio.sleep(RETRY_DELAY)

    def _put_back(self, batch: dict[int, list[asyncio.Future[int | None]]]) -> None:
        """A batch not written: its users are written again, with their counts of then. Their
        connects do not wait for that: they go on, uncounted for the moment (None)."""
        for uid, waiters in batch.items():
            for future in waiters:
                if not future.done():
                    future.set_result(None)
            self.dirty.setdefault(uid, [])

    async def _write_batch(self, batch: dict[int, list[asyncio.Future[int | None]]], final: bool = False) -> None:
        users = list(batch)
        counts = [0 if final else len(self.held.get(uid, ())) for uid in users]
        results = await self._evaluate(users, counts)
        went_online, went_offline, failed = [], [], {}
        for uid, count, result, waiters in zip(users, counts, results, batch.values(), strict=True):
            if isinstance(result, Exception):
                failed[uid] = waiters
                continue
            before, others = int(result[0]), int(result[1])
            for future in waiters:
                if not future.done():
                    future.set_result(others)
            if not before and others + count:
                went_online.append(uid)
            elif before and not others + count:
                went_offline.append(uid)
        if self.announce and (went_online or went_offline):
            self.announcing = asyncio.create_task(
                self._announce_all(went_online, went_offline, self.announcing)
            )
        if failed:
            self._put_back(failed)
            log.warning("presence of %d user(s) not written yet: %s", len(failed),
                        next(r for r in results if isinstance(r, Exception)))
            await asyncio.sleep(RETRY_DELAY)

    async def _evaluate(self, users: list[int], counts: list[int]) -> list[list[int] | Exception]:
        """One round trip: the write script for each user (loaded again if Redis lost it)."""
        redis, ttl = self.stores.redis, _ttl_ms(self.stores)
        for attempt in (1, 2):
            if self.sha is None:
                self.sha = await redis.script_load(_WRITE)
            async with redis.pipeline(transaction=False) as pipe:
                for uid, count in zip(users, counts, strict=True):
                    # (Not pipe.evalsha: redis-py refuses that name in a cluster pipeline, though
                    # EVALSHA of one key routes like any one-key command.)
                    pipe.execute_command("EVALSHA", self.sha, 1, _key(self.stores, uid), self.instance_id, count, ttl)
                results = await pipe.execute(raise_on_error=False)
            if attempt == 2 or not any(isinstance(r, NoScriptError) for r in results):
                break
            self.sha = None  # Redis restarted (or failed over) without its script cache
        return results

    async def _announce_all(
        self, went_online: list[int], went_offline: list[int], previous: asyncio.Task[None] | None
    ) -> None:
        contacts = await asyncio.gather(*(_contacts(self.stores, uid) for uid in went_online + went_offline))
        if previous is not None:  # an earlier batch's `online` goes out before this `offline`
            await asyncio.gather(previous, return_exceptions=True)
        statuses = [ONLINE] * len(went_online) + [OFFLINE] * len(went_offline)
        for uid, status, their_contacts in zip(went_online + went_offline, statuses, contacts, strict=True):
            if their_contacts:
                await publish_transient(self.stores, their_contacts, "presence", {"user_id": uid, "status": status})


async def _contacts(stores: Stores, user_id: int) -> list[int]:
    try:
        async with stores.pg.acquire() as conn:
            return [row["user_id"] async for row in stores.sql.realtime.contacts(conn, user_id=user_id)]
    except Exception as exc:  # noqa: BLE001 - presence is best effort, never fails a connection
        log.warning("contacts of user %s unavailable: %s", user_id, exc)
        return []
