"""Redis: the asyncio client, its health check, and namespaced key names."""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff


def open_client(url: str, max_connections: int = 256) -> Redis:
    """One Redis (`redis://`, `rediss://`, `unix://`), or a cluster (`redis+cluster://`, see
    stores/redis_cluster.py), which answers the same methods."""
    from nubo_backend.stores import redis_cluster  # (it imports Keys from here)

    if redis_cluster.is_cluster_url(url):
        return redis_cluster.open_cluster(url)  # type: ignore[return-value]
    # A blocking pool: a burst of work (thousands of WebSocket connects) waits for a free
    # connection instead of failing with "Too many connections".
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=5,
        socket_connect_timeout=2,
        socket_timeout=5,
        health_check_interval=30,
        # After a Redis restart every pooled connection is dead: retry on a fresh one
        # instead of failing the first command on each of them.
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), retries=2),
    )
    client = Redis(connection_pool=pool)
    client.auto_close_connection_pool = True  # aclose() closes the pool it owns
    return client


async def check(client: Redis) -> None:
    await client.ping()


class Keys:
    """Every Redis key and channel the app uses, under one optional namespace.

    The namespace lets several deployments (or parallel test runs) share one Redis;
    empty by default, so the broadcast channel is the seed's `nubo-websocket`. A namespace
    gets a `:` separator unless it ends with one (`staging` -> `staging:profile:2`).
    """

    def __init__(self, namespace: str = "") -> None:
        self.ns = namespace if not namespace or namespace.endswith(":") else namespace + ":"

    def __call__(self, *parts: object) -> str:
        return self.ns + ":".join(map(str, parts))  # map: half the cost of a generator here

    @property
    def broadcast_channel(self) -> str:
        return self.ns + "nubo-websocket"

    @property
    def revocation_channel(self) -> str:
        """Session ids revoked anywhere, comma-separated (see auth.live_sessions)."""
        return self.ns + "sessions-revoked"


def keys_for(url: str, namespace: str = "") -> Keys:
    """The key names for the Redis at url: a cluster's carry hash tags (stores/redis_cluster.py)."""
    from nubo_backend.stores import redis_cluster

    return (redis_cluster.ClusterKeys if redis_cluster.is_cluster_url(url) else Keys)(namespace)
