"""The viewer's own flags on posts (`liked_by_me`, `reposted_by_me`, `bookmarked_by_me`) in
every list of posts, as on a single post: built from PostgreSQL, read back from the cache,
after the viewer changes them, and for another viewer."""

from __future__ import annotations

import secrets
import string

import httpx

from nubo_backend.stores import Stores
from tests.factories import make_user
from tests.polling import eventually


def _word() -> str:
    """A word no other test's post contains (letters only: searchable and a valid tag)."""
    return "flag" + "".join(secrets.choice(string.ascii_lowercase) for _ in range(10))


def _lists(author_id: int, word: str) -> list[tuple[str, dict]]:
    """Every list a post of the author's with `word` (and its tag) shows in, for its follower."""
    return [
        ("/feed", {"limit": 100}),
        ("/posts", {"limit": 100}),
        (f"/users/{author_id}/posts", {}),
        (f"/tags/{word}/posts", {}),
        ("/search/posts", {"q": word}),
    ]


async def _flags(api: httpx.AsyncClient, path: str, params: dict, user, ids: list[int]) -> dict[int, tuple]:
    response = await api.get(path, params=params, headers=user.headers)
    assert response.status_code == 200, response.text
    return {p["id"]: (p["liked_by_me"], p["reposted_by_me"], p["bookmarked_by_me"])
            for p in response.json()["items"] if p["id"] in ids}


async def test_every_list_of_posts_carries_the_viewers_like_repost_and_bookmark(
    api: httpx.AsyncClient, stores: Stores
):
    author, me, other = await make_user(stores), await make_user(stores), await make_user(stores)
    for follower in (me, other):
        await api.post(f"/users/{author.id}/follow", headers=follower.headers)
    word = _word()
    ids = []
    for n in range(3):
        created = await api.post("/posts", json={"body": f"{word} #{word} {n}"}, headers=author.headers)
        ids.append(created.json()["id"])
    liked, reposted, bookmarked = ids
    assert (await api.put(f"/posts/{liked}/like", headers=me.headers)).status_code == 200
    assert (await api.put(f"/posts/{reposted}/repost", headers=me.headers)).status_code == 200
    assert (await api.put(f"/posts/{bookmarked}/bookmark", headers=me.headers)).status_code == 200
    mine = {liked: (True, False, False), reposted: (False, True, False), bookmarked: (False, False, True)}
    nobodys = dict.fromkeys(ids, (False, False, False))

    for path, params in [*_lists(author.id, word), ("/me/bookmarks", {})]:
        expected = mine if path != "/me/bookmarks" else {bookmarked: mine[bookmarked]}
        built = await _flags(api, path, params, me, ids)  # sets and pages loaded from PostgreSQL
        cached = await _flags(api, path, params, me, ids)  # read back from Redis
        assert (path, built) == (path, expected)
        assert (path, cached) == (path, expected)
    for path, params in _lists(author.id, word):
        assert (path, await _flags(api, path, params, other, ids)) == (path, nobodys)

    await api.delete(f"/posts/{liked}/like", headers=me.headers)
    await api.delete(f"/posts/{reposted}/repost", headers=me.headers)
    await api.delete(f"/posts/{bookmarked}/bookmark", headers=me.headers)
    for path, params in _lists(author.id, word):
        # The feed's cached first page is dropped by the relay, just after the commit.
        seen = await eventually(lambda path=path, params=params: _flags(api, path, params, me, ids), nobodys)
        assert (path, seen) == (path, nobodys)


async def test_a_post_in_a_feed_only_through_a_repost_is_reposted_by_the_reposter(
    api: httpx.AsyncClient, stores: Stores
):
    author, me = await make_user(stores), await make_user(stores)
    post_id = (await api.post("/posts", json={"body": "shared"}, headers=author.headers)).json()["id"]
    await api.get("/feed", headers=me.headers)  # a cached first page, and cached sets, before the repost
    await api.put(f"/posts/{post_id}/repost", headers=me.headers)
    items = (await api.get("/feed", headers=me.headers)).json()["items"]
    assert [(p["id"], p["reposted_by_me"], p["bookmarked_by_me"]) for p in items] == [(post_id, True, False)]


async def test_a_signed_out_reader_gets_only_liked_by_me_false(api: httpx.AsyncClient, stores: Stores):
    author = await make_user(stores)
    post_id = (await api.post("/posts", json={"body": "public"}, headers=author.headers)).json()["id"]
    for path in (f"/posts/{post_id}", f"/users/{author.id}/posts"):
        body = (await api.get(path)).json()
        post = body["items"][0] if "items" in body else body
        assert (post["liked_by_me"], "reposted_by_me" in post, "bookmarked_by_me" in post) == (False, False, False)
