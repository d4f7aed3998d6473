"""State gauges, sampled every `metrics_sample_interval` seconds by each serving process: the
stores' health, their pools (MongoDB's as its pool events told them: mongo_pool.py), and the
outbox backlog the relay has yet to move; and, every second (or that interval if shorter), the
hot counts of `metrics.tally` flushed to their metrics.

Sampled rather than read at scrape time because, under `--workers N`, the scrape is answered
by the workers' parent, which holds no store. A figure that cannot be read (PostgreSQL down:
no backlog) keeps its last value; `nubo_store_up` says why.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime
from typing import Any

import asyncpg

from nubo_backend.observability import metrics
from nubo_backend.observability.mongo_pool import BUSY, IDLE, OPENING, watch_of
from nubo_backend.outbox.lanes import all_lanes
from nubo_backend.stores import Stores, check_all

log = logging.getLogger("nubo.metrics")

# The personal lanes together (what /ready watches); each lane also has its own series.
ALL_LANES = "all"
STORES = ("postgres", "redis", "mongo")
FLUSH_INTERVAL = 1.0  # seconds between two flushes of metrics.tally (a scrape sees counts this late)


class Sampler:
    def __init__(self, stores: Stores, interval: float) -> None:
        self.stores = stores
        self.interval = interval
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run(), name="nubo-metrics-sampler")

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        metrics.flush()  # (the last requests' counts, for a scrape during shutdown)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_sample = loop.time()
        while True:
            metrics.flush()
            if loop.time() >= next_sample:
                next_sample = loop.time() + self.interval
                try:
                    await self.sample()
                except Exception:  # a sampler that dies silently would freeze every figure it keeps
                    log.exception("metrics sample failed")
            await asyncio.sleep(min(FLUSH_INTERVAL, self.interval))

    async def sample(self) -> None:
        timeout = max(0.5, min(2.0, self.interval / 2))
        self._pools()  # (first: read at once, where the health checks may wait for a stalled store)
        health = await check_all(self.stores, timeout)
        for store in STORES:
            metrics.store_up.labels(store).set(1 if health.get(store) == "ok" else 0)
        if health.get("postgres") == "ok":
            try:
                async with asyncio.timeout(timeout):
                    await self._backlog()
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.debug("outbox backlog not sampled: %s", exc)  # (gone down since the check)

    def _pools(self) -> None:
        pg = self.stores.pg
        idle = pg.get_idle_size()
        metrics.pool_size.labels("postgres", "idle").set(idle)
        metrics.pool_size.labels("postgres", "busy").set(pg.get_size() - idle)
        metrics.pool_max.labels("postgres").set(pg.get_max_size())
        # redis-py keeps no public figures; a cluster client has a pool per node and none here.
        pool: Any = getattr(self.stores.redis, "connection_pool", None)
        available = getattr(pool, "_available_connections", None)
        in_use = getattr(pool, "_in_use_connections", None)
        if available is not None and in_use is not None:
            metrics.pool_size.labels("redis", "idle").set(len(available))
            metrics.pool_size.labels("redis", "busy").set(len(in_use))
            metrics.pool_max.labels("redis").set(pool.max_connections)
        # PyMongo's pools (one per server), as its pool events told them (mongo_pool.py).
        client = self.stores.mongo_client
        watch = watch_of(client)
        if watch is not None:
            for state in (OPENING, IDLE, BUSY):
                metrics.pool_size.labels("mongo", state).set(watch.count(state))
            metrics.pool_max.labels("mongo").set(client.options.pool_options.max_pool_size * max(len(watch.pools), 1))

    async def _backlog(self) -> None:
        async with self.stores.pg.acquire() as conn:
            row = await self.stores.sql.outbox.backlog(conn)
        oldest = row["oldest"]
        age = (datetime.now(UTC) - oldest).total_seconds() if oldest is not None else 0.0
        metrics.outbox_backlog.labels(ALL_LANES).set(row["events"])
        metrics.outbox_oldest_age.labels(ALL_LANES).set(max(age, 0.0))
        async with self.stores.pg.acquire() as conn:
            waiting = {r["lane"]: r async for r in self.stores.sql.outbox.backlog_by_lane(conn)}
        now = datetime.now(UTC)
        for lane in {*all_lanes(self.stores.settings.relay_lanes), *waiting}:
            found = waiting.get(lane)
            metrics.outbox_backlog.labels(str(lane)).set(found["events"] if found else 0)
            metrics.outbox_oldest_age.labels(str(lane)).set(
                max((now - found["oldest"]).total_seconds(), 0.0) if found else 0.0)
