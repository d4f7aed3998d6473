import asyncio

import httpx

from nubo_backend.realtime.events import events_after
from nubo_backend.stores import Stores
from tests.factories import make_user


async def test_direct_conversation_is_unique_per_pair(api: httpx.AsyncClient, stores: Stores) -> None:
    alice, bob = await make_user(stores), await make_user(stores)
    first = await api.post("/conversations", json={"user_id": bob.id}, headers=alice.headers)
    again = await api.post("/conversations", json={"user_id": alice.id}, headers=bob.headers)
    assert first.status_code == 201
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert first.json()["kind"] == "direct"
    assert {m["user_id"] for m in first.json()["members"]} == {alice.id, bob.id}


async def test_concurrent_direct_opens_create_one_conversation(api: httpx.AsyncClient, stores: Stores) -> None:
    alice, bob = await make_user(stores), await make_user(stores)
    responses = await asyncio.gather(
        *(api.post("/conversations", json={"user_id": bob.id}, headers=alice.headers) for _ in range(5))
    )
    assert {r.json()["id"] for r in responses} == {responses[0].json()["id"]}
    assert await stores.pg.fetchval("SELECT count(*) FROM conversations") == 1


async def test_direct_conversation_with_unknown_user_is_404(api: httpx.AsyncClient, stores: Stores) -> None:
    alice = await make_user(stores)
    response = await api.post("/conversations", json={"user_id": 999999}, headers=alice.headers)
    assert response.status_code == 404
    assert response.json()["code"] == "user_not_found"


async def test_direct_conversation_with_yourself_is_refused(api: httpx.AsyncClient, stores: Stores) -> None:
    alice = await make_user(stores)
    response = await api.post("/conversations", json={"user_id": alice.id}, headers=alice.headers)
    assert response.status_code == 422
    assert response.json()["details"][0]["field"] == "user_id"


async def test_group_has_owner_title_and_members(api: httpx.AsyncClient, stores: Stores) -> None:
    alice, bob, carol = await make_user(stores), await make_user(stores), await make_user(stores)
    response = await api.post(
        "/conversations", json={"title": "Trip", "member_ids": [bob.id, carol.id]}, headers=alice.headers
    )
    assert response.status_code == 201
    group = response.json()
    assert group["kind"] == "group" and group["title"] == "Trip"
    roles = {m["user_id"]: m["role"] for m in group["members"]}
    assert roles == {alice.id: "owner", bob.id: "member", carol.id: "member"}


async def test_conversation_body_must_name_one_kind(api: httpx.AsyncClient, stores: Stores) -> None:
    alice = await make_user(stores)
    both = await api.post("/conversations", json={"user_id": 1, "title": "x"}, headers=alice.headers)
    neither = await api.post("/conversations", json={}, headers=alice.headers)
    unknown = await api.post("/conversations", json={"user_id": 1, "colour": "red"}, headers=alice.headers)
    assert both.status_code == neither.status_code == unknown.status_code == 422
    assert unknown.json()["details"] == [{"field": "colour", "message": "Unknown field"}]


async def test_only_members_can_read_a_conversation(api: httpx.AsyncClient, stores: Stores) -> None:
    alice, bob, mallory = await make_user(stores), await make_user(stores), await make_user(stores)
    conversation = (await api.post("/conversations", json={"user_id": bob.id}, headers=alice.headers)).json()
    cid = conversation["id"]
    for path in (f"/conversations/{cid}", f"/conversations/{cid}/messages"):
        response = await api.get(path, headers=mallory.headers)
        assert response.status_code == 403, path
        assert response.json()["code"] == "not_a_member"
    post = await api.post(f"/conversations/{cid}/messages", json={"body": "hi"}, headers=mallory.headers)
    assert post.status_code == 403
    assert (await api.get("/conversations/424242", headers=alice.headers)).status_code == 404


async def test_conversations_require_authentication(api: httpx.AsyncClient) -> None:
    response = await api.get("/conversations")
    assert response.status_code == 401
    assert response.json()["error"] == "Authorization header manquant"


