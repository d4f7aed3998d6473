"""The fault-injection suite's stack: a private PostgreSQL cluster for the session, and for each
test its own database, Redis (with an append-only file, or a Redis Cluster with replicas),
MongoDB stand-in and two instances."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from pymongo import AsyncMongoClient

from nubo_backend.stores.migrations import migrate
from nubo_backend.stores.mongo import ensure_indexes
from tests.cluster.cluster_support import PrivateRedisCluster
from tests.faults.proxy import FaultProxy
from tests.faults.stack import PrivatePostgres, Stack
from tests.support import MongoEmulator, PrivateRedis, jongodb_binary

_databases = itertools.count(1)


@pytest.fixture(scope="session")
def private_pg() -> Iterator[PrivatePostgres]:
    pg = PrivatePostgres().init().start()
    yield pg
    pg.destroy()


@pytest.fixture
async def stack(private_pg: PrivatePostgres, test_env: dict[str, str], tmp_path: Path) -> AsyncIterator[Stack]:
    redis = PrivateRedis(aof_dir=tmp_path).start()
    async with _running(private_pg, test_env, redis.url, redis=redis) as running:
        yield running


@pytest.fixture
async def proxied_stack(private_pg: PrivatePostgres, test_env: dict[str, str], tmp_path: Path) -> AsyncIterator[Stack]:
    """The stack with a FaultProxy (tests/faults/proxy.py) between the instances and each of
    PostgreSQL and Redis; `stack.direct_env` reaches both stores without it."""
    redis = PrivateRedis(aof_dir=tmp_path).start()
    redis_proxy = FaultProxy(redis.port).start()
    pg_proxy = FaultProxy(private_pg.port).start()
    try:
        # /ready's bounds shorter than a fault, so that the tests see it fail and come back.
        watch = {"NUBO_READY_BUS_SILENCE": "4", "NUBO_READY_OUTBOX_AGE": "5"}
        async with _running(private_pg, {**test_env, **watch}, f"redis://127.0.0.1:{redis_proxy.port}/0",
                            redis=redis, pg_port=pg_proxy.port, redis_proxy=redis_proxy, pg_proxy=pg_proxy) as running:
            yield running
    finally:
        redis_proxy.stop()
        pg_proxy.stop()


@pytest.fixture
async def cluster_stack(private_pg: PrivatePostgres, test_env: dict[str, str]) -> AsyncIterator[Stack]:
    """The same stack on a Redis Cluster of three masters with a replica each, which takes over
    one second after its master stops answering."""
    cluster = PrivateRedisCluster(replicas=1, node_timeout_ms=1000).start()
    async with _running(private_pg, test_env, cluster.url, cluster=cluster) as running:
        yield running


@asynccontextmanager
async def _running(
    private_pg: PrivatePostgres, test_env: dict[str, str], redis_url: str, *, pg_port: int | None = None,
    **redis: Any,
) -> AsyncIterator[Stack]:
    """A database, a MongoDB stand-in and two instances on the given Redis; all stopped after."""
    binary = jongodb_binary()
    if binary is None:
        for held in redis.values():
            held.stop()
        pytest.skip("the fault suite freezes a MongoDB stand-in of its own; none is installed")
    private_pg.start() if not (private_pg.data / "postmaster.pid").exists() else None
    name = f"faults_{next(_databases)}"
    admin = await asyncpg.connect(private_pg.dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    await migrate(private_pg.dsn_for(name))
    mongo = MongoEmulator(binary).start()
    client = AsyncMongoClient(mongo.url)
    await ensure_indexes(client["nubo"], 30 * 86400)
    await client.close()
    env = {
        **test_env,
        "NUBO_POSTGRES_DSN": private_pg.dsn_for(name),
        "NUBO_REDIS_URL": redis_url,
        "NUBO_REDIS_NAMESPACE": "",
        "NUBO_MONGO_URL": mongo.url,
        "NUBO_MONGO_DB": "nubo",
        "NUBO_STARTUP_TIMEOUT": "10",
    }
    direct = {**env}
    if pg_port is not None:  # the instances reach PostgreSQL through a proxy
        env["NUBO_POSTGRES_DSN"] = env["NUBO_POSTGRES_DSN"].replace(f":{private_pg.port}/", f":{pg_port}/")
    if redis.get("redis") is not None:
        direct["NUBO_REDIS_URL"] = redis["redis"].url
    running = Stack(private_pg, mongo=mongo, env=env, direct_env=direct, **redis)
    try:
        running.start_server()
        running.start_server()
        yield running
    finally:
        running.stop()
        if not (private_pg.data / "postmaster.pid").exists():
            private_pg.start()
