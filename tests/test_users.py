"""Public profiles and follows over real HTTP."""

from __future__ import annotations

import asyncio

import httpx

from nubo_backend.stores import Stores
from tests.factories import make_user
from tests.polling import eventually


async def test_profile_by_id_or_username_with_counts(api: httpx.AsyncClient, stores: Stores):
    alice, bob = await make_user(stores), await make_user(stores)
    await api.post("/posts", json={"body": "hi"}, headers=alice.headers)
    await api.post(f"/users/{alice.id}/follow", headers=bob.headers)
    by_id = await api.get(f"/users/{alice.id}")
    assert by_id.status_code == 200
    profile = by_id.json()
    assert {k: profile[k] for k in ("id", "username", "followers_count", "following_count", "posts_count")} == {
        "id": alice.id, "username": alice.username, "followers_count": 1, "following_count": 0, "posts_count": 1}
    assert set(profile) == {"id", "username", "display_name", "bio", "avatar_url", "created_at",
                            "followers_count", "following_count", "posts_count"}
    by_name = await api.get(f"/users/{alice.username.upper()}", headers=bob.headers)
    assert by_name.json()["id"] == alice.id
    assert by_name.json()["followed_by_me"] is True
    assert (await api.get(f"/users/{bob.id}")).json()["following_count"] == 1


async def test_unknown_users_are_404(api: httpx.AsyncClient, stores: Stores):
    alice = await make_user(stores)
    for ref in ["nobody_here", "424242", "99999999999999999999999", "0", "%20"]:
        assert (await api.get(f"/users/{ref}")).status_code == 404, ref
    assert (await api.post("/users/424242/follow", headers=alice.headers)).status_code == 404
    assert (await api.get("/users/424242/followers")).status_code == 404
    assert (await api.get("/users/424242/posts")).status_code == 404
    assert (await api.post("/users/abc/follow", headers=alice.headers)).status_code == 404


async def test_follow_is_idempotent_and_unfollow_too(api: httpx.AsyncClient, stores: Stores):
    alice, bob = await make_user(stores), await make_user(stores)
    for _ in range(2):
        response = await api.post(f"/users/{alice.id}/follow", headers=bob.headers)
        assert response.status_code == 200
        assert (response.json()["followers_count"], response.json()["followed_by_me"]) == (1, True)
    for _ in range(2):
        response = await api.delete(f"/users/{alice.id}/follow", headers=bob.headers)
        assert response.status_code == 200
        assert (response.json()["followers_count"], response.json()["followed_by_me"]) == (0, False)
    assert (await api.get(f"/users/{bob.id}")).json()["following_count"] == 0


async def test_self_follow_is_refused(api: httpx.AsyncClient, stores: Stores):
    alice = await make_user(stores)
    response = await api.post(f"/users/{alice.id}/follow", headers=alice.headers)
    assert response.status_code == 422
    assert response.json()["code"] == "self_follow"


async def test_follow_requires_auth(api: httpx.AsyncClient, stores: Stores):
    alice = await make_user(stores)
    assert (await api.post(f"/users/{alice.id}/follow")).status_code == 401


async def test_follow_notifies_the_followed_user(api: httpx.AsyncClient, stores: Stores):
    alice, bob = await make_user(stores), await make_user(stores)
    await api.post(f"/users/{alice.id}/follow", headers=bob.headers)
    await api.post(f"/users/{alice.id}/follow", headers=bob.headers)
    async def notifications():
        docs = await stores.mongo["notifications"].find({"user_id": alice.id}).to_list()
        return [(d["type"], d["data"]["actor_id"]) for d in docs]

    expected = [("follow.created", bob.id)]
    assert await eventually(notifications, expected) == expected
    await asyncio.sleep(0.2)  # the repeated follow announced nothing
    assert await notifications() == expected


async def test_followers_and_following_lists_page_most_recent_first(api: httpx.AsyncClient, stores: Stores):
    star = await make_user(stores)
    fans = [await make_user(stores) for _ in range(5)]
    for fan in fans:
        await api.post(f"/users/{star.id}/follow", headers=fan.headers)
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        body = (await api.get(f"/users/{star.id}/followers", params=params)).json()
        seen += [u["id"] for u in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == [f.id for f in reversed(fans)]
    following = (await api.get(f"/users/{fans[0].id}/following")).json()
    assert [u["id"] for u in following["items"]] == [star.id]
    assert set(following["items"][0]) == {"id", "username", "display_name", "avatar_url", "followed_at"}


async def test_user_posts_list_only_their_posts(api: httpx.AsyncClient, stores: Stores):
    alice, bob = await make_user(stores), await make_user(stores)
    mine = [(await api.post("/posts", json={"body": f"a{n}"}, headers=alice.headers)).json()["id"] for n in range(3)]
    await api.post("/posts", json={"body": "b"}, headers=bob.headers)
    body = (await api.get(f"/users/{alice.id}/posts", params={"limit": 2})).json()
    assert [p["id"] for p in body["items"]] == mine[:0:-1]
    rest = (await api.get(f"/users/{alice.id}/posts", params={"limit": 2, "cursor": body["next_cursor"]})).json()
    assert [p["id"] for p in rest["items"]] == [mine[0]]
    assert rest["next_cursor"] is None


async def test_profile_edit_is_visible_at_once_despite_the_cache(api: httpx.AsyncClient, stores: Stores):
    alice = await make_user(stores)
    assert (await api.get(f"/users/{alice.id}")).json()["display_name"] == ""  # now cached
    edited = await api.patch("/me", json={"display_name": "Alice A."}, headers=alice.headers)
    assert edited.status_code == 200
    assert (await api.get(f"/users/{alice.id}")).json()["display_name"] == "Alice A."
