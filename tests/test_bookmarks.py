"""Bookmarks over real HTTP: idempotent, private to their owner, keyset pages, and blocks."""

from __future__ import annotations

import httpx

from nubo_backend.stores import Stores
from tests.factories import make_user


async def _post(api: httpx.AsyncClient, user, body: str = "hello") -> int:
    response = await api.post("/posts", json={"body": body}, headers=user.headers)
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def test_bookmark_and_unbookmark_are_idempotent(api: httpx.AsyncClient, stores: Stores):
    alice, bob = await make_user(stores), await make_user(stores)
    post_id = await _post(api, alice)
    for _ in range(2):
        saved = await api.put(f"/posts/{post_id}/bookmark", headers=bob.headers)
        assert saved.status_code == 200, saved.text
        assert saved.json()["bookmarked_by_me"] is True
    assert (await api.get(f"/posts/{post_id}", headers=bob.headers)).json()["bookmarked_by_me"] is True
    for _ in range(2):
        removed = await api.delete(f"/posts/{post_id}/bookmark", headers=bob.headers)
        assert removed.json()["bookmarked_by_me"] is False
    assert (await api.get("/me/bookmarks", headers=bob.headers)).json()["items"] == []


async def test_bookmarks_are_listed_newest_bookmark_first_in_keyset_pages(api: httpx.AsyncClient, stores: Stores):
    alice, bob = await make_user(stores), await make_user(stores)
    ids = [await _post(api, alice, f"p{n}") for n in range(3)]
    for post_id in (ids[1], ids[0], ids[2]):
        await api.put(f"/posts/{post_id}/bookmark", headers=bob.headers)
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        body = (await api.get("/me/bookmarks", params=params, headers=bob.headers)).json()
        seen += [p["id"] for p in body["items"]]
        if (cursor := body["next_cursor"]) is None:
            break
    assert seen == [ids[2], ids[0], ids[1]]


async def test_bookmarks_are_private_to_their_owner(api: httpx.AsyncClient, stores: Stores):
    alice, bob = await make_user(stores), await make_user(stores)
    post_id = await _post(api, alice)
    await api.put(f"/posts/{post_id}/bookmark", headers=bob.headers)
    assert (await api.get("/me/bookmarks", headers=alice.headers)).json()["items"] == []
    assert (await api.get(f"/posts/{post_id}", headers=alice.headers)).json()["bookmarked_by_me"] is False
    assert "bookmark" not in (await api.get(f"/posts/{post_id}")).text
    assert (await api.get("/me/bookmarks")).status_code == 401


async def test_a_deleted_post_leaves_the_bookmarks(api: httpx.AsyncClient, stores: Stores):
    alice, bob = await make_user(stores), await make_user(stores)
    post_id = await _post(api, alice)
    await api.put(f"/posts/{post_id}/bookmark", headers=bob.headers)
    await api.delete(f"/posts/{post_id}", headers=alice.headers)
    assert (await api.get("/me/bookmarks", headers=bob.headers)).json()["items"] == []


async def test_bookmarks_of_a_blocked_author_are_hidden_and_new_ones_404(api: httpx.AsyncClient, stores: Stores):
    alice, bob = await make_user(stores), await make_user(stores)
    post_id = await _post(api, alice)
    await api.put(f"/posts/{post_id}/bookmark", headers=bob.headers)
    await api.put(f"/users/{bob.id}/block", headers=alice.headers)
    assert (await api.get("/me/bookmarks", headers=bob.headers)).json()["items"] == []
    assert (await api.put(f"/posts/{post_id}/bookmark", headers=bob.headers)).status_code == 404


async def test_bookmarking_an_unknown_post_is_404(api: httpx.AsyncClient, stores: Stores):
    bob = await make_user(stores)
    assert (await api.put("/posts/999999/bookmark", headers=bob.headers)).status_code == 404
