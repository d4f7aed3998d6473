"""Redis restarted under running instances: they resubscribe and delivery resumes, no server restart."""

import asyncio
import contextlib

from nubo_backend.realtime.events import emit
from nubo_backend.settings import Settings
from nubo_backend.stores import open_stores
from tests.e2e.ws_support import next_event, next_frame, open_ws
from tests.factories import make_user
from tests.support import PrivateRedis


async def test_delivery_resumes_after_redis_restarts(settings: Settings, stores, start_server) -> None:
    redis = PrivateRedis().start()
    restarted = PrivateRedis()
    restarted.port = redis.port
    own = await open_stores(settings.replace(redis_url=redis.url))
    try:
        a = start_server({"NUBO_REDIS_URL": redis.url})
        b = start_server({"NUBO_REDIS_URL": redis.url})
        alice = await make_user(own)
        on_a, on_b = await open_ws(a, alice), await open_ws(b, alice)
        assert (await emit(own, [alice.id], "n", {"n": 1})) == {alice.id: 1}
        assert [(await next_event(ws))["id"] for ws in (on_a, on_b)] == [1, 1]

        redis.stop()
        restarted.start()  # a new, empty Redis on the same port

        async def resumed() -> None:
            while True:
                with contextlib.suppress(Exception):
                    await on_a.send("still there?")
                    if await next_frame(on_a, within=0.5) == "still there?":
                        return

        await asyncio.wait_for(resumed(), 20)
        assert await next_frame(on_b, within=5) == "still there?"  # cross-instance relay is back
        # The counter was lost with Redis: numbering continues after the journal, not from 1.
        assert (await emit(own, [alice.id], "n", {"n": 2})) == {alice.id: 2}
        for ws in (on_a, on_b):
            event = await next_event(ws)
            assert (event["id"], event["data"]) == (2, {"n": 2})
    finally:
        await own.close()
        restarted.stop()
        redis.stop()
