"""The client's event stream against real servers: typed events, acks, and exact counts
(nothing missing, nothing twice) across a server restart, a Redis restart and token expiry."""

import asyncio
import signal
from pathlib import Path

import pytest

from nubo_backend.client import (
    Ack,
    MessageCreated,
    Presence,
    ResyncRequired,
    SendTyping,
    SessionRevoked,
    Typing,
    Unauthorized,
)
from nubo_backend.messaging import service as messaging
from nubo_backend.settings import Settings
from nubo_backend.stores import Stores, open_stores
from tests.client.support import collect_ids, connected
from tests.factories import announce_event, make_user, relay_now
from tests.support import PrivateRedis


async def test_a_message_sent_live_is_acked_and_arrives_typed_on_another_instance(
    stores: Stores, start_server, login
) -> None:
    a, b = start_server(), start_server()
    alice, bob = await make_user(stores), await make_user(stores)
    conversation, _ = await messaging.open_direct(stores, alice.id, bob.id)
    sender, receiver = await login(a, alice), await login(b, bob)
    async with asyncio.timeout(10):
        await receiver.realtime.wait_connected()
        ack = await sender.send_message_live(conversation["id"], "Salut", client_id="k-1")
    assert isinstance(ack, Ack) and ack.client_id == "k-1" and not ack.duplicate
    async with asyncio.timeout(10):
        async for event in receiver.events():
            if isinstance(event, MessageCreated):
                break
    assert (event.message.id, event.message.body, event.message.sender_id) == (ack.message_id, "Salut", alice.id)
    async with asyncio.timeout(10):
        await sender.send(SendTyping(conversation["id"]))
        async for event in receiver.events():
            if isinstance(event, Typing):
                break
    assert (event.conversation_id, event.user_id, event.id) == (conversation["id"], alice.id, None)
    async with asyncio.timeout(10):  # a retry of the same client_id is acknowledged, stored once
        again = await sender.send_message_live(conversation["id"], "Salut", client_id="k-1")
    assert again.message_id == ack.message_id and again.duplicate


async def test_events_resume_on_the_other_instance_when_one_is_killed_with_no_gap_or_duplicate(
    stores: Stores, start_server, login
) -> None:
    a, b = start_server(), start_server()
    alice = await make_user(stores)
    client = await login([a, b], alice)
    async with asyncio.timeout(10):
        await client.realtime.wait_connected()
    for n in range(5):
        await announce_event(stores, [alice.id], "n", {"n": n})
    assert await collect_ids(client, 5) == [1, 2, 3, 4, 5]
    a.stop(signal.SIGKILL)  # this test's own process, by its pid: no close frame at all
    for n in range(5, 12):  # committed while the client has no socket
        await announce_event(stores, [alice.id], "n", {"n": n})
    assert await collect_ids(client, 7) == [6, 7, 8, 9, 10, 11, 12]
    assert client.url == b.url and client.realtime.connections == 2
    await announce_event(stores, [alice.id], "n", {"n": 12})
    assert await collect_ids(client, 1) == [13]


async def test_events_resume_on_a_restarted_instance_on_the_same_port(stores: Stores, start_server, login) -> None:
    a = start_server()
    alice, bob = await make_user(stores), await make_user(stores)
    conversation, _ = await messaging.open_direct(stores, alice.id, bob.id)  # alice's event 1
    client = await login(a, alice)
    async with asyncio.timeout(10):
        await client.realtime.wait_connected()
    a.stop()  # drains: the socket gets 1001
    for n in range(6):
        await messaging.send_message(stores, bob.id, conversation["id"], f"m{n}", f"c{n}")
    start_server(port=a.port)
    created: list[str] = []
    async with asyncio.timeout(30):
        async for event in client.events(since=1):
            if isinstance(event, MessageCreated):
                created.append(event.message.body)
                if len(created) == 6:
                    break
    assert created == [f"m{n}" for n in range(6)]
    assert client.realtime.last_event_id == 7


