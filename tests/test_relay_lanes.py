"""Delivery for any audience: lanes keep each user's order, batches stay bounded, a row that
cannot go out is set aside instead of holding everyone behind it (issue #24)."""

from __future__ import annotations

import asyncio
import random

from nubo_backend.outbox import AudienceEvent, Event, announce
from nubo_backend.outbox.lanes import audience_lane, lane_of
from nubo_backend.outbox.relay import Relay
from nubo_backend.posts.service import feed_key
from nubo_backend.stores import Stores, open_stores
from tests.factories import announce_event, make_user, relay_now


async def _bulk_users(stores: Stores, count: int) -> list[int]:
    rows = await stores.pg.fetch(
        "INSERT INTO users (username, email, password_hash) "
        "SELECT 'bulk' || n || '_' || $2, 'bulk' || n || '_' || $2 || '@example.test', 'x' "
        "FROM generate_series(1, $1) AS n RETURNING id", count, str(random.randrange(10**9)))
    return [r["id"] for r in rows]


async def _follow_all(stores: Stores, followers: list[int], author_id: int) -> None:
    await stores.pg.execute(
        "INSERT INTO follows (follower_id, followed_id) SELECT unnest($1::bigint[]), $2", followers, author_id)


async def test_a_groups_event_is_split_by_lane_into_bounded_rows(stores: Stores) -> None:
    members = await _bulk_users(stores, 1200)
    await announce_event(stores, members, "message.created", {"body": "hi"})
    rows = await stores.pg.fetch("SELECT lane, recipients FROM outbox")
    lanes = stores.settings.relay_lanes
    assert sorted(uid for row in rows for uid in row["recipients"]) == sorted(members)
    assert all(lane_of(uid, lanes) == row["lane"] for row in rows for uid in row["recipients"])
    assert max(len(row["recipients"]) for row in rows) <= 500


async def test_a_post_to_followers_is_one_row_whatever_the_audience(stores: Stores) -> None:
    author = await make_user(stores)
    await _follow_all(stores, await _bulk_users(stores, 3000), author.id)
    async with stores.pg.acquire() as conn, conn.transaction():
        await announce(conn, stores, AudienceEvent(author.id, "post.created", {"post": {"id": 1}}))
    rows = await stores.pg.fetch("SELECT lane, recipients, audience_of FROM outbox")
    assert [(r["lane"], r["recipients"], r["audience_of"]) for r in rows] == [
        (audience_lane(author.id, stores.settings.relay_lanes), [], author.id)]
    assert await stores.pg.fetchval("SELECT count(*) FROM event_sequences") == 0


async def test_a_large_audience_is_served_in_pieces_and_drops_every_followers_feed(stores: Stores) -> None:
    author = await make_user(stores)
    followers = await _bulk_users(stores, 12_000)
    await _follow_all(stores, followers, author.id)
    watched = followers[::1000]
    for uid in watched:
        await stores.redis.set(feed_key(stores, uid), b"[1,2,3]")
    async with stores.pg.acquire() as conn, conn.transaction():
        await announce(conn, stores, AudienceEvent(author.id, "post.created", {"post": {"id": 1}}))
    relay = Relay(stores)
    lane = audience_lane(author.id, stores.settings.relay_lanes)
    cursors = []
    for _ in range(3):
        assert await relay.relay_batch(lane, budget=5000) == 1
        cursors.append(await stores.pg.fetchval("SELECT audience_after FROM outbox WHERE lane = $1", lane))
    assert cursors[0] < cursors[1] and cursors[2] is None  # 5,000 + 5,000 + 2,000: done, row gone
    assert await stores.redis.exists(*(feed_key(stores, uid) for uid in watched)) == 0


async def test_a_row_that_always_fails_is_set_aside_and_events_behind_it_flow(stores: Stores) -> None:
    alice = await make_user(stores)
    lane = lane_of(alice.id, stores.settings.relay_lanes)
    poison = await stores.pg.fetchval(
        "INSERT INTO outbox (type, data, recipients, event_ids, lane) VALUES ('x', '{not json', $1, '{999}', $2) "
        "RETURNING id", [alice.id], lane)
    ids = await announce_event(stores, [alice.id], "message.created", {"body": "after the poison"})
    relay = Relay(stores)
    state = relay.lanes[lane]
    for _ in range(20):  # bounded: smaller batches first, then a few attempts of the row alone
        if await relay.step(state):
            break
    set_aside = await stores.pg.fetch("SELECT id, reason FROM outbox_set_aside")
    assert [r["id"] for r in set_aside] == [poison]
    assert "JSON" in set_aside[0]["reason"] or "Decode" in set_aside[0]["reason"]
    journaled = await stores.mongo["events"].find({"user_id": alice.id}).to_list()
    assert [d["id"] for d in journaled] == [ids[alice.id]]
    assert await stores.pg.fetchval("SELECT count(*) FROM outbox") == 0


async def test_a_set_aside_row_is_sent_again_on_retry(stores: Stores, settings) -> None:
    from nubo_backend.outbox.set_aside import list_set_aside, retry_set_aside

    alice = await make_user(stores)
    await announce_event(stores, [alice.id], "message.created", {"body": "kept"})
    row_id = await stores.pg.fetchval("SELECT id FROM outbox")
    await stores.pg.execute("SELECT 1")  # (same database the settings point at)
    async with stores.pg.acquire() as conn:
        await stores.sql.outbox.set_aside(conn, id=row_id, reason="tried by hand")
    assert [r["id"] for r in await list_set_aside(stores.settings)] == [row_id]
    assert len(await retry_set_aside(stores.settings, None)) == 1
    await relay_now(stores)
    docs = await stores.mongo["events"].find({"user_id": alice.id}).to_list()
    assert [d["data"]["body"] for d in docs] == ["kept"]


async def test_lanes_keep_each_users_order_and_ids_across_two_relays(stores: Stores) -> None:
    """Two instances' relays drain four lanes at once while events are committed: every user's
    events are published in id order, with no gap and no repeat."""
    users = [(await make_user(stores)).id for _ in range(12)]
    heard: dict[int, list[int]] = {uid: [] for uid in users}
    pubsub = stores.redis.pubsub()
    channels = {stores.keys("user", uid).encode(): uid for uid in users}
    await pubsub.subscribe(*channels)
    other = await open_stores(stores.settings, pool_size=8)
    relays = [Relay(stores), Relay(other)]
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
            async with stores.pg.acquire() as conn, conn.transaction():
                await announce(conn, stores, *(Event([uid], "message.created", {"n": round_}) for uid in group[:2]),
                               Event(group, "message.created", {"n": round_}))
            sent += 1
        async with asyncio.timeout(30):
            while await stores.pg.fetchval("SELECT count(*) FROM outbox"):
                await asyncio.sleep(0.05)
            expected = {uid: await stores.pg.fetchval("SELECT last_id FROM event_sequences WHERE user_id = $1", uid)
                        or 0 for uid in users}
            while any(len(heard[uid]) < expected[uid] for uid in users):
                await asyncio.sleep(0.05)
        for uid in users:
            assert heard[uid] == list(range(1, expected[uid] + 1)), uid
    finally:
        listener.cancel()
        for relay in relays:
            await relay.stop()
        await other.close()
        await pubsub.aclose()
