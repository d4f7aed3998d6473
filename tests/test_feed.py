"""The feed and every post list: content, order, and keyset pages while rows keep arriving."""

from __future__ import annotations

import httpx

from nubo_backend.stores import Stores
from tests.factories import make_user
from tests.polling import eventually


async def _post(api: httpx.AsyncClient, user, body: str = "p") -> int:
    response = await api.post("/posts", json={"body": body}, headers=user.headers)
    assert response.status_code == 201
    return response.json()["id"]


async def _walk(api: httpx.AsyncClient, path: str, headers: dict, limit: int, between=None) -> list[int]:
    """Every id of a paginated list; `between` runs after each page (to insert rows meanwhile)."""
    seen, cursor = [], None
    while True:
        params = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        response = await api.get(path, params=params, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        seen += [p["id"] for p in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return seen
        if between:
            await between()


async def feed_ids(api: httpx.AsyncClient, user) -> list[int]:
    return [p["id"] for p in (await api.get("/feed", headers=user.headers)).json()["items"]]


async def test_feed_has_followed_and_own_posts_newest_first(api: httpx.AsyncClient, stores: Stores):
    me, friend, stranger = await make_user(stores), await make_user(stores), await make_user(stores)
    await api.post(f"/users/{friend.id}/follow", headers=me.headers)
    expected = [await _post(api, friend), await _post(api, me)]
    await _post(api, stranger)
    expected.append(await _post(api, friend))
    body = (await api.get("/feed", headers=me.headers)).json()
    assert [p["id"] for p in body["items"]] == expected[::-1]
    assert body["next_cursor"] is None


async def test_feed_first_page_follows_new_posts_follows_and_unfollows(api: httpx.AsyncClient, stores: Stores):
    me, friend = await make_user(stores), await make_user(stores)
    old = await _post(api, friend)
    assert (await api.get("/feed", headers=me.headers)).json()["items"] == []  # cached empty
    await api.post(f"/users/{friend.id}/follow", headers=me.headers)
    assert [p["id"] for p in (await api.get("/feed", headers=me.headers)).json()["items"]] == [old]
    new = await _post(api, friend)
    # Followers' cached first pages are dropped by the relay as it walks the author's audience
    # (outbox/audience.py), just after the commit; a deleted post drops out at once.
    assert await eventually(lambda: feed_ids(api, me), [new, old]) == [new, old]
    await api.delete(f"/posts/{new}", headers=friend.headers)
    assert [p["id"] for p in (await api.get("/feed", headers=me.headers)).json()["items"]] == [old]
    await api.delete(f"/users/{friend.id}/follow", headers=me.headers)
    assert (await api.get("/feed", headers=me.headers)).json()["items"] == []


async def test_cached_first_page_reads_exactly_like_the_page_built_from_postgres(
    api: httpx.AsyncClient, stores: Stores
):
    me, friend = await make_user(stores), await make_user(stores)
    await api.post(f"/users/{friend.id}/follow", headers=me.headers)
    posts = [await _post(api, friend, f"post {n}") for n in range(3)]
    await api.put(f"/posts/{posts[1]}/like", headers=me.headers)
    for path in ("/feed", "/posts"):
        built = await api.get(path, params={"limit": 2}, headers=me.headers)  # ids and likes loaded
        cached = await api.get(path, params={"limit": 2}, headers=me.headers)  # one Redis round trip
        assert cached.json() == built.json()
        assert [(p["id"], p["liked_by_me"]) for p in cached.json()["items"]] == [(posts[2], False), (posts[1], True)]
        rest = await api.get(path, params={"cursor": cached.json()["next_cursor"]}, headers=me.headers)
        assert [p["id"] for p in rest.json()["items"]][:1] == [posts[0]]


async def test_feed_requires_auth(api: httpx.AsyncClient):
    assert (await api.get("/feed")).status_code == 401


async def test_pages_have_no_duplicates_or_gaps_while_posts_arrive(api: httpx.AsyncClient, stores: Stores):
    me, friend = await make_user(stores), await make_user(stores)
    await api.post(f"/users/{friend.id}/follow", headers=me.headers)
    existing = [await _post(api, friend if n % 2 else me, f"p{n}") for n in range(25)]
    inserted: list[int] = []

    async def another_post() -> None:
        inserted.append(await _post(api, friend, "meanwhile"))

    assert await _walk(api, "/posts", me.headers, limit=100) == existing[::-1]
    for path in ["/posts", "/feed", f"/users/{friend.id}/posts"]:
        before = await _walk(api, path, me.headers, limit=100)
        inserted.clear()
        seen = await _walk(api, path, me.headers, limit=4, between=another_post)
        assert seen == before, path  # every row once, in order; none of those added meanwhile
        assert inserted and not set(seen) & set(inserted), path


async def test_limit_and_cursor_are_validated(api: httpx.AsyncClient, stores: Stores):
    me = await make_user(stores)
    for params in [{"limit": 0}, {"limit": 101}, {"limit": "many"}, {"limit": "5.0"}, {"limit": "+5"},
                   {"limit": "1_0"}, {"limit": "\uff15"}]:
        assert (await api.get("/posts", params=params)).status_code == 422, params
    for cursor in ["garbage!", "WzFd", "WyJ4Il0", "WzEsMl0", "Wy0xXQ"]:  # [1] is fine; ["x"], [1,2], [-1] not
        response = await api.get("/posts", params={"cursor": cursor})
        expected = 200 if cursor == "WzFd" else 400
        assert response.status_code == expected, (cursor, response.text)
    assert (await api.get("/feed", params={"cursor": "WyJ4Il0"}, headers=me.headers)).status_code == 400


async def test_default_limit_is_20_and_max_is_100(api: httpx.AsyncClient, stores: Stores):
    me = await make_user(stores)
    await stores.pg.execute(
        "INSERT INTO posts (author_id, body) SELECT $1, 'bulk ' || n FROM generate_series(1, 120) n", me.id)
    assert len((await api.get("/posts")).json()["items"]) == 20
    full = (await api.get("/posts", params={"limit": 100})).json()
    assert len(full["items"]) == 100 and full["next_cursor"]
    assert len((await api.get("/feed", params={"limit": 100}, headers=me.headers)).json()["items"]) == 100
