"""Redis: the asyncio client, its health check, and namespaced key names."""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError


def open_client(
    url: str, max_connections: int = 256, *, command_timeout: float = 2.0, pool_timeout: float = 2.0,
    health_check_interval: float = 5.0,
) -> Redis:
    """One Redis (`redis://`, `rediss://`, `unix://`), or a cluster (`redis+cluster://`, see
    stores/redis_cluster.py), which answers the same methods.

    Every wait is bounded, so a Redis that stalls, or a connection that goes silent without
    closing, costs a request `command_timeout` and a 503 (errors.py), never an open-ended wait:
    a reply takes at most `command_timeout` (the connection is then dropped, not reused), a free
    connection at most `pool_timeout`, and a connection idle for `health_check_interval` is
    PINGed before it is used again."""
    from nubo_backend.stores import redis_cluster  # (it imports Keys from here)

    if redis_cluster.is_cluster_url(url):
        return redis_cluster.open_cluster(url)  # type: ignore[return-value]
    # A blocking pool: a burst of work (thousands of WebSocket connects) waits for a free
    # connection instead of failing with "Too many connections".
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=pool_timeout,
        socket_connect_timeout=min(2.0, command_timeout),
        socket_timeout=command_timeout,
        health_check_interval=health_check_interval,
        # After a Redis restart every pooled connection is dead: retry on a fresh one
        # instead of failing the first command on each of them. Not after a timeout: a stalled
        # Redis would cost each command its timeout once per attempt (three attempts of 5 s
        # made requests wait 12-15 s), and every waiting request holds a connection of its own.
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), retries=2, supported_errors=(RedisConnectionError,)),
    )
    client = Redis(connection_pool=pool)
    client.auto_close_connection_pool = True  # aclose() closes the pool it owns
    return client


async def check(client: Redis) -> None:
    await client.ping()


async def eviction(client: Redis) -> tuple[str, int]:
    """Redis's effective `maxmemory-policy` ("noeviction" when it has no memory limit; a
    cluster's riskiest node's) and the keys it has evicted since it started.

    Our keys all carry a TTL (sessions, rate-limit counters, cache), so `volatile-*` can evict
    sessions as surely as `allkeys-*`, only later; only `noeviction` keeps them (Redis then
    refuses writes when full, which the app answers 503). Read from INFO, which hosted Redis
    allows where CONFIG is often disabled."""
    info = await client.info()
    nodes = list(info.values()) if info and all(isinstance(v, dict) for v in info.values()) else [info]
    policies = [str(n.get("maxmemory_policy", "noeviction")) if int(n.get("maxmemory", 0) or 0) else "noeviction"
                for n in nodes]
    worst = max(policies, key=lambda p: (p.startswith("allkeys-"), p != "noeviction"))
    return worst, sum(int(n.get("evicted_keys", 0) or 0) for n in nodes)


def evicts_any_key(policy: str) -> bool:
    return policy.startswith("allkeys-")


EVICTION_FIX = "set maxmemory-policy noeviction (docs/deploy.md, Redis)"


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
