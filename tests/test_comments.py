"""Comments over real HTTP: add, list, edit, delete, counts and who may do what."""

from __future__ import annotations

import httpx

from nubo_backend.stores import Stores
from tests.factories import make_user
from tests.polling import eventually


async def _setup(api: httpx.AsyncClient, stores: Stores):
    alice, bob, carol = await make_user(stores), await make_user(stores), await make_user(stores)
    post = (await api.post("/posts", json={"body": "post"}, headers=alice.headers)).json()
    return alice, bob, carol, post


async def test_comment_is_listed_counted_and_notified(api: httpx.AsyncClient, stores: Stores):
    alice, bob, _, post = await _setup(api, stores)
    await api.get(f"/posts/{post['id']}")  # cached before the comment
    created = await api.post(f"/posts/{post['id']}/comments", json={"body": "nice"}, headers=bob.headers)
    assert created.status_code == 201
    comment = created.json()
    assert (comment["post_id"], comment["author"]["id"], comment["body"]) == (post["id"], bob.id, "nice")
    listed = (await api.get(f"/posts/{post['id']}/comments")).json()
    assert [c["id"] for c in listed["items"]] == [comment["id"]]
    assert (await api.get(f"/posts/{post['id']}")).json()["comment_count"] == 1
    async def notifications():
        docs = await stores.mongo["notifications"].find({"user_id": alice.id}).to_list()
        return [(d["type"], d["data"]["actor_id"], d["data"]["comment_id"]) for d in docs]

    expected = [("comment.created", bob.id, comment["id"])]
    assert await eventually(notifications, expected) == expected


async def test_comments_page_oldest_first(api: httpx.AsyncClient, stores: Stores):
    _, bob, _, post = await _setup(api, stores)
    ids = [(await api.post(f"/posts/{post['id']}/comments", json={"body": f"c{n}"}, headers=bob.headers)).json()["id"]
           for n in range(3)]
    first = (await api.get(f"/posts/{post['id']}/comments", params={"limit": 2})).json()
    params = {"limit": 2, "cursor": first["next_cursor"]}
    second = (await api.get(f"/posts/{post['id']}/comments", params=params)).json()
    assert [c["id"] for c in first["items"] + second["items"]] == ids
    assert second["next_cursor"] is None


async def test_bad_comments_are_refused(api: httpx.AsyncClient, stores: Stores):
    _, bob, _, post = await _setup(api, stores)
    too_long = "x" * (stores.settings.comment_max_length + 1)
    for payload, field in [({"body": ""}, "body"), ({"body": too_long}, "body"), ({"body": "x", "y": 1}, "y")]:
        response = await api.post(f"/posts/{post['id']}/comments", json=payload, headers=bob.headers)
        assert response.status_code == 422
        assert response.json()["details"][0]["field"] == field
    assert (await api.post("/posts/987654/comments", json={"body": "x"}, headers=bob.headers)).status_code == 404
    assert (await api.get("/posts/987654/comments")).status_code == 404
    assert (await api.get(f"/posts/{post['id']}/comments", params={"cursor": "garbage!"})).status_code == 400


async def test_only_the_comment_author_edits(api: httpx.AsyncClient, stores: Stores):
    alice, bob, _, post = await _setup(api, stores)
    comment = (await api.post(f"/posts/{post['id']}/comments", json={"body": "v1"}, headers=bob.headers)).json()
    # Not even the post's author may edit someone else's comment.
    denied = await api.patch(f"/comments/{comment['id']}", json={"body": "x"}, headers=alice.headers)
    assert denied.status_code == 403
    edited = await api.patch(f"/comments/{comment['id']}", json={"body": "v2"}, headers=bob.headers)
    assert edited.status_code == 200
    assert (edited.json()["body"], edited.json()["edited_at"] is not None) == ("v2", True)
    assert (await api.patch("/comments/55555", json={"body": "x"}, headers=bob.headers)).status_code == 404


async def test_comment_deleted_by_its_author_or_the_posts_author_only(api: httpx.AsyncClient, stores: Stores):
    alice, bob, carol, post = await _setup(api, stores)
    first = (await api.post(f"/posts/{post['id']}/comments", json={"body": "1"}, headers=bob.headers)).json()
    second = (await api.post(f"/posts/{post['id']}/comments", json={"body": "2"}, headers=bob.headers)).json()
    assert (await api.delete(f"/comments/{first['id']}", headers=carol.headers)).status_code == 403
    assert (await api.delete(f"/comments/{first['id']}", headers=bob.headers)).status_code == 204
    assert (await api.delete(f"/comments/{second['id']}", headers=alice.headers)).status_code == 204
    assert (await api.delete(f"/comments/{second['id']}", headers=alice.headers)).status_code == 404
    assert (await api.get(f"/posts/{post['id']}")).json()["comment_count"] == 0
    assert (await api.get(f"/posts/{post['id']}/comments")).json()["items"] == []
