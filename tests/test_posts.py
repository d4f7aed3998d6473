"""Posts over real HTTP: create, read, edit, delete, likes, validation and authorization."""

from __future__ import annotations

import asyncio

import httpx

from nubo_backend.stores import Stores
from tests.factories import make_user
from tests.polling import eventually


async def _post(api: httpx.AsyncClient, user, body: str = "hello", **extra) -> dict:
    response = await api.post("/posts", json={"body": body, **extra}, headers=user.headers)
    assert response.status_code == 201, response.text
    return response.json()


async def test_created_post_has_author_counts_and_viewer_state(api: httpx.AsyncClient, stores: Stores):
    alice = await make_user(stores)
    post = await _post(api, alice, "first")
    assert post["author"] == {"id": alice.id, "username": alice.username, "display_name": "", "avatar_url": None}
    assert post["body"] == "first"
    assert (post["media_urls"], post["media"]) == ([], [])
    assert (post["like_count"], post["comment_count"], post["liked_by_me"]) == (0, 0, False)
    assert post["created_at"].endswith("Z") and post["edited_at"] is None

    assert (post["reposted_by_me"], post["bookmarked_by_me"]) == (False, False)
    got = await api.get(f"/posts/{post['id']}", headers=alice.headers)
    assert got.status_code == 200
    assert got.json() == post


async def test_posts_are_listed_newest_first_without_auth(api: httpx.AsyncClient, stores: Stores):
    alice, bob = await make_user(stores), await make_user(stores)
    ids = [(await _post(api, user, f"p{n}"))["id"] for n, user in enumerate([alice, bob, alice])]
    response = await api.get("/posts")
    assert response.status_code == 200
    body = response.json()
    assert [p["id"] for p in body["items"]] == ids[::-1]
    assert body["next_cursor"] is None
    assert all(p["liked_by_me"] is False for p in body["items"])


async def test_posting_requires_auth(api: httpx.AsyncClient):
    response = await api.post("/posts", json={"body": "x"})
    assert response.status_code == 401
    assert response.json()["code"] == "missing_authorization"


async def test_bad_post_bodies_are_refused_naming_the_field(api: httpx.AsyncClient, stores: Stores):
    alice = await make_user(stores)
    cases = [
        ({"body": ""}, "body"),
        ({"body": "   "}, "body"),
        ({}, "body"),
        ({"body": 12}, "body"),
        ({"body": "x", "title": "no"}, "title"),
        ({"body": "x" * (stores.settings.post_max_length + 1)}, "body"),
        ({"body": "x", "media_urls": ["https://cdn.example/a.png"]}, "media_urls"),  # read-only now
        ({"body": "x", "media_ids": ["1"]}, "media_ids.0"),
        ({"body": "x", "media_ids": [0]}, "media_ids.0"),
        ({"body": "x", "media_ids": list(range(1, 6))}, "media_ids"),
    ]
    for payload, field in cases:
        response = await api.post("/posts", json=payload, headers=alice.headers)
        assert response.status_code == 422, (payload, response.text)
        assert field in [d["field"] for d in response.json()["details"]], (payload, response.text)
    json_headers = {**alice.headers, "content-type": "application/json"}
    malformed = await api.post("/posts", content=b"{nope", headers=json_headers)
    assert malformed.status_code == 400


async def test_oversized_request_body_is_413(api: httpx.AsyncClient, stores: Stores):
    alice = await make_user(stores)
    response = await api.post("/posts", content=b"x" * (stores.settings.max_body_bytes + 10),
                              headers=alice.headers)
    assert response.status_code == 413


async def test_unknown_and_invalid_post_ids_are_404_never_500(api: httpx.AsyncClient, stores: Stores):
    alice = await make_user(stores)
    for path in ["/posts/999999", "/posts/abc", "/posts/99999999999999999999999", "/posts/0", "/posts/-1"]:
        response = await api.get(path)
        assert response.status_code == 404, (path, response.text)
        response = await api.patch(path, json={"body": "x"}, headers=alice.headers)
        assert response.status_code == 404, (path, response.text)
        response = await api.put(f"{path}/like", headers=alice.headers)
        assert response.status_code == 404, (path, response.text)


async def test_only_the_author_may_edit_or_delete_a_post(api: httpx.AsyncClient, stores: Stores):
    alice, mallory = await make_user(stores), await make_user(stores)
    post = await _post(api, alice)
    edit = await api.patch(f"/posts/{post['id']}", json={"body": "pwned"}, headers=mallory.headers)
    assert edit.status_code == 403
    delete = await api.delete(f"/posts/{post['id']}", headers=mallory.headers)
    assert delete.status_code == 403
    assert (await api.get(f"/posts/{post['id']}")).json()["body"] == "hello"


