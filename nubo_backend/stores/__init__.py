"""The three stores, opened together with bounded retries and closed together."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis

from nubo_backend.auth.live_sessions import LiveSessions
from nubo_backend.media import Media, open_media
from nubo_backend.observability.mongo_pool import pool_listeners
from nubo_backend.settings import Settings
from nubo_backend.stores import mongo, postgres, redis
from nubo_backend.stores.redis import Keys
from nubo_backend.stores.redis_reads import FastReads
from nubo_backend.stores.sql import Queries, load_queries
from nubo_backend.stores.startup import StartupError, construct, retry, short_reason

__all__ = ["StartupError", "Stores", "check_all", "open_stores", "short_reason"]

log = logging.getLogger("nubo.stores")


@dataclass
class Stores:
    """Shared clients, hung on app.ctx and passed to services (which know nothing of HTTP)."""

    settings: Settings
    pg: asyncpg.Pool
    redis: Redis
    mongo_client: AsyncMongoClient
    mongo: AsyncDatabase
    keys: Keys
    sql: Queries
    live_sessions: LiveSessions
    # The hot cached reads (GET, EVALSHA) on a lean pipelined connection (stores/redis_reads.py);
    # the redis-py client itself where the URL is one that client does not speak (TLS, socket).
    reads: FastReads | Redis
    # Media files (disk or S3) and the image worker processes (nubo_backend/media/).
    media: Media
    # Work started by a request that finishes after its response (removing media files);
    # held here because asyncio keeps only weak references to tasks, and drained before the
    # pools close.
    background: set[asyncio.Task[None]] = field(default_factory=set)
    # Keys Redis had evicted when we connected: /ready fails once it evicts more (issue #25).
    evicted_at_start: int = 0

    def run_in_background(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    async def close(self) -> None:
        if self.background:
            await asyncio.wait(self.background, timeout=5)
        await self.pg.close()
        if self.reads is not self.redis:
            await self.reads.aclose()
        await self.redis.aclose()
        await self.mongo_client.close()
        await self.media.close()


async def open_stores(settings: Settings, *, pool_size: int = 20) -> Stores:
    deadline = time.monotonic() + settings.startup_timeout

    pg = await retry(
        "PostgreSQL",
        settings.postgres_dsn,
        lambda: postgres.open_pool(
            settings.postgres_dsn, max_size=pool_size, command_timeout=settings.postgres_command_timeout,
            idle_in_transaction_timeout=settings.postgres_idle_in_transaction_timeout,
        ),
        deadline,
    )
    try:
        redis_client = construct(
            "Redis", settings.redis_url, lambda url: redis.open_client(
                url, settings.redis_max_connections, command_timeout=settings.redis_command_timeout,
                pool_timeout=settings.redis_pool_timeout, health_check_interval=settings.redis_health_check_interval,
            )
        )
        mongo_client = construct("MongoDB", settings.mongo_url,
                                 lambda url: mongo.open_client(url, pool_listeners(settings)))
    except StartupError:
        await pg.close()
        raise

    async def ping(check: Callable[[Any], Awaitable[None]], client: Any) -> None:
        await check(client)

    try:
        await retry("Redis", settings.redis_url, lambda: ping(redis.check, redis_client), deadline)
        evicted_at_start = await _check_eviction(settings, redis_client)
        await retry("MongoDB", settings.mongo_url, lambda: ping(mongo.check, mongo_client), deadline)
    except StartupError:
        await pg.close()
        await redis_client.aclose()
        await mongo_client.close()
        raise
    return Stores(
        settings=settings,
        pg=pg,
        redis=redis_client,
        mongo_client=mongo_client,
        mongo=mongo_client[settings.mongo_db],
        keys=redis.keys_for(settings.redis_url, settings.redis_namespace),
        sql=load_queries(),
        live_sessions=LiveSessions(settings.session_memo_ttl),
        reads=FastReads.from_url(settings.redis_url, timeout=settings.redis_command_timeout) or redis_client,
        media=open_media(settings),
        evicted_at_start=evicted_at_start,
    )


async def _check_eviction(settings: Settings, client: Redis) -> int:
    """Refuse (or, with NUBO_REDIS_EVICTION=warn, warn loudly about) a Redis that evicts any key
    when full; warn about one that evicts keys with a TTL. Returns the keys it had evicted
    before we started (/ready reports any eviction after)."""
    try:
        policy, evicted = await redis.eviction(client)
    except Exception as exc:  # noqa: BLE001 - INFO may be disabled: say so, do not refuse
        log.warning("Redis eviction policy unknown (%s): it must be noeviction", short_reason(exc))
        return 0
    if redis.evicts_any_key(policy):
        problem = f"maxmemory-policy {policy} evicts any key when full: sessions and rate limits would vanish"
        if settings.redis_eviction == "refuse":
            raise StartupError("Redis", settings.redis_url, problem,
                               f"{redis.EVICTION_FIX}, or NUBO_REDIS_EVICTION=warn to start anyway")
        log.error("Redis %s; %s", problem, redis.EVICTION_FIX)
    elif policy != "noeviction":
        log.warning("Redis maxmemory-policy %s evicts keys with a TTL when full, sessions included; %s",
                    policy, redis.EVICTION_FIX)
    return evicted


async def check_all(stores: Stores, timeout: float = 2.0) -> dict[str, str]:  # noqa: ASYNC109
    """Each store's status for /ready: "ok" or the reason it failed."""
    checks = {
        "postgres": postgres.check(stores.pg),
        "redis": redis.check(stores.redis),
        "mongo": mongo.check(stores.mongo_client),
    }

    async def one(coro: Awaitable[None]) -> str:
        try:
            async with asyncio.timeout(timeout):
                await coro
            return "ok"
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            return short_reason(exc)

    results = await asyncio.gather(*(one(c) for c in checks.values()))
    return dict(zip(checks, results, strict=True))
