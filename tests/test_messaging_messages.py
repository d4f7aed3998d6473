import asyncio

import httpx
import pytest

from nubo_backend.edge.errors import NuboError
from nubo_backend.messaging.commands import HANDLERS
from nubo_backend.realtime.events import events_after
from nubo_backend.stores import Stores
from tests.factories import TestUser, make_user


async def direct(api: httpx.AsyncClient, a: TestUser, b: TestUser) -> int:
    return (await api.post("/conversations", json={"user_id": b.id}, headers=a.headers)).json()["id"]


async def test_sent_message_is_stored_and_announced_to_every_member(api: httpx.AsyncClient, stores: Stores) -> None:
    alice, bob = await make_user(stores), await make_user(stores)
    cid = await direct(api, alice, bob)
    response = await api.post(f"/conversations/{cid}/messages", json={"body": "Salut !", "client_id": "c1"},
                              headers=alice.headers)
    assert response.status_code == 201
    message = response.json()
    assert message["body"] == "Salut !" and message["sender_id"] == alice.id and message["deleted"] is False
    for user in (alice, bob):  # the sender's other devices hear of it too
        events = await events_after(stores, user.id, 0)
        assert events[-1]["type"] == "message.created"
        assert events[-1]["data"]["id"] == message["id"]


async def test_retry_with_same_client_id_does_not_duplicate(api: httpx.AsyncClient, stores: Stores) -> None:
    alice, bob = await make_user(stores), await make_user(stores)
    cid = await direct(api, alice, bob)
    payload = {"body": "once", "client_id": "retry-1"}
    responses = await asyncio.gather(
        *(api.post(f"/conversations/{cid}/messages", json=payload, headers=alice.headers) for _ in range(4))
    )
    assert sorted(r.status_code for r in responses) == [200, 200, 200, 201]
    assert len({r.json()["id"] for r in responses}) == 1
    assert await stores.pg.fetchval("SELECT count(*) FROM messages") == 1
    created = [e for e in await events_after(stores, bob.id, 0) if e["type"] == "message.created"]
    assert len(created) == 1


async def test_messages_page_newest_first_without_gaps_while_new_ones_arrive(
    api: httpx.AsyncClient, stores: Stores
) -> None:
    alice, bob = await make_user(stores), await make_user(stores)
    cid = await direct(api, alice, bob)
    for n in range(7):
        await api.post(f"/conversations/{cid}/messages", json={"body": f"m{n}"}, headers=alice.headers)
    first = (await api.get(f"/conversations/{cid}/messages", params={"limit": 3}, headers=bob.headers)).json()
    await api.post(f"/conversations/{cid}/messages", json={"body": "late"}, headers=alice.headers)
    bodies = [m["body"] for m in first["items"]]
    cursor = first["next_cursor"]
    while cursor:
        body = (await api.get(f"/conversations/{cid}/messages", params={"limit": 3, "cursor": cursor},
                              headers=bob.headers)).json()
        bodies += [m["body"] for m in body["items"]]
        cursor = body["next_cursor"]
    assert bodies == [f"m{n}" for n in reversed(range(7))]


async def test_bad_cursor_and_limit_are_client_errors(api: httpx.AsyncClient, stores: Stores) -> None:
    alice, bob = await make_user(stores), await make_user(stores)
    cid = await direct(api, alice, bob)
    bad_cursor = await api.get(f"/conversations/{cid}/messages", params={"cursor": "garbage!"}, headers=alice.headers)
    assert bad_cursor.status_code == 400 and bad_cursor.json()["code"] == "invalid_cursor"
    big_limit = await api.get(f"/conversations/{cid}/messages", params={"limit": 1000}, headers=alice.headers)
    assert big_limit.status_code == 422 and big_limit.json()["details"][0]["field"] == "limit"
    bad_list_cursor = await api.get("/conversations", params={"cursor": "WyJ4IiwxXQ"}, headers=alice.headers)
    assert bad_list_cursor.status_code == 400


async def test_message_body_limits(api: httpx.AsyncClient, stores: Stores, settings) -> None:
    alice, bob = await make_user(stores), await make_user(stores)
    cid = await direct(api, alice, bob)
    empty = await api.post(f"/conversations/{cid}/messages", json={"body": "   "}, headers=alice.headers)
    long = await api.post(f"/conversations/{cid}/messages", json={"body": "x" * (settings.message_max_length + 1)},
                          headers=alice.headers)
    wrong_type = await api.post(f"/conversations/{cid}/messages", json={"body": 42}, headers=alice.headers)
    for response in (empty, long, wrong_type):
        assert response.status_code == 422
        assert response.json()["details"][0]["field"] == "body"
    assert await stores.pg.fetchval("SELECT count(*) FROM messages") == 0


