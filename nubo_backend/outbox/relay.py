"""The relay: moves committed events from the outbox to the journal (MongoDB) and the bus (Redis).

Every instance runs one, with a task per lane (`lanes.py`). A lane's batch is taken under
that lane's transaction-scoped advisory lock, so one batch per lane is in flight across all
instances and each lane goes out in outbox order; for any one user that is the order of their
event ids (the ids were taken under a lock held until commit, and a user's events are all in
one lane). Lanes run in parallel, on one instance or spread over several, and one lane's
trouble (a slow batch, a store timing out) holds no other.

A personal batch: store its notifications, journal its events, publish them, delete the rows,
commit. An audience batch serves the next piece of one author's audience (`audience.py`).
Batches are bounded by the deliveries they make (`relay_batch_deliveries`), not by rows.

When a batch fails, the rows wait for the next attempt: delivery is delayed, never dropped.
Every write is idempotent (unique keys in MongoDB, and sockets ignore ids they already have),
so a batch redone after a crash in the middle is harmless. A lane whose batch keeps failing
halves its batches down to one row; a row that still fails (a bug, a document refused for
good, or a timeout while every store answers a ping) is set aside after a bounded number of
attempts: kept in `outbox_set_aside`, logged, retryable with `nubo outbox retry`, and
everything behind it flows on. An outage (a store that does not answer) only ever delays.

Wake-ups: PostgreSQL's NOTIFY at every announcing commit, naming the lanes written (heard by
every instance), and a poll every POLL_INTERVAL seconds in case the listening connection is
down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
from bson import ObjectId
from pymongo.errors import BulkWriteError, DuplicateKeyError, PyMongoError
from redis.exceptions import RedisError

from nubo_backend.jsonutil import dumps, loads
from nubo_backend.observability import metrics
from nubo_backend.observability.tracing import relay_spans
from nubo_backend.outbox.audience import serve_piece
from nubo_backend.outbox.lanes import all_lanes
from nubo_backend.push import queue_pushes
from nubo_backend.realtime.events import EVENTS, user_channel
from nubo_backend.stores import Stores

log = logging.getLogger("nubo.outbox")

CHANNEL = "nubo_outbox"
ROWS = 500  # rows read per personal batch, before the deliveries budget trims them
AUDIENCE_PIECE = 5000  # followers served per audience batch
POLL_INTERVAL = 1.0
MAX_BACKOFF = 5.0
SET_ASIDE_AFTER = 5  # failed attempts of a lane's first row, alone in its batch
STRAGGLERS_EVERY = 30.0  # seconds between looks for rows in lanes this relay does not run
_DUPLICATE_KEY = 11000
NOTIFICATIONS = "notifications"
BUSY = -1  # relay_batch: another instance holds the lane
_UNTRACED = contextlib.nullcontext()  # a batch's span with tracing off: none

# What a store outage looks like from here; anything else is a bug and is logged as one.
_STORE_ERRORS = (
    OSError, asyncpg.PostgresError, asyncpg.InterfaceError, PyMongoError, RedisError, TimeoutError,
)


def wire_event(event_id: int, event_type: str, data_json: str) -> bytes:
    """A client's frame `{"id", "type", "data"}`, with data already JSON (never parsed again)."""
    return b'{"id":%d,"type":%s,"data":%s}' % (event_id, dumps(event_type), data_json.encode())


def within_budget(rows: list[Any], deliveries: int) -> list[Any]:
    """The first rows whose recipients add up to at most `deliveries` (always one row)."""
    taken, total = [], 0
    for row in rows:
        total += len(row["recipients"])
        if taken and total > deliveries:
            break
        taken.append(row)
    return taken


@dataclass
class LaneState:
    """One lane as this instance runs it."""

    lane: int
    full_budget: int
    budget: int = 0  # deliveries (personal) or followers (audience) per batch; halved on failure
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    head: int | None = None  # the first row of the last batch attempted
    failures: int = 0  # consecutive failures of `head` alone in its batch
    outage_since: float | None = None  # when this lane's current run of failures began

    def __post_init__(self) -> None:
        self.budget = self.full_budget