async def test_list_shows_last_message_and_unread_count_newest_activity_first(
    api: httpx.AsyncClient, stores: Stores
) -> None:
    alice, bob, carol = await make_user(stores), await make_user(stores), await make_user(stores)
    with_bob = (await api.post("/conversations", json={"user_id": bob.id}, headers=alice.headers)).json()["id"]
    with_carol = (await api.post("/conversations", json={"user_id": carol.id}, headers=alice.headers)).json()["id"]
    await api.post(f"/conversations/{with_carol}/messages", json={"body": "hey alice"}, headers=carol.headers)
    for text in ("one", "two", "three"):
        await api.post(f"/conversations/{with_bob}/messages", json={"body": text}, headers=bob.headers)
    await api.post(f"/conversations/{with_bob}/messages", json={"body": "mine"}, headers=alice.headers)

    listing = (await api.get("/conversations", headers=alice.headers)).json()
    assert [c["id"] for c in listing["items"]] == [with_bob, with_carol]
    first = listing["items"][0]
    assert first["last_message"]["body"] == "mine"
    assert first["unread_count"] == 3  # bob's three; her own message does not count
    assert listing["items"][1]["unread_count"] == 1


async def test_conversation_list_paginates_without_gaps(api: httpx.AsyncClient, stores: Stores) -> None:
    alice = await make_user(stores)
    ids = []
    for _ in range(5):
        other = await make_user(stores)
        ids.append((await api.post("/conversations", json={"user_id": other.id}, headers=alice.headers)).json()["id"])
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        body = (await api.get("/conversations", params=params, headers=alice.headers)).json()
        seen += [c["id"] for c in body["items"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert seen == list(reversed(ids))
    # ["not a date", 1], then a time without a zone: tampered, refused.
    for tampered in ["WyJub3QgYSBkYXRlIiwgMV0", "WyIyMDI2LTAxLTAxVDAwOjAwOjAwIiwgMV0"]:
        response = await api.get("/conversations", params={"cursor": tampered}, headers=alice.headers)
        assert (response.status_code, response.json()["code"]) == (400, "invalid_cursor")


async def test_owner_adds_and_removes_members_and_everyone_hears(api: httpx.AsyncClient, stores: Stores) -> None:
    alice, bob, carol = await make_user(stores), await make_user(stores), await make_user(stores)
    group = (await api.post("/conversations", json={"title": "G", "member_ids": [bob.id]},
                            headers=alice.headers)).json()
    gid = group["id"]
    refused = await api.post(f"/conversations/{gid}/members", json={"user_ids": [carol.id]}, headers=bob.headers)
    assert refused.status_code == 403
    added = await api.post(f"/conversations/{gid}/members", json={"user_ids": [carol.id]}, headers=alice.headers)
    assert added.status_code == 200
    assert carol.id in {m["user_id"] for m in added.json()["members"]}
    removed = await api.delete(f"/conversations/{gid}/members/{carol.id}", headers=alice.headers)
    assert removed.status_code == 204
    assert (await api.get(f"/conversations/{gid}", headers=carol.headers)).status_code == 403
    bob_events = [e["type"] for e in await events_after(stores, bob.id, 0)]
    assert bob_events == ["conversation.created", "conversation.members_added", "conversation.member_removed"]


async def test_a_member_cannot_remove_others_but_can_leave(api: httpx.AsyncClient, stores: Stores) -> None:
    alice, bob, carol = await make_user(stores), await make_user(stores), await make_user(stores)
    gid = (await api.post("/conversations", json={"title": "G", "member_ids": [bob.id, carol.id]},
                          headers=alice.headers)).json()["id"]
    assert (await api.delete(f"/conversations/{gid}/members/{carol.id}", headers=bob.headers)).status_code == 403
    assert (await api.post(f"/conversations/{gid}/leave", headers=bob.headers)).status_code == 204
    assert (await api.get(f"/conversations/{gid}/messages", headers=bob.headers)).status_code == 403


async def test_when_the_owner_leaves_the_oldest_member_becomes_owner(api: httpx.AsyncClient, stores: Stores) -> None:
    alice, bob, carol = await make_user(stores), await make_user(stores), await make_user(stores)
    gid = (await api.post("/conversations", json={"title": "G", "member_ids": [bob.id, carol.id]},
                          headers=alice.headers)).json()["id"]
    await api.post(f"/conversations/{gid}/leave", headers=alice.headers)
    members = (await api.get(f"/conversations/{gid}", headers=bob.headers)).json()["members"]
    owners = [m["user_id"] for m in members if m["role"] == "owner"]
    assert len(owners) == 1 and owners[0] in (bob.id, carol.id)


async def test_direct_conversations_have_no_member_management(api: httpx.AsyncClient, stores: Stores) -> None:
    alice, bob, carol = await make_user(stores), await make_user(stores), await make_user(stores)
    cid = (await api.post("/conversations", json={"user_id": bob.id}, headers=alice.headers)).json()["id"]
    response = await api.post(f"/conversations/{cid}/members", json={"user_ids": [carol.id]}, headers=alice.headers)
    assert response.status_code == 409
    assert response.json()["code"] == "not_a_group"
