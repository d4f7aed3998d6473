"""The relay: moves committed events from the outbox to the journal (MongoDB) and the bus (Redis).

Every instance runs one. A batch is taken under a transaction-scoped advisory lock, so only
one batch is in flight across all instances and batches go out in outbox order; for any one
user that is the order of their event ids (the ids were taken under a lock held until
commit). Each batch: store its notifications, journal its events, publish them, delete the
rows, commit. If any step fails (a store down or stalled), the transaction rolls back and the
rows wait for the next attempt: delivery is delayed, never dropped. Every write is
idempotent (unique keys in MongoDB, and sockets ignore ids they already have), so a batch
redone after a crash in the middle is harmless.

Wake-ups: PostgreSQL's NOTIFY at every announcing commit (heard by every instance), and a
poll every POLL_INTERVAL seconds in case the listening connection is down.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import asyncpg
from bson import ObjectId
from pymongo.errors import BulkWriteError, DuplicateKeyError, PyMongoError
from redis.exceptions import RedisError

from nubo_backend.jsonutil import dumps, loads
from nubo_backend.push import queue_pushes
from nubo_backend.realtime.events import EVENTS, user_channel
from nubo_backend.stores import Stores

log = logging.getLogger("nubo.outbox")

CHANNEL = "nubo_outbox"
BATCH = 500  # outbox rows per batch (each row is one event for one or more recipients)
POLL_INTERVAL = 1.0
BATCH_TIMEOUT = 10.0  # a stalled store fails the batch instead of holding the lock forever
MAX_BACKOFF = 5.0
_DUPLICATE_KEY = 11000
NOTIFICATIONS = "notifications"

# What a store outage looks like from here; anything else is a bug and is logged as one.
_STORE_ERRORS = (
    OSError, asyncpg.PostgresError, asyncpg.InterfaceError, PyMongoError, RedisError, TimeoutError,
)


def wire_event(event_id: int, event_type: str, data_json: str) -> bytes:
    """A client's frame `{"id", "type", "data"}`, with data already JSON (never parsed again)."""
    return b'{"id":%d,"type":%s,"data":%s}' % (event_id, dumps(event_type), data_json.encode())


class Relay:
    def __init__(self, stores: Stores) -> None:
        self.stores = stores
        self.wake = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []
        self._outage_since: float | None = None

    def start(self) -> None:
        self.tasks = [
            asyncio.create_task(self._run(), name="nubo-outbox-relay"),
            asyncio.create_task(self._listen(), name="nubo-outbox-listener"),
        ]

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        try:  # hand over what this instance committed last; any other instance would too
            await asyncio.wait_for(self.drain(), 2)
        except Exception as exc:  # noqa: BLE001 - the next instance (or start) carries on
            log.info("outbox left for the next relay: %s", exc)

    async def drain(self) -> int:
        """Relay batches until the outbox is empty; returns how many rows went out."""
        total = 0
        while (done := await self.relay_batch()) > 0:
            total += done
            if done < BATCH:
                break
        return total

    async def relay_batch(self) -> int:
        """Relay one batch (the oldest rows); the number of rows relayed, 0 when none wait."""
        stores = self.stores
        q = stores.sql.outbox
        async with asyncio.timeout(BATCH_TIMEOUT), stores.pg.acquire() as conn, conn.transaction():
            await q.lock_relay(conn)
            rows = [row async for row in q.pending_batch(conn, lim=BATCH)]
            if not rows:
                return 0
            await self._store_notifications(rows)
            await self._journal(rows)
            await self._publish(rows)
            await queue_pushes(conn, stores, rows)  # push jobs, committed with the batch (push/queue.py)
            await q.delete_batch(conn, ids=[row["id"] for row in rows])
        return len(rows)

    async def _store_notifications(self, rows: list[asyncpg.Record]) -> None:
        docs = []
        for row in rows:
            if row["notification"]:
                data = loads(row["data"])
                notification_id = ObjectId(data.pop("notification_id"))
                docs.append({"_id": notification_id, "user_id": row["recipients"][0], "type": row["type"],
                             "data": data, "read": False, "created_at": row["created_at"]})
        if docs:
            await _insert_once(self.stores.mongo[NOTIFICATIONS], docs)

    async def _journal(self, rows: list[asyncpg.Record]) -> None:
        docs = []
        for row in rows:
            data = loads(row["data"])
            for uid, eid in zip(row["recipients"], row["event_ids"], strict=True):
                docs.append({"user_id": uid, "id": eid, "type": row["type"], "data": data,
                             "created_at": row["created_at"]})
        await _insert_once(self.stores.mongo[EVENTS], docs)

    async def _publish(self, rows: list[asyncpg.Record]) -> None:
        stores = self.stores
        async with stores.redis.pipeline(transaction=False) as pipe:
            for row in rows:
                for uid, eid in zip(row["recipients"], row["event_ids"], strict=True):
                    pipe.publish(user_channel(stores, uid), wire_event(eid, row["type"], row["data"]))
            await pipe.execute()

    # -- the loop ------------------------------------------------------------------------

    async def _run(self) -> None:
        backoff = 0.1
        while True:
            try:
                done = await self.relay_batch()
            except _STORE_ERRORS as exc:
                self._outage(exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
                continue
            backoff = 0.1
            if self._outage_since is not None:
                log.warning("announcements flowing again after %.1fs", time.monotonic() - self._outage_since)
                self._outage_since = None
            if done == BATCH:
                continue  # more waiting
            self.wake.clear()
            try:
                await asyncio.wait_for(self.wake.wait(), POLL_INTERVAL)
            except TimeoutError:
                pass

    def _outage(self, exc: BaseException) -> None:
        """One log line per outage window, not one per retry."""
        if self._outage_since is None:
            self._outage_since = time.monotonic()
            reason = f"{type(exc).__name__}: {exc}".strip().rstrip(":")[:300]
            log.warning("announcements delayed, retrying until the stores answer (%s)", reason)

    async def _listen(self) -> None:
        """Hold a LISTEN connection (reconnecting), so a commit anywhere wakes this relay at once."""
        settings = self.stores.settings
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(settings.postgres_dsn, timeout=5)
                lost = asyncio.Event()
                conn.add_termination_listener(lambda *_, lost=lost: lost.set())
                await conn.add_listener(CHANNEL, lambda *_: self.wake.set())
                self.wake.set()  # anything committed while not listening
                await lost.wait()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the poll covers us until the next attempt
                await asyncio.sleep(MAX_BACKOFF)
            finally:
                if conn is not None and not conn.is_closed():
                    conn.terminate()


async def _insert_once(collection: Any, docs: list[dict[str, Any]]) -> None:
    """Insert, counting a document already there (a batch redone) as done.

    A document MongoDB refuses for good (a write error, as opposed to a connection or
    write-concern error, which are retried) is logged and left out: one bad document must not
    hold up every event behind it. Its event is still published."""
    try:
        await collection.insert_many(docs, ordered=False)
    except BulkWriteError as exc:
        if exc.details.get("writeConcernErrors"):
            raise
        refused = [e for e in exc.details.get("writeErrors", []) if e.get("code") != _DUPLICATE_KEY]
        if refused:
            log.error("%s: %d document(s) refused, left out: %s", collection.name, len(refused),
                      str(refused[0].get("errmsg"))[:200])
    except DuplicateKeyError:
        # Some servers report an unordered batch's clash as one error, without saying which
        # documents went in: insert one by one (rare: only a batch redone after a crash).
        for doc in docs:
            try:
                await collection.insert_one(doc)
            except DuplicateKeyError:
                pass
