"""Redis Cluster: everything that differs from one Redis, in one place.

`NUBO_REDIS_URL=redis+cluster://host:port[,host:port...]` (or `rediss+cluster://`) names a
cluster by its seed nodes. The rest of the code calls the same redis-py methods as on one
Redis; this module makes them right on a cluster:

- **Key names** (`ClusterKeys`): a key's hash tag decides its shard. A session's keys, a
  user's presence count and channel, a rate-limit counter are tagged by their own id, so
  they spread over the shards. Everything else, the cache above all, shares one tag: its
  scripts read a page's list, entries and viewer set together (and `cache._VIEW` builds
  entry keys inside Lua), so they must live in one slot. That tag is chosen to hash to the
  slot of the empty key, because the cache scripts pass `''` for "no such key".
- **Transactions** (`ShardedPipeline`): a `MULTI` can only touch one slot. A transaction
  whose keys span slots (a session and its user's index) runs as one `MULTI` per slot, in
  the order the commands were queued; each entity stays atomic, the group does not.
- **Pub/sub** (`NuboCluster.publish`, `ShardedPubSub`): a channel with a hash tag (a user's,
  the revocations) is a shard channel, `SPUBLISH`ed and `SSUBSCRIBE`d on its own shard, so
  a message costs one shard, not every node. A channel without one (the seed's
  `nubo-websocket` broadcast) stays plain `PUBLISH`, which every node hears.
- **Hot reads**: `stores/redis_reads.FastReads` speaks to one server, so a cluster's reads
  go through redis-py's cluster client (it does not parse `redis+cluster://` URLs).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import Any
from urllib.parse import unquote, urlsplit

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.cluster import ClusterNode, ClusterPipeline, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.crc import key_slot
from redis.exceptions import ConnectionError as RedisConnectionError

from nubo_backend.stores.redis import Keys

log = logging.getLogger("nubo.redis")

SCHEMES = ("redis+cluster", "rediss+cluster")

# Hashes to slot 0, the slot of the empty key `''` (see the module docstring; pinned by a test).
SHARED_TAG = "{cache25769}"

# Key kinds tagged by their last part (the id they are about); every other kind shares SHARED_TAG.
SPREAD_KINDS = frozenset({"sess", "sess_rotated", "user_sessions", "presence", "user", "rl"})


def is_cluster_url(url: str) -> bool:
    return url.split("://", 1)[0] in SCHEMES


class ClusterKeys(Keys):
    """Key and channel names with the hash tags the cluster needs (see the module docstring)."""

    def __call__(self, *parts: object) -> str:
        if parts and parts[0] in SPREAD_KINDS and len(parts) > 1:
            *kind, tag = map(str, parts)
            return self.ns + ":".join(kind) + ":{" + tag + "}"
        return self.ns + SHARED_TAG + ":" + ":".join(map(str, parts))

    @property
    def revocation_channel(self) -> str:
        return self.ns + "{sessions-revoked}"


def is_shard_channel(channel: str | bytes) -> bool:
    """A channel with a hash tag lives on one shard; one without is cluster-wide."""
    name = channel.encode() if isinstance(channel, str) else channel
    start = name.find(b"{")
    return start >= 0 and name.find(b"}", start + 2) > start


def open_cluster(url: str) -> NuboCluster:
    parts = urlsplit(url)
    nodes = []
    for address in parts.netloc.rpartition("@")[2].split(","):
        host, _, port = address.rpartition(":")
        nodes.append(ClusterNode(host or "127.0.0.1", int(port or 6379)))
    auth = parts.netloc.rpartition("@")[0]
    username, _, password = auth.partition(":") if auth else ("", "", "")
    return NuboCluster(
        startup_nodes=nodes,
        username=unquote(username) or None,
        password=unquote(password) or None,
        ssl=parts.scheme.startswith("rediss"),
        socket_connect_timeout=2,
        socket_timeout=5,
        health_check_interval=30,
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), retries=2),
    )


class NuboCluster(RedisCluster):
    """redis-py's cluster client with shard channels, per-slot transactions, sharded pub/sub."""

    async def publish(self, channel: Any, message: Any, **kwargs: Any) -> int:  # type: ignore[override]
        if is_shard_channel(channel):
            return await self.spublish(channel, message)
        return await super().publish(channel, message, **kwargs)

    def pipeline(self, transaction: Any = None, shard_hint: Any = None) -> ShardedPipeline:
        return ShardedPipeline(self, atomic=bool(transaction))

    def pubsub(self, **kwargs: Any) -> ShardedPubSub:  # type: ignore[override]
        return ShardedPubSub(self)


