"""Presence under a connect storm: thousands of sockets at once, through a Redis pool far
smaller than the storm, still count exactly and announce once."""

from __future__ import annotations

import asyncio

from websockets.asyncio.client import ClientConnection, connect

from nubo_backend.realtime.presence import online_count
from nubo_backend.settings import Settings
from nubo_backend.stores import Stores, open_stores
from tests.e2e.test_ws_presence import share_conversation
from tests.e2e.ws_support import next_frame, open_ws
from tests.factories import make_user
from tests.support import PrivateRedis, ServerProcess

STORM = 2000  # sockets of one user, half on each of two instances
STORM_ENV = {
    "NUBO_REDIS_MAX_CONNECTIONS": "2",  # the bus holds one: one left for a storm of 1,000 per instance
    "NUBO_WS_MAX_CONNECTIONS_PER_USER": str(STORM),
    "NUBO_LOG_LEVEL": "WARNING",  # two log lines per socket otherwise
}


async def _ready_socket(server: ServerProcess, headers: dict[str, str], ready: list[int]) -> ClientConnection:
    ws = await connect(server.ws_url, additional_headers=headers, open_timeout=60, ping_interval=None)
    assert '"ready"' in await asyncio.wait_for(ws.recv(), 60)
    ready[0] += 1
    return ws


async def _presence_of(ws: ClientConnection, user_id: int, first_within: float = 15.0, then: float = 1.0) -> list[str]:
    """Every presence status about user_id that reaches ws: waiting up to `first_within` seconds
    for the first (a busy machine delays it), then `then` seconds more for any other."""
    statuses: list[str] = []
    deadline = asyncio.get_running_loop().time() + first_within
    try:
        while True:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                break
            frame = await next_frame(ws, left)
            if isinstance(frame, dict) and frame.get("type") == "presence" and frame["data"]["user_id"] == user_id:
                statuses.append(frame["data"]["status"])
                deadline = min(deadline, asyncio.get_running_loop().time() + then)
    except TimeoutError:
        pass
    return statuses


async def _count_settles(stores: Stores, user_id: int, expected: int, seconds: float = 15.0) -> int:
    """The user's count once it is `expected`, or whatever it is after `seconds`."""
    for _ in range(int(seconds * 10)):
        count = await online_count(stores, user_id)
        if count == expected:
            return count
        await asyncio.sleep(0.1)
    return count


async def test_a_connect_storm_through_an_exhausted_redis_pool_counts_every_socket_and_announces_once(
    own_database: Settings, start_server
) -> None:
    """Redis stalls its writes for longer than the pool's wait (5 s) in the middle of the storm:
    the one free pooled connection is held, thousands of connects queue behind it and time out
    (the "No connection available" of the fan-out bench). Counts are written again once Redis
    answers, so none is lost and none counted twice."""
    redis = PrivateRedis().start()
    # The test's own reads wait out the 6 s pause below (the servers keep their 2 s bound).
    own = await open_stores(own_database.replace(redis_url=redis.url, redis_command_timeout=30.0))
    try:
        env = {**STORM_ENV, "NUBO_REDIS_URL": redis.url, "NUBO_POSTGRES_DSN": own_database.postgres_dsn,
               "NUBO_MONGO_DB": own_database.mongo_db}
        a, b = start_server(env), start_server(env)
        alice, bob = await make_user(own), await make_user(own)
        await share_conversation(own, alice, bob)
        watching = await open_ws(a, bob)

        ready = [0]
        storm = asyncio.gather(
            *(_ready_socket(a if n % 2 else b, alice.headers, ready) for n in range(STORM)), return_exceptions=True
        )
        async with asyncio.timeout(60):
            while ready[0] < STORM // 10:  # noqa: ASYNC110 - a counter the sockets bump, polled
                await asyncio.sleep(0.05)
        await own.redis.client_pause(6000, all=False)  # writes (and scripts) wait 6 s
        sockets = await storm
        opened = [ws for ws in sockets if isinstance(ws, ClientConnection)]
        try:
            assert len(opened) == STORM, [s for s in sockets if not isinstance(s, ClientConnection)][:3]
            assert await _count_settles(own, alice.id, STORM) == STORM
            assert await _presence_of(watching, alice.id) == ["online"]

            await asyncio.gather(*(ws.close() for ws in opened[: STORM // 2]))
            assert await _count_settles(own, alice.id, STORM - STORM // 2) == STORM - STORM // 2
        finally:
            await asyncio.gather(*(ws.close() for ws in opened), return_exceptions=True)
        assert await _count_settles(own, alice.id, 0) == 0
        assert await _presence_of(watching, alice.id) == ["offline"]
    finally:
        await own.close()
        redis.stop()
