"""Every acknowledged message reaches every device exactly once, in order, whatever fails.

Each test runs the same flow on a private stack (tests/faults/conftest.py): alice sends
direct messages to bob over REST at 20 per second, each retried with its client_id until
acknowledged; bob has a device on each instance and alice one; a fault hits mid-flow. The
counts are printed (`FAULTS {...}`) and gathered in docs/reliability.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Awaitable, Callable

import pytest

from nubo_backend.messaging.service import open_direct
from nubo_backend.settings import load_settings
from nubo_backend.stores import open_stores
from tests.factories import TestUser, make_user
from tests.faults.stack import Stack
from tests.faults.traffic import Device, Sent, assert_exactly_once, send_messages, tally, wait_delivered

pytestmark = pytest.mark.faults

COUNT, RATE, FAULT_AT = 100, 20.0, 1.5

Fault = Callable[[Stack], Awaitable[None]]


async def _alice_and_bob(stack: Stack) -> tuple[TestUser, TestUser, dict]:
    """Two users of the stack and their direct conversation."""
    stores = await open_stores(load_settings(environ=stack.env))
    try:
        alice, bob = await make_user(stores, "alice"), await make_user(stores, "bob")
        conversation, _ = await open_direct(stores, alice.id, bob.id)
    finally:
        await stores.close()
    return alice, bob, conversation


async def _flow(
    stack: Stack, name: str, fault: Fault, *, sender_urls: list[str] | None = None,
    settled: Callable[[list[Device]], bool] | None = None,
) -> dict:
    a, b = stack.servers
    alice, bob, conversation = await _alice_and_bob(stack)
    devices = [
        Device("bob@A", bob, [a.ws_url, b.ws_url]),
        Device("bob@B", bob, [b.ws_url, a.ws_url]),
        Device("alice@B", alice, [b.ws_url, a.ws_url]),
    ]
    running = [asyncio.create_task(d.run()) for d in devices]
    try:
        await asyncio.wait_for(asyncio.gather(*(d.ready.wait() for d in devices)), 10)
        urls = sender_urls or [a.url, b.url]
        sending = asyncio.create_task(send_messages(urls, alice, conversation["id"], COUNT, RATE))
        await asyncio.sleep(FAULT_AT)
        await fault(stack)
        fault_ended = time.monotonic()
        sent: Sent = await sending
        await wait_delivered(devices, set(sent.acked.values()))
        for _ in range(100):  # what else the test waits for (at most 10 s)
            if settled is None or settled(devices):
                break
            await asyncio.sleep(0.1)
    finally:
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
    report = tally(name, sent, devices, fault_ended)
    assert_exactly_once(report)
    return report


async def _redis_down(stack: Stack, seconds: float, *, keep_data: bool) -> None:
    stack.redis.stop()
    if not keep_data:
        for path in stack.redis.aof_dir.iterdir() if stack.redis.aof_dir else ():
            if path.is_dir():
                for inner in path.iterdir():
                    inner.unlink()
            else:
                path.unlink()
    await asyncio.sleep(seconds)
    await asyncio.to_thread(stack.redis.start)


async def test_redis_killed_for_3s_and_restarted_with_its_aof(stack: Stack) -> None:
    await _flow(stack, "Redis killed 3 s, restarted with its AOF",
                lambda s: _redis_down(s, 3, keep_data=True))


async def test_redis_killed_and_restarted_empty(stack: Stack) -> None:
    """Sessions are gone with the data: sockets are closed 1008, clients log in again and resume."""
    report = await _flow(stack, "Redis killed 3 s, restarted empty",
                         lambda s: _redis_down(s, 3, keep_data=False),
                         settled=lambda devices: all(d.reconnects >= 1 for d in devices))
    assert all(d["reconnects"] >= 1 for d in report["devices"].values())


async def test_mongodb_down_for_10s(stack: Stack) -> None:
    async def freeze(s: Stack) -> None:
        s.freeze_mongo()  # SIGSTOP: the stand-in keeps its data, as a real server's disk would
        await asyncio.sleep(10)
        s.thaw_mongo()

    await _flow(stack, "MongoDB stand-in frozen 10 s", freeze)


async def test_postgresql_down_for_10s(stack: Stack) -> None:
    async def down(s: Stack) -> None:
        await asyncio.to_thread(s.pg.stop)
        await asyncio.sleep(10)
        await asyncio.to_thread(s.pg.start)

    report = await _flow(stack, "PostgreSQL stopped 10 s (immediate)", down)
    assert report["statuses"].get(503, 0) > 0  # sends during the outage were told to retry
    assert set(report["statuses"]) <= {200, 201, 503}  # never a 500


async def test_an_instance_killed_mid_flow(stack: Stack) -> None:
    async def kill(s: Stack) -> None:
        s.servers[0]._signal_group(signal.SIGKILL)

    await _flow(stack, "instance A killed (kill -9)", kill)


async def test_sigterm_under_load(stack: Stack) -> None:
    async def terminate(s: Stack) -> None:
        s.servers[0]._signal_group(signal.SIGTERM)

    await _flow(stack, "instance A stopped (SIGTERM)", terminate)


async def test_an_instance_dying_between_commit_and_announcement(stack: Stack) -> None:
    """Redis frozen, so A commits messages its relay cannot announce; A is killed; B's relay
    announces them, and the sender's retries on B are answered `duplicate`."""

    async def crash_after_commits(s: Stack) -> None:
        s.freeze_redis()
        await asyncio.sleep(1.0)  # A acknowledges what it commits; its relay is stuck on Redis
        s.servers[0]._signal_group(signal.SIGKILL)
        s.thaw_redis()

    await _flow(stack, "commit, then instance A killed before announcing (Redis frozen)", crash_after_commits)


