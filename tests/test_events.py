"""Events through the outbox: numbered in the announcing transaction, relayed once, read back whole."""

import pytest

from nubo_backend.jsonutil import loads
from nubo_backend.notifications.service import list_notifications, mark_read
from nubo_backend.outbox import Event, announce
from nubo_backend.realtime.events import events_after, read_sequence, user_channel
from nubo_backend.stores import Stores
from tests.factories import announce_event, announce_notification, make_user, relay_now


async def test_event_ids_increase_per_user_without_gaps(stores: Stores) -> None:
    alice, bob = await make_user(stores), await make_user(stores)
    assert await announce_event(stores, [alice.id, bob.id], "follow.created", {"n": 1}) == {alice.id: 1, bob.id: 1}
    assert await announce_event(stores, [alice.id], "follow.created", {"n": 2}) == {alice.id: 2}
    assert (await read_sequence(stores, alice.id), await read_sequence(stores, bob.id)) == (2, 1)


async def test_a_rolled_back_change_announces_nothing_and_takes_no_id(stores: Stores) -> None:
    alice = await make_user(stores)
    with pytest.raises(RuntimeError):
        async with stores.pg.acquire() as conn, conn.transaction():
            await announce(conn, stores, Event([alice.id], "n", {"n": 1}))
            raise RuntimeError("the change failed after announcing")
    assert await read_sequence(stores, alice.id) == 0
    assert await stores.pg.fetchval("SELECT count(*) FROM outbox") == 0
    assert await announce_event(stores, [alice.id], "n", {"n": 2}) == {alice.id: 1}


async def test_one_transaction_numbers_several_events_in_the_order_given(stores: Stores) -> None:
    alice, bob = await make_user(stores), await make_user(stores)
    async with stores.pg.acquire() as conn, conn.transaction():
        await announce(conn, stores, Event([alice.id], "a", {}), Event([bob.id, alice.id], "b", {}))
    await relay_now(stores)
    assert [(e["id"], e["type"]) for e in await events_after(stores, alice.id, 0)] == [(1, "a"), (2, "b")]
    assert [(e["id"], e["type"]) for e in await events_after(stores, bob.id, 0)] == [(1, "b")]


async def test_the_relay_journals_publishes_and_empties_the_outbox(stores: Stores) -> None:
    alice = await make_user(stores)
    pubsub = stores.redis.pubsub()
    await pubsub.subscribe(user_channel(stores, alice.id))
    await announce_event(stores, [alice.id], "like.created", {"post_id": 7})
    await relay_now(stores)
    message = None
    for _ in range(50):
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
        if message:
            break
    await pubsub.aclose()
    assert loads(message["data"]) == {"id": 1, "type": "like.created", "data": {"post_id": 7}}
    assert await stores.mongo["events"].count_documents({"user_id": alice.id}) == 1
    assert await stores.pg.fetchval("SELECT count(*) FROM outbox") == 0


async def test_events_not_journaled_yet_are_read_back_from_the_outbox(stores: Stores) -> None:
    """MongoDB down, say: the relay waits, and resume still gets every event, in order."""
    alice = await make_user(stores)
    await announce_event(stores, [alice.id], "n", {"n": 1})
    await relay_now(stores)
    await announce_event(stores, [alice.id], "n", {"n": 2})
    await announce_event(stores, [alice.id], "n", {"n": 3})
    assert [(e["id"], e["data"]["n"]) for e in await events_after(stores, alice.id, 0)] == [(1, 1), (2, 2), (3, 3)]
    assert [e["id"] for e in await events_after(stores, alice.id, 2)] == [3]
    assert await events_after(stores, alice.id, 3) == []


async def test_a_batch_relayed_twice_is_journaled_once(stores: Stores) -> None:
    """A relay that dies after its MongoDB writes but before deleting the rows: the next one
    redoes the batch, and neither the journal nor the notifications hold a copy twice."""
    alice, bob = await make_user(stores), await make_user(stores)
    await announce_notification(stores, alice.id, "like.created", {"actor_id": bob.id})
    rows = await stores.pg.fetch("SELECT type, data, recipients, event_ids, notification FROM outbox")
    await relay_now(stores)
    await stores.pg.executemany(
        "INSERT INTO outbox (type, data, recipients, event_ids, notification) VALUES ($1, $2, $3, $4, $5)",
        [tuple(r) for r in rows],
    )
    await relay_now(stores)  # (or the session's server did: either way, the batch went out again)
    assert await stores.pg.fetchval("SELECT count(*) FROM outbox") == 0
    assert await stores.mongo["events"].count_documents({"user_id": alice.id}) == 1
    assert await stores.mongo["notifications"].count_documents({"user_id": alice.id}) == 1


async def test_resume_from_a_pruned_id_asks_for_resync(stores: Stores) -> None:
    alice = await make_user(stores)
    for n in range(3):
        await announce_event(stores, [alice.id], "x", {"n": n})
    await relay_now(stores)
    await stores.mongo["events"].delete_many({"user_id": alice.id, "id": {"$lte": 2}})
    assert await events_after(stores, alice.id, 1) is None
    assert [e["id"] for e in await events_after(stores, alice.id, 2)] == [3]


async def test_an_id_never_given_out_asks_for_resync(stores: Stores) -> None:
    alice = await make_user(stores)
    await announce_event(stores, [alice.id], "x", {})
    assert await events_after(stores, alice.id, 5) is None


async def test_notifications_are_listed_newest_first_and_marked_read(stores: Stores) -> None:
    alice, bob = await make_user(stores), await make_user(stores)
    for n in range(3):
        await announce_notification(stores, alice.id, "like.created", {"actor_id": bob.id, "n": n})
    assert await announce_notification(stores, alice.id, "like.created", {"actor_id": alice.id}) == {}  # own action
    await relay_now(stores)
    first = await list_notifications(stores, alice.id, 2, None)
    assert [i["data"]["n"] for i in first["items"]] == [2, 1]
    rest = await list_notifications(stores, alice.id, 2, [first["items"][-1]["id"]])
    assert [i["data"]["n"] for i in rest["items"]] == [0] and rest["next_cursor"] is None
    assert await mark_read(stores, alice.id, None) == 3
    assert all(i["read"] for i in (await list_notifications(stores, alice.id, 10, None))["items"])
