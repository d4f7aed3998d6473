"""Every acknowledged message reaches every device exactly once, in order, whatever fails.

Each test runs the same flow on a private stack (tests/faults/conftest.py): alice sends
direct messages to bob over REST at 20 per second, each retried with its client_id until
acknowledged; bob has a device on each instance and alice one; a fault hits mid-flow. Every
client is the project's own (`nubo_backend.client`, see traffic.py). The counts are printed
(`FAULTS {...}`) and gathered in docs/reliability.md.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Awaitable, Callable

import pytest

from nubo_backend.client import ErrorFrame, Nubo, NuboError, ServiceUnavailable, SessionRevoked
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
    settled: Callable[[list[Device]], bool] | None = None, send_timeout: float = 5,
) -> dict:
    a, b = stack.servers
    alice, bob, conversation = await _alice_and_bob(stack)
    devices = [
        Device("bob@A", bob, [a.url, b.url]),
        Device("bob@B", bob, [b.url, a.url]),
        Device("alice@B", alice, [b.url, a.url]),
    ]
    running = [asyncio.create_task(d.run()) for d in devices]
    try:
        await asyncio.wait_for(asyncio.gather(*(d.ready.wait() for d in devices)), 10)
        urls = sender_urls or [a.url, b.url]
        sending = asyncio.create_task(send_messages(urls, alice, conversation["id"], COUNT, RATE,
                                                    answer_within=send_timeout))
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
    assert stack.redis is not None
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


async def test_the_redis_cluster_master_of_a_users_channel_killed_and_its_replica_taking_over(
    cluster_stack: Stack,
) -> None:
    """On a Redis Cluster with a replica per master: kill -9 the master that holds bob's shard
    channel (subscribed by both instances). Until its replica takes over, that shard answers
    nothing: publications to it fail (the relay keeps the rows) and both instances' shard
    subscriptions break; once promoted, the instances subscribe again and their sockets catch
    up from the journal."""
    took: list[float] = []

    async def kill_master(s: Stack) -> None:
        assert s.cluster is not None
        # bob's channel is the one with a subscriber on each instance (alice's has one, on B)
        [channel] = [name for name, count in s.cluster.shard_channels().items()
                     if name.startswith("user:") and count == 2]
        dead = s.cluster.master_of(channel)
        began = time.monotonic()
        s.cluster.kill(dead)
        new = await asyncio.to_thread(s.cluster.wait_promoted, dead, channel)
        took.append(time.monotonic() - began)
        assert new != dead

    report = await _flow(cluster_stack, "Redis Cluster: a master killed, its replica promoted", kill_master)
    print(f"FAILOVER replica serving after {took[0]:.1f} s; statuses {report['statuses']}")
    assert set(report["statuses"]) <= {200, 201, 503}  # never a 500


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

    a = stack.servers[0]
    stores = await open_stores(load_settings(environ=stack.env))
    assert stack.redis is not None
    redis = Redis.from_url(stack.redis.url)
    try:
        alice = await make_user(stores, "alice")
        async with Nubo.with_token(a.url, alice.token) as client:  # on the session deleted below
            async with asyncio.timeout(10):
                await client.realtime.wait_connected()
            await redis.delete(f"sess:{alice.session_id}")  # gone, and nobody told the instances
            await redis.execute_command("CLIENT", "KILL", "TYPE", "pubsub")  # every subscriber reconnects
            with pytest.raises(SessionRevoked):
                async with asyncio.timeout(10):
                    async for _ in client.events():
                        pass
            assert dict(client.realtime.stats.closes) == {1008: 1}
    finally:
        await redis.aclose()
        await stores.close()


async def test_postgresql_down_is_503_over_rest_and_an_error_frame_with_its_ref(stack: Stack) -> None:
    a = stack.servers[0]
    alice, _, conversation = await _alice_and_bob(stack)
    client = Nubo.with_token(a.url, alice.token, timeout=10)
    async with asyncio.timeout(10):
        await client.realtime.wait_connected()
    stack.pg.stop()
    try:
        refusals: list[NuboError] = []
        for n in range(20):
            with pytest.raises(NuboError) as refused:
                await client.post_message(conversation["id"], "hi", client_id=f"r{n}")
            refusals.append(refused.value)
        assert {e.status for e in refusals} == {503}
        assert refusals[0].code == "service_unavailable" and refusals[0].retry_after  # from Retry-After
        assert all(isinstance(e, ServiceUnavailable) for e in refusals)
        with pytest.raises(ServiceUnavailable) as live:
            async with asyncio.timeout(10):
                await client.send_message_live(conversation["id"], "hi", client_id="w1")
        assert (live.value.code, live.value.ref) == ("service_unavailable", "w1")
        async with asyncio.timeout(10):  # the same error frame, as the stream yields it
            async for frame in client.events():
                if isinstance(frame, ErrorFrame):
                    break
        assert (frame.code, frame.ref) == ("service_unavailable", "w1")
    finally:
        await asyncio.to_thread(stack.pg.start)
        await client.aclose()
    log = a.output()
    assert "Traceback" not in log
    assert log.count("PostgreSQL unavailable") == 1  # one line for the outage, not one per request


async def test_a_stalled_database_does_not_make_a_polite_client_look_abusive(stack: Stack) -> None:
    """5 sends a second (a quarter of the limit) while PostgreSQL is frozen for 3 s: the frames
    queue and are answered once it thaws; none is refused as over the rate."""
    a = stack.servers[0]
    alice, _, conversation = await _alice_and_bob(stack)
    client = Nubo.with_token(a.url, alice.token)
    async with asyncio.timeout(10):
        await client.realtime.wait_connected()
    frozen: list[int] = []
    acks: set[str] = set()
    refusals: list[NuboError] = []

    async def send_one(n: int) -> None:
        try:
            acks.add((await client.send_message_live(conversation["id"], f"m{n}", client_id=f"s{n}")).client_id)
        except NuboError as exc:
            refusals.append(exc)

    try:
        sending = []
        for n in range(30):
            if n == 5:
                frozen = stack.pg.freeze()
            if n == 20:
                stack.pg.thaw(frozen)
            sending.append(asyncio.create_task(send_one(n)))
            await asyncio.sleep(0.2)
        async with asyncio.timeout(30):
            await asyncio.gather(*sending)
    finally:
        stack.pg.thaw(frozen)  # whatever happened, never leave it frozen
        await client.aclose()
    assert refusals == [] and acks == {f"s{n}" for n in range(30)}
    # Each frame was sent once: none was acknowledged only because a reconnect sent it again.
    assert client.realtime.connections == 1
