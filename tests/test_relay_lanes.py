"""Delivery for any audience: lanes keep each user's order, batches stay bounded, a row that
cannot go out is set aside instead of holding everyone behind it (issue #24)."""

from __future__ import annotations

import asyncio
import random

import pytest

from nubo_backend.outbox import AudienceEvent, Event, announce
from nubo_backend.outbox.lanes import audience_lane, lane_of
from nubo_backend.outbox.relay import Relay
from nubo_backend.posts.service import feed_key
from nubo_backend.stores import Stores, open_stores
from tests.factories import announce_event, make_user, relay_now


@pytest.fixture
async def alone(own_stores: Stores) -> Stores:
    """No server's relay takes this test's lanes: it drives every batch itself."""
    return own_stores


async def _bulk_users(stores: Stores, count: int) -> list[int]:
    rows = await stores.pg.fetch(
        "INSERT INTO users (username, email, password_hash) "
        "SELECT 'bulk' || n || '_' || $2, 'bulk' || n || '_' || $2 || '@example.test', 'x' "
        "FROM generate_series(1, $1) AS n RETURNING id", count, str(random.randrange(10**9)))
    return [r["id"] for r in rows]


async def _follow_all(stores: Stores, followers: list[int], author_id: int) -> None:
    await stores.pg.execute(
        "INSERT INTO follows (follower_id, followed_id) SELECT unnest($1::bigint[]), $2", followers, author_id)


async def test_a_groups_event_is_split_by_lane_into_bounded_rows(alone: Stores) -> None:
    members = await _bulk_users(alone, 1200)
    await announce_event(alone, members, "message.created", {"body": "hi"})
    rows = await alone.pg.fetch("SELECT lane, recipients FROM outbox")
    lanes = alone.settings.relay_lanes
    assert sorted(uid for row in rows for uid in row["recipients"]) == sorted(members)
    assert all(lane_of(uid, lanes) == row["lane"] for row in rows for uid in row["recipients"])
    assert max(len(row["recipients"]) for row in rows) <= 500


async def test_a_post_to_followers_is_one_row_whatever_the_audience(alone: Stores) -> None:
    author = await make_user(alone)
    await _follow_all(alone, await _bulk_users(alone, 3000), author.id)
    async with alone.pg.acquire() as conn, conn.transaction():
        await announce(conn, alone, AudienceEvent(author.id, "post.created", {"post": {"id": 1}}))
    rows = await alone.pg.fetch("SELECT lane, recipients, audience_of FROM outbox")
    assert [(r["lane"], r["recipients"], r["audience_of"]) for r in rows] == [
        (audience_lane(author.id, alone.settings.relay_lanes), [], author.id)]
    assert await alone.pg.fetchval("SELECT count(*) FROM event_sequences") == 0


async def test_a_large_audience_is_served_in_pieces_and_drops_every_followers_feed(alone: Stores) -> None:
    author = await make_user(alone)
    followers = await _bulk_users(alone, 12_000)
    await _follow_all(alone, followers, author.id)
    watched = followers[::1000]
    for uid in watched:
        await alone.redis.set(feed_key(alone, uid), b"[1,2,3]")
    async with alone.pg.acquire() as conn, conn.transaction():
        await announce(conn, alone, AudienceEvent(author.id, "post.created", {"post": {"id": 1}}))
    relay = Relay(alone)
    lane = audience_lane(author.id, alone.settings.relay_lanes)
    cursors = []
    for _ in range(3):
        assert await relay.relay_batch(lane, budget=5000) == 1
        cursors.append(await alone.pg.fetchval("SELECT audience_after FROM outbox WHERE lane = $1", lane))
    assert cursors[0] < cursors[1] and cursors[2] is None  # 5,000 + 5,000 + 2,000: done, row gone
    assert await alone.redis.exists(*(feed_key(alone, uid) for uid in watched)) == 0