async def test_author_edit_is_visible_immediately(api: httpx.AsyncClient, stores: Stores):
    alice = await make_user(stores)
    post = await _post(api, alice)
    await api.get(f"/posts/{post['id']}")  # cached now
    edit = await api.patch(f"/posts/{post['id']}", json={"body": "edited"}, headers=alice.headers)
    assert edit.status_code == 200
    assert edit.json()["edited_at"] is not None
    got = (await api.get(f"/posts/{post['id']}")).json()
    assert got["body"] == "edited"
    assert (await api.get("/posts")).json()["items"][0]["body"] == "edited"


async def test_patch_needs_a_field_and_refuses_unknown_ones(api: httpx.AsyncClient, stores: Stores):
    alice = await make_user(stores)
    post = await _post(api, alice)
    assert (await api.patch(f"/posts/{post['id']}", json={}, headers=alice.headers)).status_code == 422
    response = await api.patch(f"/posts/{post['id']}", json={"likes": 5}, headers=alice.headers)
    assert response.status_code == 422
    assert response.json()["details"][0]["field"] == "likes"


async def test_deleting_a_post_removes_it_with_comments_and_likes(api: httpx.AsyncClient, stores: Stores):
    alice, bob = await make_user(stores), await make_user(stores)
    post = await _post(api, alice)
    await api.put(f"/posts/{post['id']}/like", headers=bob.headers)
    await api.post(f"/posts/{post['id']}/comments", json={"body": "nice"}, headers=bob.headers)
    await api.get(f"/posts/{post['id']}")
    await api.get("/posts")
    assert (await api.delete(f"/posts/{post['id']}", headers=alice.headers)).status_code == 204
    assert (await api.get(f"/posts/{post['id']}")).status_code == 404
    assert (await api.get("/posts")).json()["items"] == []
    assert (await api.delete(f"/posts/{post['id']}", headers=alice.headers)).status_code == 404
    left = await stores.pg.fetchrow(
        "SELECT (SELECT count(*) FROM comments) AS c, (SELECT count(*) FROM post_likes) AS l")
    assert (left["c"], left["l"]) == (0, 0)
    assert (await api.get(f"/users/{alice.id}")).json()["posts_count"] == 0


async def test_like_and_unlike_are_idempotent(api: httpx.AsyncClient, stores: Stores):
    alice, bob = await make_user(stores), await make_user(stores)
    post = await _post(api, alice)
    for _ in range(2):
        liked = await api.put(f"/posts/{post['id']}/like", headers=bob.headers)
        assert liked.status_code == 200
        assert (liked.json()["like_count"], liked.json()["liked_by_me"]) == (1, True)
    as_alice = (await api.get(f"/posts/{post['id']}", headers=alice.headers)).json()
    assert (as_alice["like_count"], as_alice["liked_by_me"]) == (1, False)
    as_bob = (await api.get("/posts", headers=bob.headers)).json()["items"][0]
    assert as_bob["liked_by_me"] is True
    for _ in range(2):
        unliked = await api.delete(f"/posts/{post['id']}/like", headers=bob.headers)
        assert (unliked.json()["like_count"], unliked.json()["liked_by_me"]) == (0, False)


async def test_like_notifies_the_author_once(api: httpx.AsyncClient, stores: Stores):
    alice, bob = await make_user(stores), await make_user(stores)
    post = await _post(api, alice)
    await api.put(f"/posts/{post['id']}/like", headers=bob.headers)
    await api.put(f"/posts/{post['id']}/like", headers=bob.headers)
    await api.put(f"/posts/{post['id']}/like", headers=alice.headers)  # own like: no notification
    async def notifications():
        docs = await stores.mongo["notifications"].find({"user_id": alice.id}).to_list()
        return [(d["type"], d["data"]["actor_id"], d["data"]["post_id"]) for d in docs]

    expected = [("like.created", bob.id, post["id"])]
    assert await eventually(notifications, expected) == expected
    await asyncio.sleep(0.2)  # and no second one
    assert await notifications() == expected


def test_a_first_page_without_a_query_string_has_the_defaults_parse_query_would_give() -> None:
    from types import SimpleNamespace

    from nubo_backend.edge.pagination import PageQuery
    from nubo_backend.edge.validation import validate
    from nubo_backend.posts.routes import _page_query

    assert _page_query(SimpleNamespace(query_string="")) == validate(PageQuery, {})
