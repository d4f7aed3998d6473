"""Redis: the asyncio client, its health check, and namespaced key names."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff


def open_client(url: str) -> Redis:
    return Redis.from_url(
        url,
        socket_connect_timeout=2,
        socket_timeout=5,
        health_check_interval=30,
        max_connections=256,
        # After a Redis restart every pooled connection is dead: retry once on a fresh one
        # instead of failing the first command on each of them.
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), retries=2),
    )


async def check(client: Redis) -> None:
    await client.ping()


class Keys:
    """Every Redis key and channel the app uses, under one optional namespace.

    The namespace lets several deployments (or parallel test runs) share one Redis;
    empty by default, so the broadcast channel is the seed's `nubo-websocket`.
    """

    def __init__(self, namespace: str = "") -> None:
        self.ns = namespace

    def __call__(self, *parts: object) -> str:
        return self.ns + ":".join(str(p) for p in parts)

    @property
    def broadcast_channel(self) -> str:
        return self.ns + "nubo-websocket"
