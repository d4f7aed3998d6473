"""Redis Pub/Sub between instances: the broadcast channel always, a user's channel while held.

One subscriber connection per instance. If Redis goes away (restart, network), the loop
reconnects with backoff and subscribes again to every channel it should hold, so delivery
resumes without restarting the server.

A connection can also go silent without closing (a NAT or load balancer forgetting it, a
half-dead host): nothing arrives and nothing fails. So the subscriber PINGs whenever it has
heard nothing for `bus_ping_interval`, and treats no answer within `bus_ping_timeout` as a
lost connection; the pool's idle connections are dropped with it (they went through the same
network), and the reconnection's callbacks catch every socket up and re-check its session.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from redis.asyncio.client import PubSub
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from nubo_backend.stores import Stores
from nubo_backend.stores.redis_cluster import ShardedPubSub

log = logging.getLogger("nubo.bus")

Listener = Callable[[bytes], None]

SUBSCRIBE_WAIT = 2.0  # seconds a new connection waits for its channel to be live
MAX_BACKOFF = 5.0
PING_DATA = b"nubo-bus"


class BusSilent(RedisTimeoutError):
    """No answer to the subscriber's PING in time: the connection is gone, though not closed."""


class Bus:
    """Subscribes to channels on demand and hands each message to its channel's listener."""

    def __init__(self, stores: Stores) -> None:
        self.stores = stores
        self.listeners: dict[bytes, Listener] = {}
        self.confirmed: dict[bytes, asyncio.Future[None]] = {}
        self.pubsub: PubSub | ShardedPubSub | None = None
        self.task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()
        # Called on every (re)connection, before it counts as connected: whatever was
        # published while disconnected was missed (auth.live_sessions forgets everything).
        self.on_connect: list[Callable[[], None]] = []
        # Called once every channel of a (re)connection is confirmed live: from then on nothing
        # more is missed, so this is when to look back for what was (realtime.hub catches up).
        self.on_live: list[Callable[[], None]] = []
        self._unconfirmed: set[bytes] = set()
        settings = stores.settings
        self.ping_interval = settings.bus_ping_interval
        self.ping_timeout = settings.bus_ping_timeout
        # Loop time of the last thing Redis said on the subscriber connection (a message, a
        # confirmation, a PONG), and of the start: /ready reports a bus that has been quiet
        # for too long (health/routes.py).
        self.last_heard = 0.0

    def silent_for(self) -> float:
        """Seconds since Redis last answered on the subscriber connection (0 when it just did)."""
        if not self.last_heard:
            return 0.0
        return max(asyncio.get_running_loop().time() - self.last_heard, 0.0)

    def listen(self, channel: str, listener: Listener) -> None:
        """Register a channel to hold from start-up on (the broadcast channel)."""
        self.listeners[channel.encode()] = listener

    def start(self) -> None:
        self.last_heard = asyncio.get_running_loop().time()  # (the start counts: not silent yet)
        self.task = asyncio.create_task(self._run(), name="nubo-bus")

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        await self._discard()

    async def subscribe(self, channel: str, listener: Listener) -> None:
        """Listen to channel; returns once Redis confirms (or after SUBSCRIBE_WAIT if it is down)."""
        name = channel.encode()
        self.listeners[name] = listener
        waiter = self.confirmed.get(name)
        if waiter is None:
            waiter = self.confirmed[name] = asyncio.get_running_loop().create_future()
        pubsub = self.pubsub
        try:
            if pubsub is not None:
                await pubsub.subscribe(name)
            async with asyncio.timeout(SUBSCRIBE_WAIT):
                await asyncio.shield(waiter)
        except (RedisError, OSError, TimeoutError) as exc:
            # The reconnect loop subscribes it as soon as Redis is back.
            log.warning("subscription to %s pending: %s", channel, exc or type(exc).__name__)

    async def unsubscribe(self, channel: str) -> None:
        name = channel.encode()
        self.listeners.pop(name, None)
        self.confirmed.pop(name, None)
        pubsub = self.pubsub
        if pubsub is not None:
            try:
                await pubsub.unsubscribe(name)
            except (RedisError, OSError) as exc:
                log.warning("unsubscribe from %s failed: %s", channel, exc)

    async def _run(self) -> None:
        backoff = 0.1
        while True:
            try:
                await self._connect()
                backoff = 0.1
                await self._listen()
            except asyncio.CancelledError:
                raise
            except BusSilent as exc:
                log.warning("Redis pub/sub silent (%s); reconnecting in %.1fs", exc, backoff)
                await self._drop_idle_connections()
            except (RedisError, OSError) as exc:
                log.warning("Redis pub/sub lost (%s); reconnecting in %.1fs", exc, backoff)
            await self._discard()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)

    async def _connect(self) -> None:
        pubsub = self.stores.redis.pubsub()
        wanted = list(self.listeners)  # never empty: the broadcast channel
        for name in wanted:
            if name not in self.confirmed or self.confirmed[name].done():
                self.confirmed[name] = asyncio.get_running_loop().create_future()
        self._unconfirmed = set(wanted)
        try:
            await pubsub.subscribe(*wanted)
            self.pubsub = pubsub
            # Channels asked for while the line above ran saw no pubsub yet: subscribe them too.
            if late := [name for name in self.listeners if name not in wanted]:
                self._unconfirmed.update(late)
                await pubsub.subscribe(*late)
        except BaseException:
            self.pubsub = None
            await pubsub.aclose()
            raise
        # redis-py's own retry may reconnect this connection under us (and subscribe again):
        # hear of it, since whatever was published meanwhile was missed just the same. (A
        # cluster's ShardedPubSub has no such connection: it fails instead, and we reconnect.)
        if pubsub.connection is not None:
            pubsub.connection.register_connect_callback(self._reconnected_under_us)
        self.last_heard = asyncio.get_running_loop().time()
        for callback in self.on_connect:
            callback()
        self.connected.set()
        log.info("Redis pub/sub connected, %d channel(s)", len(self.listeners))

    def _reconnected_under_us(self, connection: object) -> None:
        log.warning("Redis pub/sub reconnected, %d channel(s)", len(self.listeners))
        self._unconfirmed = set(self.listeners)  # on_live once they are all confirmed again
        for callback in self.on_connect:
            callback()

    async def _listen(self) -> None:
        pubsub = self.pubsub
        assert pubsub is not None
        listeners, confirmed = self.listeners, self.confirmed
        loop = asyncio.get_running_loop()
        ping_interval, ping_timeout = self.ping_interval, self.ping_timeout
        pinged: float | None = None  # when the unanswered PING went out
        while True:
            message = await pubsub.get_message(timeout=min(1.0, ping_interval))
            if message is None:
                now = loop.time()
                if pinged is not None:
                    if now - pinged > ping_timeout:
                        raise BusSilent(f"no answer to PING in {ping_timeout:g}s")
                elif now - self.last_heard >= ping_interval:
                    await pubsub.ping(PING_DATA)
                    pinged = now
                continue
            self.last_heard = loop.time()
            pinged = None
            kind, channel = message["type"], message["channel"]
            if kind == "message":
                listener = listeners.get(channel)
                if listener is not None:
                    try:
                        listener(message["data"])
                    except Exception:  # noqa: BLE001 - one bad frame must not stop the bus
                        log.exception("listener of %r failed", channel)
            elif kind == "subscribe":
                waiter = confirmed.get(channel)
                if waiter is not None and not waiter.done():
                    waiter.set_result(None)
                if self._unconfirmed:
                    self._unconfirmed.discard(channel)
                    if not self._unconfirmed:
                        for callback in self.on_live:
                            callback()

    async def _drop_idle_connections(self) -> None:
        """The pooled connections idle now went the same way as the subscriber's, and may be as
        silent: drop them, so that the next commands (the re-check of every socket's session
        once the bus is back among them) go out on new ones instead of each waiting for its
        timeout. Connections in use fail on their own timeout."""
        pool = getattr(self.stores.redis, "connection_pool", None)  # (a cluster client has none)
        if pool is None:
            return
        try:
            await pool.disconnect(inuse_connections=False)
        except Exception as exc:  # noqa: BLE001 - a socket that will not close is left to its timeout
            log.warning("dropping idle Redis connections failed: %s", exc)

    async def _discard(self) -> None:
        self.connected.clear()
        pubsub, self.pubsub = self.pubsub, None
        if pubsub is not None:
            try:
                await pubsub.aclose()
            except Exception:  # noqa: BLE001 - the connection is already broken
                pass
