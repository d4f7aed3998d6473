"""Issue #26, item 5: a group is no way around a block, at creation or by adding members."""

from __future__ import annotations

import httpx

from nubo_backend.stores import Stores
from tests.factories import make_user


async def _events_of(stores: Stores, user_id: int) -> list[str]:
    return [doc["type"] async for doc in stores.mongo["events"].find({"user_id": user_id})]


async def test_a_blocked_user_cannot_put_the_blocker_in_a_group(api: httpx.AsyncClient, stores: Stores) -> None:
    alice, bob, carol = await make_user(stores), await make_user(stores), await make_user(stores)
    assert (await api.put(f"/users/{bob.id}/block", headers=alice.headers)).status_code in (200, 204)
    created = await api.post("/conversations", json={"title": "alice, we know where you live",
                                                     "member_ids": [alice.id]}, headers=bob.headers)
    with_carol = await api.post("/conversations", json={"title": "g", "member_ids": [carol.id, alice.id]},
                                headers=bob.headers)
    assert [(r.status_code, r.json()["code"]) for r in (created, with_carol)] == [(403, "blocked")] * 2
    assert await stores.pg.fetchval("SELECT count(*) FROM conversations") == 0
    assert await _events_of(stores, alice.id) == []


async def test_nobody_is_added_to_a_group_across_a_block_either_way(api: httpx.AsyncClient, stores: Stores) -> None:
    alice, bob, carol = await make_user(stores), await make_user(stores), await make_user(stores)
    group = (await api.post("/conversations", json={"title": "g", "member_ids": [carol.id]},
                            headers=bob.headers)).json()
    mine = (await api.post("/conversations", json={"title": "h", "member_ids": [carol.id]},
                           headers=alice.headers)).json()
    await api.put(f"/users/{bob.id}/block", headers=alice.headers)
    by_blocked = await api.post(f"/conversations/{group['id']}/members", json={"user_ids": [alice.id]},
                                headers=bob.headers)
    by_blocker = await api.post(f"/conversations/{mine['id']}/members", json={"user_ids": [bob.id]},
                                headers=alice.headers)
    assert [(r.status_code, r.json()["code"]) for r in (by_blocked, by_blocker)] == [(403, "blocked")] * 2
    members = await stores.pg.fetch("SELECT conversation_id, user_id FROM conversation_members")
    assert {(m["conversation_id"], m["user_id"]) for m in members} == {
        (group["id"], bob.id), (group["id"], carol.id), (mine["id"], alice.id), (mine["id"], carol.id)}
    assert "conversation.members_added" not in await _events_of(stores, carol.id)