class Relay:
    def __init__(self, stores: Stores) -> None:
        self.stores = stores
        settings = stores.settings
        self.batch_timeout = settings.relay_batch_timeout
        self.lanes = {
            lane: LaneState(lane, self._full_budget(lane)) for lane in all_lanes(settings.relay_lanes)
        }
        self.tasks: list[asyncio.Task[None]] = []
        self.spans = relay_spans()  # (None with tracing off)

    def start(self) -> None:
        self.tasks = [
            *(asyncio.create_task(self._run(state), name=f"nubo-relay-lane-{lane}")
              for lane, state in self.lanes.items()),
            asyncio.create_task(self._listen(), name="nubo-outbox-listener"),
            asyncio.create_task(self._stragglers(), name="nubo-relay-stragglers"),
        ]

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        try:  # hand over what this instance committed last; any other instance would too
            async with asyncio.timeout(2):
                await self.drain()
        except Exception as exc:  # noqa: BLE001 - the next instance (or start) carries on
            log.info("outbox left for the next relay: %s", exc)

    def _full_budget(self, lane: int) -> int:
        """A batch's size at its largest: deliveries (personal lanes) or followers (audience)."""
        return self.stores.settings.relay_batch_deliveries if lane >= 0 else AUDIENCE_PIECE

    def wake_all(self) -> None:
        for state in self.lanes.values():
            state.wake.set()

    async def drain(self) -> int:
        """Relay every lane's rows (this relay's lanes and any other) until none wait, waiting
        for lanes another instance holds; returns how many rows went out."""
        async with self.stores.pg.acquire() as conn:
            lanes = [row["lane"] async for row in self.stores.sql.outbox.lanes_waiting(conn)]
        total = 0
        for lane in lanes:
            budget = self._full_budget(lane)
            while (done := await self.relay_batch(lane, budget, wait=True)) > 0:
                total += done
        return total

    async def relay_batch(self, lane: int, budget: int | None = None, wait: bool = False) -> int:
        """Relay one batch of lane (its oldest rows, within budget): the rows done (an audience
        row counts once, when its last piece is out), 0 when none wait, BUSY when another
        instance holds the lane (unless `wait`: then its batch is waited for)."""
        stores = self.stores
        q = stores.sql.outbox
        state = self.lanes.get(lane)
        if budget is None:
            budget = state.budget if state is not None else self._full_budget(lane)
        began = time.perf_counter()
        async with asyncio.timeout(self.batch_timeout), stores.pg.acquire() as conn, conn.transaction():
            if wait:
                await q.wait_for_lane(conn, lane=lane)
            elif not await q.lock_lane(conn, lane=lane):
                return BUSY
            rows = [row async for row in q.pending_lane(conn, lane=lane, lim=ROWS if lane >= 0 else 1)]
            if not rows:
                return 0
            if state is not None:
                state.head = rows[0]["id"]
            if lane >= 0:
                rows = within_budget(rows, budget)
            with self._batch_span(lane, rows):
                if lane < 0:
                    served, finished = await serve_piece(conn, stores, rows[0], budget)
                    if finished:
                        await q.delete_batch(conn, ids=[rows[0]["id"]])
                    done, deliveries = 1, served
                else:
                    await self._store_notifications(rows)
                    await self._journal(rows)
                    await self._publish(rows)
                    await queue_pushes(conn, stores, rows)  # push jobs, committed with the batch (push/queue.py)
                    await q.delete_batch(conn, ids=[row["id"] for row in rows])
                    done, deliveries = len(rows), sum(len(row["recipients"]) for row in rows)
        _observe(lane, began, deliveries, rows)
        return done

    def _batch_span(self, lane: int, rows: list[asyncpg.Record]) -> contextlib.AbstractContextManager[Any]:
        """The batch's span, linked to the requests that announced its rows (tracing on)."""
        if self.spans is None:
            return _UNTRACED
        return self.spans.batch(lane, (row["trace_context"] for row in rows), len(rows))

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

    # -- the loops -----------------------------------------------------------------------

    async def _run(self, state: LaneState) -> None:
        backoff = 0.1
        while True:
            state.wake.clear()  # before the batch: a commit during it brings the next one at once
            done = await self.step(state)
            if done is None:
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
                continue
            backoff = 0.1
            if done > 0:
                continue  # more may wait
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(POLL_INTERVAL):
                    await state.wake.wait()

    async def step(self, state: LaneState) -> int | None:
        """One attempt at a batch of the lane: what relay_batch returns, or None when it failed
        (then handled: smaller batches, or the first row set aside)."""
        try:
            done = await self.relay_batch(state.lane)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - every failure is classified in _failed
            await self._failed(state, exc)
            return None
        if done != BUSY:
            self._succeeded(state)
        return done

    def _succeeded(self, state: LaneState) -> None:
        state.failures = 0
        state.budget = min(state.full_budget, state.budget * 2)
        if state.outage_since is not None:
            log.warning("relay lane %d: announcements flowing again after %.1fs", state.lane,
                        time.monotonic() - state.outage_since)
            state.outage_since = None

    async def _failed(self, state: LaneState, exc: BaseException) -> None:
        """Smaller batches first; then, for the lane's first row alone, bounded attempts."""
        outage = isinstance(exc, _STORE_ERRORS)
        if outage:
            self._outage(state, exc)
        else:
            log.error("relay lane %d: batch failed", state.lane, exc_info=exc)
        if state.budget > 1:
            # A batch that timed out may just be too big: halve it. Anything else is about
            # some row in it: go row by row at once, to find which.
            state.budget = max(1, state.budget // 2) if outage else 1
            state.failures = 0
            return
        state.failures += 1
        if state.failures < SET_ASIDE_AFTER or state.head is None:
            return
        if outage and not await self._stores_answer():
            return  # a store is down: wait for it, however long
        await self._set_aside(state, exc)

    async def _set_aside(self, state: LaneState, exc: BaseException) -> None:
        reason = f"{type(exc).__name__}: {exc}".strip().rstrip(":")[:300]
        try:
            async with self.stores.pg.acquire() as conn, conn.transaction():
                if not await self.stores.sql.outbox.lock_lane(conn, lane=state.lane):
                    return
                await self.stores.sql.outbox.set_aside(conn, id=state.head, reason=reason)
        except Exception as err:  # noqa: BLE001 - tried again after the next failure
            log.warning("relay lane %d: could not set row %s aside: %s", state.lane, state.head, err)
            return
        metrics.relay_set_aside.labels(str(state.lane)).inc()
        log.error("relay lane %d: outbox row %s set aside after %d attempts (%s); "
                  "`nubo outbox retry` sends it again", state.lane, state.head, state.failures, reason)
        state.failures = 0
        state.budget = state.full_budget

    async def _stores_answer(self) -> bool:
        """Whether Redis and MongoDB answer a ping now (PostgreSQL did: the batch was read)."""
        try:
            async with asyncio.timeout(2):
                await asyncio.gather(self.stores.redis.ping(), self.stores.mongo_client.admin.command("ping"))
        except Exception:  # noqa: BLE001 - any failure means "not now"
            return False
        return True

    def _outage(self, state: LaneState, exc: BaseException) -> None:
        """One log line per lane and outage window, not one per retry."""
        if state.outage_since is None:
            state.outage_since = time.monotonic()
            reason = f"{type(exc).__name__}: {exc}".strip().rstrip(":")[:300]
            log.warning("relay lane %d: announcements delayed, retrying until the stores answer (%s)",
                        state.lane, reason)

    async def _stragglers(self) -> None:
        """Rows in lanes this relay does not run (written before the number of lanes changed)."""
        while True:
            await asyncio.sleep(STRAGGLERS_EVERY)
            try:
                async with self.stores.pg.acquire() as conn:
                    lanes = [r["lane"] async for r in self.stores.sql.outbox.lanes_waiting(conn)]
                for lane in lanes:
                    if lane not in self.lanes:
                        while await self.relay_batch(lane) > 0:
                            pass
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - tried again next round
                log.warning("relay: rows in lanes not run here wait (%s)", exc)

    def _on_notify(self, payload: str) -> None:
        try:
            state = self.lanes.get(int(payload))
        except ValueError:
            state = None
        if state is None:
            self.wake_all()
        else:
            state.wake.set()

    async def _listen(self) -> None:
        """Hold a LISTEN connection (reconnecting), so a commit anywhere wakes its lanes at once."""
        settings = self.stores.settings
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(settings.postgres_dsn, timeout=5)
                lost = asyncio.Event()
                conn.add_termination_listener(lambda *_, lost=lost: lost.set())
                await conn.add_listener(CHANNEL, lambda _c, _p, _ch, payload: self._on_notify(payload))
                self.wake_all()  # anything committed while not listening
                await lost.wait()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the poll covers us until the next attempt
                await asyncio.sleep(MAX_BACKOFF)
            finally:
                if conn is not None and not conn.is_closed():
                    conn.terminate()


def _observe(lane: int, began: float, deliveries: int, rows: list[asyncpg.Record]) -> None:
    """A committed batch in the relay's metrics (docs/observability.md)."""
    label = str(lane)
    metrics.relay_batch_seconds.labels(label).observe(time.perf_counter() - began)
    metrics.relay_deliveries.labels(label).inc(deliveries)
    if lane >= 0:  # (an audience row's age is its walk, not a delay)
        now = datetime.now(UTC)
        waited = metrics.relay_commit_to_publish.labels(label)
        for row in rows:
            waited.observe(max((now - row["created_at"]).total_seconds(), 0.0))


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