async def test_only_the_sender_edits_and_deletes(api: httpx.AsyncClient, stores: Stores) -> None:
    alice, bob = await make_user(stores), await make_user(stores)
    cid = await direct(api, alice, bob)
    mid = (await api.post(f"/conversations/{cid}/messages", json={"body": "typo"}, headers=alice.headers)).json()["id"]
    assert (await api.patch(f"/messages/{mid}", json={"body": "hack"}, headers=bob.headers)).status_code == 403
    assert (await api.delete(f"/messages/{mid}", headers=bob.headers)).status_code == 403
    edited = await api.patch(f"/messages/{mid}", json={"body": "fixed"}, headers=alice.headers)
    assert edited.status_code == 200
    assert edited.json()["body"] == "fixed" and edited.json()["edited_at"] is not None
    assert (await api.patch("/messages/987654", json={"body": "x"}, headers=alice.headers)).status_code == 404


async def test_deleted_message_leaves_a_tombstone(api: httpx.AsyncClient, stores: Stores) -> None:
    alice, bob = await make_user(stores), await make_user(stores)
    cid = await direct(api, alice, bob)
    mid = (await api.post(f"/conversations/{cid}/messages", json={"body": "oops"}, headers=alice.headers)).json()["id"]
    assert (await api.delete(f"/messages/{mid}", headers=alice.headers)).status_code == 204
    listed = (await api.get(f"/conversations/{cid}/messages", headers=bob.headers)).json()["items"]
    assert listed == [{**listed[0], "id": mid, "body": None, "deleted": True}]
    last = (await events_after(stores, bob.id, 0))[-1]
    assert last["type"] == "message.deleted" and last["data"]["id"] == mid and last["data"]["body"] is None
    again = await api.delete(f"/messages/{mid}", headers=alice.headers)
    assert again.status_code == 409
    assert (await api.patch(f"/messages/{mid}", json={"body": "x"}, headers=alice.headers)).status_code == 409


async def test_read_marker_moves_forward_and_clears_unread(api: httpx.AsyncClient, stores: Stores) -> None:
    alice, bob = await make_user(stores), await make_user(stores)
    cid = await direct(api, alice, bob)
    ids = [(await api.post(f"/conversations/{cid}/messages", json={"body": str(n)}, headers=alice.headers)).json()["id"]
           for n in range(3)]
    assert (await api.get("/conversations", headers=bob.headers)).json()["items"][0]["unread_count"] == 3
    marked = await api.post(f"/conversations/{cid}/read", json={"message_id": ids[1]}, headers=bob.headers)
    assert marked.status_code == 200
    assert (await api.get("/conversations", headers=bob.headers)).json()["items"][0]["unread_count"] == 1
    await api.post(f"/conversations/{cid}/read", json={"message_id": ids[0]}, headers=bob.headers)  # never back
    summary = (await api.get("/conversations", headers=bob.headers)).json()["items"][0]
    assert summary["last_read_message_id"] == ids[1] and summary["unread_count"] == 1
    receipts = [e for e in await events_after(stores, alice.id, 0) if e["type"] == "conversation.read"]
    assert [r["data"]["message_id"] for r in receipts] == [ids[1]]


async def test_read_marker_must_point_into_the_conversation(api: httpx.AsyncClient, stores: Stores) -> None:
    alice, bob, carol = await make_user(stores), await make_user(stores), await make_user(stores)
    cid = await direct(api, alice, bob)
    other = await direct(api, alice, carol)
    foreign = (await api.post(f"/conversations/{other}/messages", json={"body": "x"}, headers=alice.headers)).json()
    response = await api.post(f"/conversations/{cid}/read", json={"message_id": foreign["id"]}, headers=bob.headers)
    assert response.status_code == 404


async def test_ws_send_command_acks_only_after_the_message_is_durable(stores: Stores) -> None:
    alice, bob = await make_user(stores), await make_user(stores)
    from nubo_backend.messaging.service import open_direct

    conversation, _ = await open_direct(stores, alice.id, bob.id)
    frame = {"type": "message.send", "conversation_id": conversation["id"], "body": "hi", "client_id": "k1"}
    ack = await HANDLERS["message.send"](stores, alice.id, frame)
    stored = await stores.pg.fetchrow("SELECT id, body FROM messages WHERE client_id = 'k1'")
    assert ack == {"type": "ack", "client_id": "k1", "message_id": stored["id"], "duplicate": False}
    retry = await HANDLERS["message.send"](stores, alice.id, frame)
    assert retry["message_id"] == stored["id"] and retry["duplicate"] is True


async def test_ws_send_command_enforces_membership_and_shape(stores: Stores) -> None:
    alice, bob, mallory = await make_user(stores), await make_user(stores), await make_user(stores)
    from nubo_backend.messaging.service import open_direct

    conversation, _ = await open_direct(stores, alice.id, bob.id)
    with pytest.raises(NuboError) as refused:
        await HANDLERS["message.send"](
            stores, mallory.id, {"type": "message.send", "conversation_id": conversation["id"], "body": "x",
                                 "client_id": "m"})
    assert refused.value.status == 403
    with pytest.raises(NuboError) as malformed:
        await HANDLERS["message.send"](stores, alice.id, {"type": "message.send", "body": "x"})
    assert malformed.value.status == 422