class ShardedPipeline(ClusterPipeline):
    """A cluster pipeline whose `publish` goes to the channel's shard and whose transactions
    run one `MULTI` per slot (in queue order) instead of refusing keys in several slots."""

    def __init__(self, client: RedisCluster, *, atomic: bool) -> None:
        super().__init__(client, transaction=False)
        self.atomic = atomic

    def publish(self, channel: Any, message: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        if is_shard_channel(channel):
            return self.spublish(channel, message)
        return super().publish(channel, message, **kwargs)

    async def execute(self, raise_on_error: bool = True, allow_redirections: bool = True) -> list[Any]:
        if not self.atomic:
            return await super().execute(raise_on_error, allow_redirections)
        queued = self._execution_strategy._command_queue  # noqa: SLF001 - redis-py keeps no public list
        try:
            groups: dict[int, list[int]] = {}
            for n, command in enumerate(queued):
                slot = await self.cluster_client._determine_slot(*command.args)  # noqa: SLF001
                groups.setdefault(slot, []).append(n)
            results: list[Any] = [None] * len(queued)
            for positions in groups.values():
                transaction = ClusterPipeline(self.cluster_client, transaction=True)
                for n in positions:
                    transaction.execute_command(*queued[n].args, **queued[n].kwargs)
                for n, result in zip(positions, await transaction.execute(raise_on_error), strict=True):
                    results[n] = result
            return results
        finally:
            await self.reset()


class ShardedPubSub:
    """The subset of redis-py's PubSub the bus uses (subscribe, unsubscribe, get_message,
    aclose), over one connection per master: shard channels with `SSUBSCRIBE` on the master
    of their slot, plain channels with `SUBSCRIBE` on the first master.

    Messages come out as a plain PubSub gives them (`message`, `subscribe`). It never
    reconnects by itself: a lost connection, or a shard channel the server drops (its slot
    moved), is raised from get_message, and the bus reconnects and catches up as it does
    after any outage on one Redis."""

    connection = None  # nothing reconnects under the bus (see above)

    def __init__(self, cluster: NuboCluster) -> None:
        self.cluster = cluster
        self.nodes: dict[str, PubSub] = {}
        self.clients: list[Redis] = []
        self.readers: list[asyncio.Task[None]] = []
        self.queue: asyncio.Queue[dict[str, Any] | BaseException] = asyncio.Queue()
        self.leaving: Counter[bytes] = Counter()  # unsubscriptions asked for, not yet confirmed
        self.where: dict[bytes, PubSub] = {}
        self._topology_fresh = False
        self.pongs_due: set[str] = set()  # nodes yet to answer the last ping()

    async def ping(self, data: bytes) -> None:
        """PING every node's subscriber connection; one `pong` comes out of get_message once
        all of them have answered (a silent node keeps the bus waiting, and it reconnects)."""
        self.pongs_due = set(self.nodes)
        for pubsub in list(self.nodes.values()):
            await pubsub.ping(data)

    async def subscribe(self, *channels: str | bytes) -> None:
        if not self._topology_fresh:  # a new subscriber (after an outage, say): ask the cluster again
            await self.cluster.nodes_manager.initialize()
            self._topology_fresh = True
        by_slot: dict[tuple[str, int], list[bytes]] = {}
        plain: list[bytes] = []
        for channel in channels:
            name = channel.encode() if isinstance(channel, str) else channel
            if is_shard_channel(name):
                node = self.cluster.get_node_from_key(name)
                by_slot.setdefault((node.name, key_slot(name)), []).append(name)
            else:
                plain.append(name)
        if plain:
            pubsub = self._pubsub(self.cluster.get_primaries()[0])
            await pubsub.subscribe(*plain)
            self.where.update(dict.fromkeys(plain, pubsub))
        for (node_name, _), names in by_slot.items():  # one SSUBSCRIBE per slot (else CROSSSLOT)
            pubsub = self._pubsub(self.cluster.get_node(node_name=node_name))
            await pubsub.ssubscribe(*names)
            self.where.update(dict.fromkeys(names, pubsub))

    async def unsubscribe(self, *channels: str | bytes) -> None:
        for channel in channels:
            name = channel.encode() if isinstance(channel, str) else channel
            pubsub = self.where.pop(name, None)
            if pubsub is None:
                continue
            self.leaving[name] += 1
            if is_shard_channel(name):
                await pubsub.sunsubscribe(name)
            else:
                await pubsub.unsubscribe(name)

    async def get_message(self, timeout: float = 0.0) -> dict[str, Any] | None:  # noqa: ASYNC109
        try:
            async with asyncio.timeout(timeout):
                item = await self.queue.get()
        except TimeoutError:
            return None
        if isinstance(item, BaseException):
            raise item
        return item

    async def aclose(self) -> None:
        for task in self.readers:
            task.cancel()
        await asyncio.gather(*self.readers, return_exceptions=True)
        for pubsub in self.nodes.values():
            await pubsub.aclose()
        for client in self.clients:
            await client.aclose()
        self.nodes.clear()

    def _pubsub(self, node: ClusterNode) -> PubSub:
        pubsub = self.nodes.get(node.name)
        if pubsub is None:
            kwargs = self.cluster.get_connection_kwargs()
            client = Redis(
                host=node.host, port=node.port, username=kwargs.get("username"), password=kwargs.get("password"),
                ssl=bool(kwargs.get("ssl")), socket_connect_timeout=2, health_check_interval=30,
                retry=Retry(NoBackoff(), 0),  # fail, so that the bus reconnects everything
            )
            pubsub = self.nodes[node.name] = client.pubsub()
            self.clients.append(client)
            self.readers.append(asyncio.create_task(self._read(node.name, pubsub), name=f"nubo-pubsub-{node.name}"))
        return pubsub

    async def _read(self, node_name: str, pubsub: PubSub) -> None:
        try:
            while True:
                if not pubsub.subscribed:
                    await asyncio.sleep(0.05)  # (until the first subscription on this node is sent)
                    continue
                message = await pubsub.get_message(timeout=1.0)
                if message is not None:
                    self._hand_over(message, node_name)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - handed to the bus, which reconnects
            self.queue.put_nowait(exc)

    def _hand_over(self, message: dict[str, Any], node_name: str = "") -> None:
        kind = message["type"]
        if kind == "pong":
            if node_name in self.pongs_due:
                self.pongs_due.discard(node_name)
                if not self.pongs_due:
                    self.queue.put_nowait({"type": "pong", "channel": None, "data": message["data"]})
        elif kind in ("message", "smessage"):
            self.queue.put_nowait({"type": "message", "channel": message["channel"], "data": message["data"]})
        elif kind in ("subscribe", "ssubscribe"):
            self.queue.put_nowait({"type": "subscribe", "channel": message["channel"], "data": message["data"]})
        elif kind in ("unsubscribe", "sunsubscribe"):
            channel = message["channel"]
            if self.leaving[channel] > 0:
                self.leaving[channel] -= 1
            elif channel in self.where:  # the server dropped it: its slot moved to another master
                self.queue.put_nowait(RedisConnectionError(f"shard channel {channel!r} moved"))

