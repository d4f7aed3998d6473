"""Edit history of posts over real HTTP: versions kept, newest first, and reposters told."""

from __future__ import annotations

import httpx

from nubo_backend.stores import Stores
from tests.factories import make_user
from tests.polling import eventually


async def _post(api: httpx.AsyncClient, user, body: str = "v0") -> int:
    response = await api.post("/posts", json={"body": body}, headers=user.headers)
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def test_history_after_three_edits_lists_the_replaced_versions_newest_first(
    api: httpx.AsyncClient, stores: Stores
):
    alice = await make_user(stores)
    post_id = await _post(api, alice, "v0")
    for body in ("v1", "v2", "v3"):
        assert (await api.patch(f"/posts/{post_id}", json={"body": body}, headers=alice.headers)).status_code == 200
    history = (await api.get(f"/posts/{post_id}/history")).json()
    assert [v["body"] for v in history["items"]] == ["v2", "v1", "v0"]
    assert history["next_cursor"] is None
    items = history["items"]
    assert items[0]["written_at"] == items[1]["replaced_at"]  # each version ends where the next began
    assert (await api.get(f"/posts/{post_id}")).json()["body"] == "v3"


async def test_history_pages_with_a_cursor(api: httpx.AsyncClient, stores: Stores):
    alice = await make_user(stores)
    post_id = await _post(api, alice, "v0")
    for body in ("v1", "v2"):
        await api.patch(f"/posts/{post_id}", json={"body": body}, headers=alice.headers)
    first = (await api.get(f"/posts/{post_id}/history", params={"limit": 1})).json()
    second = (await api.get(f"/posts/{post_id}/history",
                            params={"limit": 1, "cursor": first["next_cursor"]})).json()
    assert [v["body"] for v in first["items"] + second["items"]] == ["v1", "v0"]


async def test_an_unedited_post_has_an_empty_history_and_an_unknown_one_is_404(api: httpx.AsyncClient, stores: Stores):
    alice = await make_user(stores)
    post_id = await _post(api, alice)
    assert (await api.get(f"/posts/{post_id}/history")).json() == {"items": [], "next_cursor": None}
    assert (await api.get("/posts/999999/history")).status_code == 404


async def test_a_refused_edit_keeps_no_version(api: httpx.AsyncClient, stores: Stores):
    alice, mallory = await make_user(stores), await make_user(stores)
    post_id = await _post(api, alice)
    assert (await api.patch(f"/posts/{post_id}", json={"body": "x"}, headers=mallory.headers)).status_code == 403
    assert (await api.get(f"/posts/{post_id}/history")).json()["items"] == []


async def test_reposters_and_quoters_are_told_of_an_edit(api: httpx.AsyncClient, stores: Stores):
    alice, bob, carol, dave = [await make_user(stores) for _ in range(4)]
    post_id = await _post(api, alice)
    await api.put(f"/posts/{post_id}/repost", headers=bob.headers)
    await api.post("/posts", json={"body": "q", "quote_of": post_id}, headers=carol.headers)
    await api.patch(f"/posts/{post_id}", json={"body": "fixed"}, headers=alice.headers)

    async def told():
        events = await stores.mongo["events"].find({"type": "post.updated"}).to_list()
        return sorted((e["user_id"], e["data"]["post_id"], e["data"]["body"]) for e in events)

    expected = sorted([(bob.id, post_id, "fixed"), (carol.id, post_id, "fixed")])
    assert await eventually(told, expected) == expected
    assert dave.id not in [uid for uid, *_ in await told()]


async def test_a_quote_shows_the_quoted_posts_edit(api: httpx.AsyncClient, stores: Stores):
    alice, bob = await make_user(stores), await make_user(stores)
    post_id = await _post(api, alice, "typo")
    quote = (await api.post("/posts", json={"body": "q", "quote_of": post_id}, headers=bob.headers)).json()
    await api.get(f"/posts/{quote['id']}")  # cached
    await api.patch(f"/posts/{post_id}", json={"body": "fixed"}, headers=alice.headers)
    assert (await api.get(f"/posts/{quote['id']}")).json()["quote"]["body"] == "fixed"
