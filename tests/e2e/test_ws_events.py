"""Per-user events reach every device on every instance, in order; resume loses nothing."""

import asyncio

from nubo_backend.client import LikeCreated, MessageCreated
from nubo_backend.stores import Stores
from tests.client.support import connected, next_of
from tests.e2e.ws_support import next_event, next_frame, open_ws, silent
from tests.factories import announce_event, announce_notification, make_user, relay_now


async def test_an_event_reaches_the_users_two_devices_on_two_other_instances(
    stores: Stores, start_server, login
) -> None:
    b, c = start_server(), start_server()
    alice, bob = await make_user(stores), await make_user(stores)
    phone, laptop = await login(b, alice), await login(c, alice)
    bystander = await open_ws(b, bob)
    await connected(phone, laptop)
    await announce_event(stores, [alice.id], "message.created", {"body": "hi"})
    for device in (phone, laptop):
        event = await next_of(device, MessageCreated)
        assert (event.id, event.message.body) == (1, "hi")
    assert await silent(bystander)


async def test_a_notification_is_pushed_live(stores: Stores, server, login) -> None:
    alice, bob = await make_user(stores), await make_user(stores)
    client = await login(server, alice)
    await connected(client)
    await announce_notification(stores, alice.id, "like.created", {"actor_id": bob.id, "post_id": 3})
    like = await next_of(client, LikeCreated)
    assert (like.post_id, like.actor_id) == (3, bob.id) and like.notification_id


async def test_resume_in_the_url_replays_missed_events_in_order_without_duplicates(
    stores: Stores, server
) -> None:
    alice = await make_user(stores)
    ws = await open_ws(server, alice)
    await announce_event(stores, [alice.id], "n", {"n": 1})
    assert (await next_event(ws))["id"] == 1
    await ws.close()
    for n in range(2, 6):
        await announce_event(stores, [alice.id], "n", {"n": n})
    back = await open_ws(server, alice, "last_event_id=1")
    await announce_event(stores, [alice.id], "n", {"n": 6})
    got = [(await next_event(back))["id"] for _ in range(5)]
    assert got == [2, 3, 4, 5, 6]
    assert await silent(back)


async def test_resume_frame_replays_missed_events_and_live_ones_follow(stores: Stores, start_server) -> None:
    a, b = start_server(), start_server()
    alice = await make_user(stores)
    for n in range(1, 4):
        await announce_event(stores, [alice.id], "n", {"n": n})
    ws = await open_ws(a, alice)
    await ws.send('{"type": "resume", "last_event_id": 1}')
    other_device = await open_ws(b, alice)
    await announce_event(stores, [alice.id], "n", {"n": 4})
    assert [(await next_event(ws))["id"] for _ in range(3)] == [2, 3, 4]
    assert (await next_event(other_device))["id"] == 4
    assert await silent(ws)


async def test_resume_while_events_keep_coming_has_no_gap_and_no_duplicate(stores: Stores, server) -> None:
    alice = await make_user(stores)
    await announce_event(stores, [alice.id], "n", {"n": 1})

    async def producer() -> None:
        for n in range(2, 42):
            await announce_event(stores, [alice.id], "n", {"n": n})

    task = asyncio.create_task(producer())
    ws = await open_ws(server, alice, "last_event_id=0")
    await task
    got = [(await next_event(ws))["id"] for _ in range(41)]
    assert got == list(range(1, 42))
    assert await silent(ws)


async def test_resume_from_an_id_the_journal_no_longer_holds_asks_for_resync(stores: Stores, server) -> None:
    alice = await make_user(stores)
    for n in range(3):
        await announce_event(stores, [alice.id], "n", {"n": n})
    await relay_now(stores)
    await stores.mongo["events"].delete_many({"user_id": alice.id, "id": {"$lte": 2}})
    ws = await open_ws(server, alice, "last_event_id=1")
    resync = await next_frame(ws)
    assert resync["type"] == "resync_required" and resync["last_event_id"] == 3
    await announce_event(stores, [alice.id], "n", {"n": 4})
    assert (await next_event(ws))["id"] == 4


async def test_out_of_order_ids_are_delivered_in_order(stores: Stores, server) -> None:
    """Frames published out of order (two relays, or a batch redone) still arrive in order."""
    from nubo_backend.jsonutil import dumps
    from nubo_backend.realtime.events import frame, user_channel

    alice = await make_user(stores)
    ws = await open_ws(server, alice)
    ids = [1, 2, 3]
    for eid in reversed(ids):  # published 3, 2, 1
        await stores.redis.publish(user_channel(stores, alice.id), dumps(frame(eid, "n", {})))
    assert [(await next_event(ws))["id"] for _ in range(3)] == ids


async def test_an_event_whose_publish_was_lost_is_taken_from_the_journal(stores: Stores, server) -> None:
    """Redis dropped event 1 on its way to this socket (a subscriber reconnecting, say): when
    event 2 arrives, the socket fetches 1 from the journal and delivers both, in order."""
    from datetime import UTC, datetime

    alice = await make_user(stores)
    ws = await open_ws(server, alice)
    async with stores.pg.acquire() as conn:  # event 1 as a relay left it: journaled, never heard
        await conn.execute("INSERT INTO event_sequences VALUES ($1, 1)", alice.id)
    await stores.mongo["events"].insert_one(
        {"user_id": alice.id, "id": 1, "type": "n", "data": {"n": 1}, "created_at": datetime.now(UTC)})
    await announce_event(stores, [alice.id], "n", {"n": 2})
    assert [(await next_event(ws, within=3))["data"]["n"] for _ in range(2)] == [1, 2]
    assert await silent(ws)


async def test_an_instance_holds_a_users_channel_only_while_it_holds_a_connection_of_theirs(
    stores: Stores, start_server
) -> None:
    from nubo_backend.realtime.events import user_channel

    a, b = start_server(), start_server()
    alice = await make_user(stores)
    channel = user_channel(stores, alice.id)

    async def subscribers(expected: int) -> int:
        """The channel's subscriber count once it is `expected` (or after 3 s)."""
        for _ in range(30):
            count = dict(await stores.redis.pubsub_numsub(channel))[channel.encode()]
            if count == expected:
                break
            await asyncio.sleep(0.1)
        return count

    assert await subscribers(0) == 0
    first, second = await open_ws(a, alice), await open_ws(a, alice)
    assert await subscribers(1) == 1  # one subscription per instance, not per connection
    other = await open_ws(b, alice)
    assert await subscribers(2) == 2
    await first.close()
    await other.close()
    assert await subscribers(1) == 1
    await asyncio.sleep(0.3)
    assert await subscribers(1) == 1  # A still holds `second`
    await second.close()
    assert await subscribers(0) == 0


async def test_a_long_replay_follows_the_clients_pace_instead_of_dropping_it(stores: Stores, start_server) -> None:
    server = start_server({"NUBO_WS_SEND_QUEUE": "8"})
    alice = await make_user(stores)
    big = "x" * 20_000
    for n in range(1, 301):  # 6 MB to replay, far more than socket buffers and an 8-frame queue
        await announce_event(stores, [alice.id], "n", {"n": n, "pad": big})
    ws = await open_ws(server, alice, "last_event_id=0", max_queue=1)
    await asyncio.sleep(1)  # the client reads nothing for a while
    assert [(await next_event(ws))["id"] for _ in range(300)] == list(range(1, 301))
