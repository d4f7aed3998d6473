"""What a large audience costs must not show: a deleted post vanishes from every cached page
whatever its author's follower count, and a group has a size (issue #24)."""

from __future__ import annotations

import httpx

from nubo_backend.stores import Stores
from tests.factories import make_user
from tests.polling import eventually
from tests.test_relay_lanes import _bulk_users, _follow_all


async def test_a_9000_follower_authors_deleted_post_vanishes_from_every_cached_page(
    api: httpx.AsyncClient, stores: Stores
) -> None:
    author, reader = await make_user(stores), await make_user(stores)
    await _follow_all(stores, [*await _bulk_users(stores, 9000), reader.id], author.id)
    created = await api.post("/posts", json={"body": "soon gone"}, headers=author.headers)
    post_id = created.json()["id"]

    async def shown() -> dict[str, bool]:
        feed = (await api.get("/feed", headers=reader.headers)).json()["items"]
        front = (await api.get("/posts")).json()["items"]
        return {"feed": any(p["id"] == post_id for p in feed), "front": any(p["id"] == post_id for p in front),
                "post": (await api.get(f"/posts/{post_id}")).status_code == 200}

    assert await eventually(shown, {"feed": True, "front": True, "post": True}) == {
        "feed": True, "front": True, "post": True}  # and now cached
    assert (await api.delete(f"/posts/{post_id}", headers=author.headers)).status_code == 204
    assert await shown() == {"feed": False, "front": False, "post": False}


async def test_a_group_beyond_its_size_is_refused(api: httpx.AsyncClient, stores: Stores) -> None:
    owner = await make_user(stores)
    cap = stores.settings.group_max_members
    people = await _bulk_users(stores, cap)
    created = await api.post("/conversations", json={"title": "Big", "member_ids": people[:200]},
                             headers=owner.headers)
    assert created.status_code == 201, created.text
    group = created.json()["id"]
    for start in range(200, cap - 1, 256):  # up to cap members, owner included
        chunk = people[start:min(start + 256, cap - 1)]
        added = await api.post(f"/conversations/{group}/members", json={"user_ids": chunk}, headers=owner.headers)
        assert added.status_code == 200, added.text
    one_more = await api.post(f"/conversations/{group}/members", json={"user_ids": [people[cap - 1]]},
                              headers=owner.headers)
    assert one_more.status_code == 409
    assert one_more.json() == {"error": f"A group has at most {cap} members, owner included", "code": "group_full"}
    assert await stores.pg.fetchval("SELECT count(*) FROM conversation_members WHERE conversation_id = $1",
                                    group) == cap
