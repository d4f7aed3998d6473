"""Temporary data lives 30 days: TTL indexes from `nubo migrate`, and reads that skip expired docs."""

from datetime import UTC, datetime, timedelta

import pytest

from nubo_backend.notifications.service import list_notifications
from nubo_backend.realtime import broadcast
from nubo_backend.realtime.events import events_after
from nubo_backend.stores import Stores
from nubo_backend.stores.mongo import ensure_indexes
from tests.factories import announce_event, make_user, relay_now

THIRTY_DAYS = 30 * 86400
OLD = datetime.now(UTC) - timedelta(days=31)


async def test_broadcasts_events_and_notifications_expire_after_30_days(stores: Stores) -> None:
    await ensure_indexes(stores.mongo, stores.settings.mongo_ttl_days * 86400)
    for name in ("broadcasts", "events", "notifications"):
        indexes = await stores.mongo[name].index_information()
        ttl = indexes["ttl_created_at"]
        assert ttl["key"] == [("created_at", 1)]
        assert ttl["expireAfterSeconds"] == THIRTY_DAYS


async def test_a_broadcast_line_older_than_30_days_is_not_listed(stores: Stores) -> None:
    await stores.mongo["broadcasts"].insert_one({"user_id": 1, "text": "old", "created_at": OLD})
    await broadcast.publish(stores, 1, "new")
    assert [i["text"] for i in (await broadcast.recent(stores, 10, None))["items"]] == ["new"]


async def test_an_expired_notification_is_not_listed(stores: Stores) -> None:
    alice = await make_user(stores)
    await stores.mongo["notifications"].insert_one(
        {"user_id": alice.id, "type": "like.created", "data": {}, "read": False, "created_at": OLD}
    )
    assert (await list_notifications(stores, alice.id, 10, None))["items"] == []


async def test_an_expired_event_is_not_replayed(stores: Stores) -> None:
    alice = await make_user(stores)
    await announce_event(stores, [alice.id], "n", {"n": 1})
    await relay_now(stores)
    await stores.mongo["events"].update_one({"user_id": alice.id, "id": 1}, {"$set": {"created_at": OLD}})
    await announce_event(stores, [alice.id], "n", {"n": 2})
    await relay_now(stores)
    assert [e["id"] for e in await events_after(stores, alice.id, 1)] == [2]
    assert await events_after(stores, alice.id, 0) is None  # the client is told, not left with a hole


@pytest.mark.real_mongo
async def test_mongodb_deletes_expired_broadcasts(stores: Stores) -> None:
    """The TTL monitor runs every 60 s; a real server removes the expired line."""
    import asyncio

    await ensure_indexes(stores.mongo, stores.settings.mongo_ttl_days * 86400)
    await stores.mongo["broadcasts"].insert_one({"user_id": 1, "text": "old", "created_at": OLD})
    for _ in range(150):
        if await stores.mongo["broadcasts"].count_documents({"text": "old"}) == 0:
            return
        await asyncio.sleep(1)
    pytest.fail("expired broadcast still stored after 150 s")
