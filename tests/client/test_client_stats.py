"""`realtime.stats` counts what the stream received and dropped, so that de-duplication cannot
hide a server's mistake; `on_frame` sees each frame as it arrives; `on_response` sees every
REST answer; `log_in_again` continues the same stream after a revoked session.

Our server never repeats an event, so the first test scripts a peer that does: a WebSocket
server of its own on 127.0.0.1 that speaks the protocol's frames and misbehaves on purpose.
"""

import asyncio
import json
import signal
import time

import pytest
from websockets.asyncio.server import ServerConnection, serve

from nubo_backend.client import NotFound, Nubo, ServiceUnavailable, SessionRevoked
from nubo_backend.client.errors import error_for_response
from nubo_backend.stores import Stores
from tests.client.support import collect_ids, connected
from tests.factories import PASSWORD, announce_event, make_user


def _event(event_id: int) -> str:
    return json.dumps({"id": event_id, "type": "n", "data": {}})


async def test_stats_count_repeats_late_ids_and_gaps_that_the_stream_drops_or_passes_on() -> None:
    asked: list[str] = []

    async def misbehaving(ws: ServerConnection) -> None:
        asked.append(ws.request.path)
        await ws.send(json.dumps({"type": "ready", "user_id": 1, "last_event_id": 0}))
        if len(asked) == 1:  # 2 twice, 4 before 3 (a gap, then a late id), then a 1011
            for event_id in (1, 2, 2, 4, 3, 5):
                await ws.send(_event(event_id))
            await ws.close(1011, "scripted")
        else:  # the resume: 5 again (already had it), then 6
            for event_id in (5, 6):
                await ws.send(_event(event_id))
            await ws.wait_closed()

    async with serve(misbehaving, "127.0.0.1", 0) as peer:
        port = peer.sockets[0].getsockname()[1]
        client = Nubo.with_token(f"http://127.0.0.1:{port}", "scripted-token")
        try:
            assert await collect_ids(client, 5, within=10) == [1, 2, 4, 5, 6]
        finally:
            await client.aclose()
    stats = client.realtime.stats
    assert asked == ["/ws", "/ws?last_event_id=5"]
    assert (stats.frames, stats.events, stats.duplicates, stats.out_of_order, stats.gaps) == (10, 8, 2, 1, 1)
    assert (stats.delivered, stats.reconnects, stats.resumes, dict(stats.closes)) == (5, 1, 1, {1011: 1})
    assert (stats.resyncs, stats.failed_attempts) == (0, 0)


async def test_stats_of_a_failover_to_the_other_instance_show_one_reconnect_and_nothing_dropped(
    stores: Stores, start_server, login
) -> None:
    a, b = start_server(), start_server()
    alice = await make_user(stores)
    client = await login([a, b], alice)
    await connected(client)
    for n in range(3):
        await announce_event(stores, [alice.id], "n", {"n": n})
    assert await collect_ids(client, 3) == [1, 2, 3]
    a.stop(signal.SIGKILL)  # this test's own process, by its pid
    for n in range(3, 7):
        await announce_event(stores, [alice.id], "n", {"n": n})
    assert await collect_ids(client, 4) == [4, 5, 6, 7]
    stats = client.realtime.stats
    assert (stats.events, stats.duplicates, stats.out_of_order, stats.gaps) == (7, 0, 0, 0)
    assert (stats.reconnects, stats.resumes, dict(stats.closes)) == (1, 1, {1006: 1})
    assert stats.failed_attempts >= 1  # A, refused, before B


async def test_log_in_again_after_a_revoked_session_resumes_the_same_stream(stores: Stores, server, login) -> None:
    alice = await make_user(stores)
    client, other_device = await login(server, alice), await login(server, alice)
    await connected(client)
    await announce_event(stores, [alice.id], "n", {"n": 0})
    assert await collect_ids(client, 1) == [1]
    await other_device.logout_all()
    with pytest.raises(SessionRevoked):
        await collect_ids(client, 1, within=10)
    await announce_event(stores, [alice.id], "n", {"n": 1})  # while logged out
    await client.log_in_again(PASSWORD)
    assert (await client.me()).id == alice.id
    assert await collect_ids(client, 1) == [2]  # resumed after 1: nothing missed
    stats = client.realtime.stats
    assert (stats.events, stats.duplicates, stats.reconnects, stats.resumes) == (2, 0, 1, 1)
    assert dict(stats.closes) == {1008: 1}


async def test_on_frame_sees_each_frame_that_events_yields_in_the_same_order_and_no_later(
    stores: Stores, server, login
) -> None:
    alice = await make_user(stores)
    client = await login(server, alice)
    hooked: list[tuple[int | None, float]] = []
    client.realtime.on_frame = lambda f: hooked.append((getattr(f, "id", None), time.perf_counter()))
    await connected(client)
    for n in range(3):
        await announce_event(stores, [alice.id], "n", {"n": n})
    yielded: list[tuple[int | None, float]] = []
    async with asyncio.timeout(10):
        async for event in client.events():
            yielded.append((getattr(event, "id", None), time.perf_counter()))
            if len(yielded) == 3:
                break
    assert [i for i, _ in hooked] == [i for i, _ in yielded] == [1, 2, 3]
    assert all(h <= y for (_, h), (_, y) in zip(hooked, yielded, strict=True))


async def test_on_response_sees_every_rest_answer_with_its_method_path_and_status(stores: Stores, server) -> None:
    alice = await make_user(stores)
    seen: list[tuple[str, str, int]] = []
    client = await Nubo.login(server.url, alice.username, PASSWORD, on_response=lambda *a: seen.append(a))
    try:
        await client.me()
        with pytest.raises(NotFound):
            await client.post(999_999)
    finally:
        await client.aclose()
    assert seen == [("POST", "/login", 200), ("GET", "/me", 200), ("GET", "/posts/999999", 404)]


def test_a_503_without_details_takes_its_retry_after_from_the_header() -> None:
    body = {"error": "PostgreSQL unavailable", "code": "service_unavailable"}
    error = error_for_response(503, body, retry_after="2")
    assert isinstance(error, ServiceUnavailable) and error.retry_after == 2.0
    assert error_for_response(503, body).retry_after is None
    limited = error_for_response(429, {"code": "rate_limited", "error": "slow", "details": {"retry_after": 7}},
                                 retry_after="1")
    assert limited.retry_after == 7  # the body's figure, more precise, wins