async def test_a_row_that_always_fails_is_set_aside_and_events_behind_it_flow(alone: Stores) -> None:
    alice = await make_user(alone)
    lane = lane_of(alice.id, alone.settings.relay_lanes)
    poison = await alone.pg.fetchval(
        "INSERT INTO outbox (type, data, recipients, event_ids, lane) VALUES ('x', '{not json', $1, '{999}', $2) "
        "RETURNING id", [alice.id], lane)
    ids = await announce_event(alone, [alice.id], "message.created", {"body": "after the poison"})
    relay = Relay(alone)
    state = relay.lanes[lane]
    for _ in range(20):  # bounded: smaller batches first, then a few attempts of the row alone
        if (await relay.step(state) or 0) > 0:
            break
    set_aside = await alone.pg.fetch("SELECT id, reason FROM outbox_set_aside")
    assert [r["id"] for r in set_aside] == [poison]
    assert "JSON" in set_aside[0]["reason"] or "Decode" in set_aside[0]["reason"]
    journaled = await alone.mongo["events"].find({"user_id": alice.id}).to_list()
    assert [d["id"] for d in journaled] == [ids[alice.id]]
    assert await alone.pg.fetchval("SELECT count(*) FROM outbox") == 0


async def test_a_set_aside_row_is_sent_again_on_retry(alone: Stores) -> None:
    from nubo_backend.outbox.set_aside import list_set_aside, retry_set_aside

    alice = await make_user(alone)
    await announce_event(alone, [alice.id], "message.created", {"body": "kept"})
    row_id = await alone.pg.fetchval("SELECT id FROM outbox")
    async with alone.pg.acquire() as conn:
        await alone.sql.outbox.set_aside(conn, id=row_id, reason="tried by hand")
    assert [r["id"] for r in await list_set_aside(alone.settings)] == [row_id]
    assert len(await retry_set_aside(alone.settings, None)) == 1
    await relay_now(alone)
    docs = await alone.mongo["events"].find({"user_id": alice.id}).to_list()
    assert [d["data"]["body"] for d in docs] == ["kept"]


async def test_lanes_keep_each_users_order_and_ids_across_two_relays(alone: Stores) -> None:
    """Two instances' relays drain four lanes at once while events are committed: every user's
    events are published in id order, with no gap and no repeat."""
    users = [(await make_user(alone)).id for _ in range(12)]
    heard: dict[int, list[int]] = {uid: [] for uid in users}
    pubsub = alone.redis.pubsub()
    channels = {alone.keys("user", uid).encode(): uid for uid in users}
    await pubsub.subscribe(*channels)
    other = await open_stores(alone.settings, pool_size=8)
    relays = [Relay(alone), Relay(other)]
    for relay in relays:
        relay.start()

    async def listen() -> None:
        import orjson
        while True:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            if message is not None:
                heard[channels[message["channel"]]].append(orjson.loads(message["data"])["id"])

    listener = asyncio.create_task(listen())
    try:
        sent = 0
        for round_ in range(40):
            group = random.sample(users, 5)
            async with alone.pg.acquire() as conn, conn.transaction():
                await announce(conn, alone, *(Event([uid], "message.created", {"n": round_}) for uid in group[:2]),
                               Event(group, "message.created", {"n": round_}))
            sent += 1
        async with asyncio.timeout(30):
            while True:  # every row relayed
                if not await alone.pg.fetchval("SELECT count(*) FROM outbox"):
                    break
                await asyncio.sleep(0.05)
            expected = {uid: await alone.pg.fetchval("SELECT last_id FROM event_sequences WHERE user_id = $1", uid)
                        or 0 for uid in users}
            while True:  # every id published
                if all(len(heard[uid]) >= expected[uid] for uid in users):
                    break
                await asyncio.sleep(0.05)
        for uid in users:
            assert heard[uid] == list(range(1, expected[uid] + 1)), uid
    finally:
        listener.cancel()
        for relay in relays:
            await relay.stop()
        await other.close()
        await pubsub.aclose()


async def test_stop_ends_every_lane_even_when_each_was_woken_as_it_was_stopped(alone: Stores) -> None:
    # Python 3.11's asyncio.wait_for swallows a cancellation that comes once the awaited
    # wake-up has happened but before its task resumed: the lane then ran on, and stop() (and
    # with it the server's shutdown) waited for it until the watchdog ended the process.
    relay = Relay(alone)
    relay.start()
    await asyncio.sleep(0.3)  # every lane idle, waiting to be woken
    relay.wake_all()
    await asyncio.sleep(0)  # each wake-up done, not yet seen by its lane's loop
    async with asyncio.timeout(5):
        await relay.stop()
    assert all(task.done() for task in relay.tasks)