async def test_a_revocation_missed_while_resubscribing_still_closes_the_socket(stack: Stack) -> None:
    """The session is deleted without its revocation being heard (as when it is published while
    an instance's subscriber is away); the next resubscription re-checks every open socket."""
    from redis.asyncio import Redis
    from websockets.exceptions import ConnectionClosed

    from tests.e2e.ws_support import open_ws

    a = stack.servers[0]
    stores = await open_stores(load_settings(environ=stack.env))
    redis = Redis.from_url(stack.redis.url)
    try:
        alice = await make_user(stores, "alice")
        ws = await open_ws(a, alice)
        await redis.delete(f"sess:{alice.session_id}")  # gone, and nobody told the instances
        await redis.execute_command("CLIENT", "KILL", "TYPE", "pubsub")  # every subscriber reconnects
        with pytest.raises(ConnectionClosed) as closed:
            async with asyncio.timeout(10):
                while True:
                    await ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    finally:
        with contextlib.suppress(Exception):
            await ws.close()
        await redis.aclose()
        await stores.close()


async def test_postgresql_down_is_503_over_rest_and_an_error_frame_with_its_ref(stack: Stack) -> None:
    import httpx

    from tests.e2e.ws_support import next_frame, open_ws

    a = stack.servers[0]
    alice, _, conversation = await _alice_and_bob(stack)
    ws = await open_ws(a, alice)
    stack.pg.stop()
    try:
        async with httpx.AsyncClient(base_url=a.url, timeout=10) as api:
            answers = [await api.post(f"/conversations/{conversation['id']}/messages", headers=alice.headers,
                                      json={"body": "hi", "client_id": f"r{n}"}) for n in range(20)]
        assert {r.status_code for r in answers} == {503}
        assert answers[0].json()["code"] == "service_unavailable" and answers[0].headers["Retry-After"]
        await ws.send(f'{{"type": "message.send", "conversation_id": {conversation["id"]}, "body": "hi", '
                      '"client_id": "w1"}')
        frame = await next_frame(ws, within=10)
        assert (frame["type"], frame["code"], frame["ref"]) == ("error", "service_unavailable", "w1")
    finally:
        await asyncio.to_thread(stack.pg.start)
        await ws.close()
    log = a.output()
    assert "Traceback" not in log
    assert log.count("PostgreSQL unavailable") == 1  # one line for the outage, not one per request


async def test_a_stalled_database_does_not_make_a_polite_client_look_abusive(stack: Stack) -> None:
    """5 sends a second (a quarter of the limit) while PostgreSQL is frozen for 3 s: the frames
    queue and are answered once it thaws; none is refused as over the rate."""
    from tests.e2e.ws_support import next_frame, open_ws

    a = stack.servers[0]
    alice, _, conversation = await _alice_and_bob(stack)
    ws = await open_ws(a, alice)
    frozen: list[int] = []

    async def send() -> None:
        nonlocal frozen
        for n in range(30):
            if n == 5:
                frozen = stack.pg.freeze()
            if n == 20:
                stack.pg.thaw(frozen)
            await ws.send(f'{{"type": "message.send", "conversation_id": {conversation["id"]}, '
                          f'"body": "m{n}", "client_id": "s{n}"}}')
            await asyncio.sleep(0.2)

    try:
        sending = asyncio.create_task(send())
        acks, refusals = set(), []
        async with asyncio.timeout(30):
            while len(acks) + len(refusals) < 30:
                frame = await next_frame(ws, within=30)
                if isinstance(frame, dict) and frame.get("type") == "ack":
                    acks.add(frame["client_id"])
                elif isinstance(frame, dict) and frame.get("type") == "error":
                    refusals.append(frame)
        await sending
    finally:
        stack.pg.thaw(frozen)  # whatever happened, never leave it frozen
        await ws.close()
    assert refusals == [] and acks == {f"s{n}" for n in range(30)}
