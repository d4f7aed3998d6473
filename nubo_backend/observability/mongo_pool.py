"""MongoDB's connection pool, as PyMongo reports it through its documented pool monitoring API
(`pymongo.monitoring.ConnectionPoolListener`, the driver's CMAP events).

PyMongo keeps no public figures of its pools (asyncpg does; redis-py's are read off its pool),
but tells a listener given to the client of every connection opened, closed, checked out and
checked in, and how long each check-out took. `MongoPoolWatch` keeps each connection's state,
which the sampler turns into `nubo_pool_connections{store="mongo"}` like the other stores'
pools, and times each check-out into `nubo_pool_wait_seconds` (the wait for a free connection,
or for a new one to open).

No gauge of the check-outs waiting now: PyMongo 4.20 publishes no end for a wait cancelled
while the pool is full (an `asyncio.timeout` around a query), so a count of starts less ends
drifts up. For the same reason such a wait is missing from the histogram; a stall shows as
no idle connection (all busy or opening) and, once it ends, as long waits.

Given to the client only with metrics on (`pool_listeners`): without a listener PyMongo skips
publishing its pool events altogether.
"""

from __future__ import annotations

from typing import Any

from pymongo.monitoring import (
    ConnectionCheckedInEvent,
    ConnectionCheckedOutEvent,
    ConnectionCheckOutFailedEvent,
    ConnectionCheckOutStartedEvent,
    ConnectionClosedEvent,
    ConnectionCreatedEvent,
    ConnectionPoolListener,
    ConnectionReadyEvent,
    PoolClearedEvent,
    PoolClosedEvent,
    PoolCreatedEvent,
    PoolReadyEvent,
)

from nubo_backend.observability import metrics
from nubo_backend.settings import Settings

OPENING, IDLE, BUSY = "opening", "idle", "busy"  # a connection's state, as nubo_pool_connections labels it


def pool_listeners(settings: Settings) -> list[ConnectionPoolListener]:
    """The listeners for a serving process's MongoDB client: a `MongoPoolWatch` with metrics on."""
    return [MongoPoolWatch()] if settings.metrics_port else []


def watch_of(client: Any) -> MongoPoolWatch | None:
    """The `MongoPoolWatch` a client was given, if any."""
    return next((li for li in client.options.event_listeners if isinstance(li, MongoPoolWatch)), None)


class MongoPoolWatch(ConnectionPoolListener):
    """Each connection's state (opening, idle, busy) across the client's pools (one per server).
    Called on the event loop's thread for every check-out: a dict update and one histogram
    observation, beside a MongoDB round trip."""

    def __init__(self) -> None:
        self.pools: set[Any] = set()  # server addresses with a pool
        self.connections: dict[tuple[Any, int], str] = {}  # (address, id) -> opening, idle or busy
        self._wait = metrics.pool_wait.labels("mongo")

    def count(self, state: str) -> int:
        return sum(1 for found in self.connections.values() if found == state)

    def pool_created(self, event: PoolCreatedEvent) -> None:
        self.pools.add(event.address)

    def pool_closed(self, event: PoolClosedEvent) -> None:
        self.pools.discard(event.address)

    def connection_created(self, event: ConnectionCreatedEvent) -> None:
        self.connections[(event.address, event.connection_id)] = OPENING

    def connection_ready(self, event: ConnectionReadyEvent) -> None:
        self.connections[(event.address, event.connection_id)] = IDLE

    def connection_closed(self, event: ConnectionClosedEvent) -> None:
        self.connections.pop((event.address, event.connection_id), None)

    def connection_checked_out(self, event: ConnectionCheckedOutEvent) -> None:
        self.connections[(event.address, event.connection_id)] = BUSY
        if event.duration is not None:
            self._wait.observe(event.duration)

    def connection_check_out_failed(self, event: ConnectionCheckOutFailedEvent) -> None:
        if event.duration is not None:  # (a wait that ended in a timeout or a failed connection)
            self._wait.observe(event.duration)

    def connection_checked_in(self, event: ConnectionCheckedInEvent) -> None:
        key = (event.address, event.connection_id)
        if key in self.connections:  # (not when its close was published first)
            self.connections[key] = IDLE

    def connection_check_out_started(self, event: ConnectionCheckOutStartedEvent) -> None:
        pass  # (timed by the end events' duration)

    def pool_ready(self, event: PoolReadyEvent) -> None:
        pass

    def pool_cleared(self, event: PoolClearedEvent) -> None:
        pass  # (its connections are closed as they come back: connection_closed)
