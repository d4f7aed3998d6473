"""Real-time across instances on a real Redis Cluster: the broadcast on one plain channel, a
user's events and revocations on shard channels (SPUBLISH/SSUBSCRIBE)."""

from __future__ import annotations

import pytest
from websockets.exceptions import ConnectionClosed

from nubo_backend.jsonutil import dumps_str
from nubo_backend.messaging import service as messaging
from nubo_backend.stores import Stores
from tests.cluster.cluster_support import PrivateRedisCluster
from tests.e2e.ws_support import frames_until, next_event, next_frame, open_ws, silent
from tests.factories import announce_event, make_user


async def test_plain_text_broadcast_reaches_every_client_on_both_instances(
    cluster_stores: Stores, start_cluster_server, redis_cluster: PrivateRedisCluster
) -> None:
    a, b = start_cluster_server(), start_cluster_server()
    alice, bob = await make_user(cluster_stores), await make_user(cluster_stores)
    sender, other_device, remote = await open_ws(a, alice), await open_ws(a, alice), await open_ws(b, bob)
    await sender.send("Salut à tous !")
    for ws in (sender, other_device, remote):
        assert await next_frame(ws) == "Salut à tous !"
    # One plain channel, under the seed's name, heard by both instances.
    channel = cluster_stores.keys.broadcast_channel
    assert channel.endswith("nubo-websocket")
    subscribers = sum(int(redis_cluster.cli(port, "pubsub", "numsub", channel).split()[1])
                      for port in redis_cluster.ports)
    assert subscribers == 2


async def test_a_direct_message_reaches_the_recipients_two_devices_on_two_instances(
    cluster_stores: Stores, start_cluster_server, redis_cluster: PrivateRedisCluster
) -> None:
    a, b = start_cluster_server(), start_cluster_server()
    alice, bob = await make_user(cluster_stores), await make_user(cluster_stores)
    conversation, _ = await messaging.open_direct(cluster_stores, alice.id, bob.id)
    sender = await open_ws(a, alice)
    phone, laptop = await open_ws(a, bob), await open_ws(b, bob)
    command = {"type": "message.send", "conversation_id": conversation["id"], "body": "Salut", "client_id": "c-1"}
    await sender.send(dumps_str(command))
    ack = (await frames_until(sender, lambda f: isinstance(f, dict) and f.get("type") == "ack"))[-1]
    for ws in (phone, laptop):
        event = await next_event(ws)
        assert event["type"] == "message.created"
        assert (event["data"]["id"], event["data"]["body"]) == (ack["message_id"], "Salut")
    # Bob's channel is a shard channel, held on the one master that owns its slot.
    channel = f"{cluster_stores.keys('user', bob.id)}"
    holders = [port for port in redis_cluster.ports
               if channel in redis_cluster.cli(port, "pubsub", "shardchannels").split()]
    assert len(holders) == 1


async def test_resume_on_another_instance_replays_what_was_missed_then_live_events_follow(
    cluster_stores: Stores, start_cluster_server
) -> None:
    a, b = start_cluster_server(), start_cluster_server()
    alice = await make_user(cluster_stores)
    ws = await open_ws(a, alice)
    await announce_event(cluster_stores, [alice.id], "n", {"n": 1})
    assert (await next_event(ws))["id"] == 1
    await ws.close()
    for n in range(2, 5):
        await announce_event(cluster_stores, [alice.id], "n", {"n": n})
    back = await open_ws(b, alice, "last_event_id=1")
    await announce_event(cluster_stores, [alice.id], "n", {"n": 5})
    assert [(await next_event(back))["id"] for _ in range(4)] == [2, 3, 4, 5]
    assert await silent(back)


async def test_logout_on_one_instance_closes_the_sessions_socket_on_the_other(
    cluster_stores: Stores, start_cluster_server
) -> None:
    import httpx

    a, b = start_cluster_server(), start_cluster_server()
    alice = await make_user(cluster_stores)
    phone = await make_user(cluster_stores)
    on_b, bystander = await open_ws(b, alice), await open_ws(b, phone)
    async with httpx.AsyncClient(base_url=a.url, timeout=10) as api:
        assert (await api.post("/logout", headers=alice.headers)).status_code == 204
    with pytest.raises(ConnectionClosed) as closed:
        await next_frame(on_b, within=5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    await bystander.send('{"type": "ping"}')
    assert await next_frame(bystander) == {"type": "pong"}
