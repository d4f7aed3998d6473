"""Redis restarted under running instances: delivery resumes with nothing lost, and what Redis
forgot (sessions) is enforced on the sockets that were open."""

import asyncio
import contextlib
from pathlib import Path

import httpx
from websockets.exceptions import ConnectionClosed

from nubo_backend.settings import Settings
from nubo_backend.stores import open_stores
from tests.e2e.ws_support import next_event, next_frame, open_ws, silent
from tests.factories import announce_event, make_user
from tests.support import PrivateRedis


def _env(settings: Settings, redis: PrivateRedis, **extra: str) -> dict[str, str]:
    return {"NUBO_REDIS_URL": redis.url, "NUBO_POSTGRES_DSN": settings.postgres_dsn,
            "NUBO_MONGO_DB": settings.mongo_db, **extra}


async def test_events_announced_while_redis_is_down_arrive_once_it_is_back(
    own_database: Settings, start_server, tmp_path: Path
) -> None:
    redis = PrivateRedis(aof_dir=tmp_path).start()
    own = await open_stores(own_database.replace(redis_url=redis.url))
    try:
        a = start_server(_env(own_database, redis))
        b = start_server(_env(own_database, redis))
        alice = await make_user(own)
        on_a, on_b = await open_ws(a, alice), await open_ws(b, alice)
        await announce_event(own, [alice.id], "n", {"n": 1})
        assert [(await next_event(ws))["id"] for ws in (on_a, on_b)] == [1, 1]

        redis.stop()
        for n in range(2, 7):  # committed while Redis is gone: the outbox keeps them
            await announce_event(own, [alice.id], "n", {"n": n})
        redis.start()  # same port, same append-only file: sessions survive

        for ws in (on_a, on_b):
            assert [(await next_event(ws, within=20))["id"] for _ in range(5)] == [2, 3, 4, 5, 6]
        await announce_event(own, [alice.id], "n", {"n": 7})
        assert [(await next_event(ws))["id"] for ws in (on_a, on_b)] == [7, 7]
        assert await silent(on_a) and await silent(on_b)  # and nothing twice
    finally:
        await own.close()
        redis.stop()


async def test_sockets_close_when_a_restarted_redis_lost_their_sessions(
    own_database: Settings, start_server
) -> None:
    redis = PrivateRedis().start()
    own = await open_stores(own_database.replace(redis_url=redis.url))
    try:
        a = start_server(_env(own_database, redis, NUBO_SESSION_MEMO_TTL="0"))
        alice = await make_user(own)
        ws = await open_ws(a, alice)
        redis.stop()
        redis.start()  # a new, empty Redis on the same port: every session is gone
        closed = None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(20):
                while True:
                    try:
                        await next_frame(ws, within=20)
                    except ConnectionClosed as exc:
                        closed = exc
                        break
        assert closed is not None and closed.rcvd is not None and closed.rcvd.code == 1008
        async with httpx.AsyncClient(base_url=a.url) as api:
            assert (await api.get("/me", headers=alice.headers)).status_code == 401  # REST agrees
    finally:
        await own.close()
        redis.stop()
