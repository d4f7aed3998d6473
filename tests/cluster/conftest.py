"""Servers on a real local Redis Cluster (tests/cluster/cluster_support.py), with a database of
their own, so their relays share no outbox with the session's servers on the single Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator

import pytest

from nubo_backend.settings import Settings
from nubo_backend.stores import Stores, open_stores
from tests.cluster.cluster_support import PrivateRedisCluster
from tests.e2e.ws_support import OPENED
from tests.support import ServerProcess


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[PrivateRedisCluster]:
    cluster = PrivateRedisCluster().start()
    yield cluster
    cluster.stop()


@pytest.fixture
async def cluster_stores(own_database: Settings, redis_cluster: PrivateRedisCluster) -> AsyncIterator[Stores]:
    """The stores on the cluster (emptied first), as the servers see them."""
    redis_cluster.flush()
    stores = await open_stores(own_database.replace(redis_url=redis_cluster.url))
    yield stores
    await stores.close()


@pytest.fixture
def start_cluster_server(
    test_env: dict[str, str], cluster_stores: Stores, redis_cluster: PrivateRedisCluster
) -> Iterator[Callable[..., ServerProcess]]:
    """Start real servers on the cluster; all stopped (their sockets closed first) after the test."""
    settings = cluster_stores.settings
    env = {**test_env, "NUBO_REDIS_URL": redis_cluster.url, "NUBO_POSTGRES_DSN": settings.postgres_dsn,
           "NUBO_MONGO_DB": settings.mongo_db}
    started: list[ServerProcess] = []

    def start(more: dict[str, str] | None = None) -> ServerProcess:
        started.append(ServerProcess({**env, **(more or {})}).start())
        return started[-1]

    yield start
    for proc in started:
        proc.stop()


@pytest.fixture(autouse=True)
async def _close_clients() -> AsyncIterator[None]:
    yield
    while OPENED:
        await OPENED.pop().close()
