from nubo_backend.jsonutil import loads
from nubo_backend.notifications.service import list_notifications, mark_read, notify
from nubo_backend.realtime.events import emit, events_after, user_channel
from nubo_backend.stores import Stores
from tests.factories import make_user


async def test_event_ids_increase_per_user_and_are_journaled(stores: Stores) -> None:
    alice, bob = await make_user(stores), await make_user(stores)
    first = await emit(stores, [alice.id, bob.id], "follow.created", {"n": 1})
    second = await emit(stores, [alice.id], "follow.created", {"n": 2})
    assert first == {alice.id: 1, bob.id: 1}
    assert second == {alice.id: 2}
    journal = await events_after(stores, alice.id, 0)
    assert [(e["id"], e["data"]["n"]) for e in journal] == [(1, 1), (2, 2)]
    assert await events_after(stores, alice.id, 1) == [journal[1]]


async def test_emit_publishes_on_the_user_channel(stores: Stores) -> None:
    alice = await make_user(stores)
    pubsub = stores.redis.pubsub()
    await pubsub.subscribe(user_channel(stores, alice.id))
    await emit(stores, [alice.id], "like.created", {"post_id": 7})
    message = None
    for _ in range(50):
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
        if message:
            break
    await pubsub.aclose()
    assert loads(message["data"]) == {"id": 1, "type": "like.created", "data": {"post_id": 7}}


async def test_resume_from_a_pruned_id_asks_for_resync(stores: Stores) -> None:
    alice = await make_user(stores)
    for n in range(3):
        await emit(stores, [alice.id], "x", {"n": n})
    await stores.mongo["events"].delete_many({"user_id": alice.id, "id": {"$lte": 2}})
    assert await events_after(stores, alice.id, 1) is None
    assert [e["id"] for e in await events_after(stores, alice.id, 2)] == [3]


async def test_notifications_are_listed_newest_first_and_marked_read(stores: Stores) -> None:
    alice, bob = await make_user(stores), await make_user(stores)
    for n in range(3):
        await notify(stores, alice.id, "like.created", {"actor_id": bob.id, "n": n})
    await notify(stores, alice.id, "like.created", {"actor_id": alice.id})  # own action: ignored
    first = await list_notifications(stores, alice.id, 2, None)
    assert [i["data"]["n"] for i in first["items"]] == [2, 1]
    rest = await list_notifications(stores, alice.id, 2, [first["items"][-1]["id"]])
    assert [i["data"]["n"] for i in rest["items"]] == [0] and rest["next_cursor"] is None
    assert await mark_read(stores, alice.id, None) == 3
    assert all(i["read"] for i in (await list_notifications(stores, alice.id, 10, None))["items"])
