"""Presence: people sharing a conversation they have written in see each other come online
and go offline."""

from nubo_backend.realtime.presence import is_online
from nubo_backend.stores import Stores
from tests import factories
from tests.e2e.ws_support import next_frame, open_ws, silent
from tests.factories import make_user


async def share_conversation(stores: Stores, *users: factories.TestUser) -> None:
    conversation_id = await stores.pg.fetchval(
        "INSERT INTO conversations (kind, title) VALUES ('group', 'friends') RETURNING id"
    )
    await stores.pg.executemany(
        "INSERT INTO conversation_members (conversation_id, user_id) VALUES ($1, $2)",
        [(conversation_id, u.id) for u in users],
    )
    # Each has written in it: presence goes only to the members of conversations one wrote in.
    await stores.pg.executemany(
        "INSERT INTO messages (conversation_id, sender_id, body) VALUES ($1, $2, 'hi')",
        [(conversation_id, u.id) for u in users],
    )


async def test_contacts_see_the_first_connection_online_and_the_last_one_offline(
    stores: Stores, start_server
) -> None:
    a, b = start_server(), start_server()
    alice, bob, stranger = await make_user(stores), await make_user(stores), await make_user(stores)
    await share_conversation(stores, alice, bob)
    watching = await open_ws(a, bob)
    outsider = await open_ws(a, stranger)
    phone = await open_ws(b, alice)
    assert await next_frame(watching) == {
        "id": None, "type": "presence", "data": {"user_id": alice.id, "status": "online"}
    }
    laptop = await open_ws(a, alice)  # a second device: still the same "online"
    assert await silent(watching)
    assert await is_online(stores, alice.id)
    await phone.close()
    assert await silent(watching)
    await laptop.close()
    assert await next_frame(watching) == {
        "id": None, "type": "presence", "data": {"user_id": alice.id, "status": "offline"}
    }
    assert not await is_online(stores, alice.id)
    assert await silent(outsider, 0.1)


async def test_an_instance_shutting_down_counts_its_sockets_out_at_once(stores: Stores, start_server) -> None:
    from nubo_backend.realtime.presence import online_count

    a, b = start_server(), start_server()
    alice = await make_user(stores)
    await open_ws(a, alice)
    await open_ws(a, alice)
    await open_ws(b, alice)
    assert await online_count(stores, alice.id) == 3
    a.stop()  # not a crash: its field goes, it does not wait three heartbeats for its deadline
    assert await online_count(stores, alice.id) == 1