async def test_events_committed_while_redis_restarts_arrive_once(
    own_database: Settings, start_server, login, tmp_path: Path
) -> None:
    redis = PrivateRedis(aof_dir=tmp_path).start()  # our own: the shared Redis is never touched
    own = await open_stores(own_database.replace(redis_url=redis.url))
    try:
        env = {"NUBO_REDIS_URL": redis.url, "NUBO_POSTGRES_DSN": own_database.postgres_dsn,
               "NUBO_MONGO_DB": own_database.mongo_db}
        a = start_server(env)
        alice = await make_user(own)
        client = await login(a, alice)
        async with asyncio.timeout(10):
            await client.realtime.wait_connected()
        await announce_event(own, [alice.id], "n", {"n": 0})
        assert await collect_ids(client, 1) == [1]
        redis.stop()
        for n in range(1, 9):
            await announce_event(own, [alice.id], "n", {"n": n})
        redis.start()  # same port, same append-only file
        assert await collect_ids(client, 8, within=40) == list(range(2, 10))
        await announce_event(own, [alice.id], "n", {"n": 9})
        assert await collect_ids(client, 1) == [10]
    finally:
        await own.close()
        redis.stop()


async def test_short_lived_tokens_are_refreshed_on_the_socket_and_over_rest(
    stores: Stores, start_server, login
) -> None:
    a = start_server({"NUBO_ACCESS_TOKEN_TTL": "8"})
    alice, bob = await make_user(stores), await make_user(stores)
    direct, _ = await messaging.open_direct(stores, alice.id, bob.id)  # alice's event 1
    # bob has written in it (a row, no event of alice's), so his presence reaches her
    await stores.pg.execute("INSERT INTO messages (conversation_id, sender_id, body) VALUES ($1, $2, 'hi')",
                            direct["id"], bob.id)
    client = await login(a, alice)
    tokens = {client.tokens.access_token}
    async with asyncio.timeout(10):
        await client.realtime.wait_connected()  # from event 1 on (the conversation, before it)
    ids: list[int] = []
    for n in range(14):  # over 14 s, paced: nearly two token lifetimes
        await announce_event(stores, [alice.id], "n", {"n": n})
        ids += await collect_ids(client, 1)
        assert (await client.me()).id == alice.id
        tokens.add(client.tokens.access_token)
        await asyncio.sleep(1)
    assert ids == list(range(2, 16))
    assert len(tokens) >= 3  # refreshed at least twice
    assert client.realtime.connections == 1  # refreshed in-band: never closed with 4001
    watcher = await login(a, bob)
    async with asyncio.timeout(10):
        await watcher.realtime.wait_connected()
        async for event in client.events():
            if isinstance(event, Presence):
                break
    assert event.user_id == bob.id and event.online


async def test_a_resume_from_events_that_are_gone_raises_resync_required_then_live_events_follow(
    stores: Stores, server, login
) -> None:
    alice = await make_user(stores)
    for n in range(3):
        await announce_event(stores, [alice.id], "n", {"n": n})
    await relay_now(stores)
    await stores.mongo["events"].delete_many({"user_id": alice.id, "id": {"$lte": 2}})  # past the journal's 30 days
    client = await login(server, alice)
    with pytest.raises(ResyncRequired) as resync:
        async with asyncio.timeout(10):
            async for _ in client.events(since=1):
                pass
    assert resync.value.last_event_id == 3 and "conversations" in resync.value.reload
    await announce_event(stores, [alice.id], "n", {"n": 3})
    assert await collect_ids(client, 1) == [4]  # the same stream goes on after reloading
    assert client.realtime.connections == 1


async def test_a_session_revoked_elsewhere_ends_the_stream_with_session_revoked(
    stores: Stores, server, login
) -> None:
    alice = await make_user(stores)
    client, other_device = await login(server, alice), await login(server, alice)
    await connected(client)
    await other_device.logout_all()
    with pytest.raises(SessionRevoked):
        await collect_ids(client, 1, within=10)
    with pytest.raises(Unauthorized):
        await client.me()
