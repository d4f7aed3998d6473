"""Counters stay equal to COUNT(*) under concurrent requests through the real server."""

from __future__ import annotations

import asyncio
import random

import httpx

from nubo_backend.stores import Stores
from tests.factories import make_user


async def test_like_count_is_exact_under_concurrent_likes_and_unlikes(api: httpx.AsyncClient, stores: Stores):
    author = await make_user(stores)
    likers = [await make_user(stores) for _ in range(10)]
    post_id = (await api.post("/posts", json={"body": "hot"}, headers=author.headers)).json()["id"]
    rng = random.Random(4)
    calls = [(rng.choice(["PUT", "DELETE"]), rng.choice(likers)) for _ in range(60)]
    responses = await asyncio.gather(
        *(api.request(method, f"/posts/{post_id}/like", headers=user.headers) for method, user in calls)
    )
    assert {r.status_code for r in responses} == {200}
    row = await stores.pg.fetchrow(
        "SELECT like_count, (SELECT count(*) FROM post_likes WHERE post_id = $1) AS actual FROM posts WHERE id = $1",
        post_id)
    assert row["like_count"] == row["actual"]
    assert (await api.get(f"/posts/{post_id}")).json()["like_count"] == row["actual"]
    likers_now = {r["user_id"] for r in await stores.pg.fetch("SELECT user_id FROM post_likes")}
    for user in likers:  # each viewer's cached liked_by_me agrees with PostgreSQL too
        for path in (f"/posts/{post_id}", "/posts"):
            body = (await api.get(path, headers=user.headers)).json()
            seen = body if path != "/posts" else body["items"][0]
            assert seen["liked_by_me"] is (user.id in likers_now), (user.id, path)


async def test_comment_count_is_exact_under_concurrent_adds_and_deletes(api: httpx.AsyncClient, stores: Stores):
    author, bob = await make_user(stores), await make_user(stores)
    post_id = (await api.post("/posts", json={"body": "p"}, headers=author.headers)).json()["id"]
    first = await asyncio.gather(*(api.post(f"/posts/{post_id}/comments", json={"body": f"c{n}"},
                                            headers=bob.headers) for n in range(20)))
    ids = [r.json()["id"] for r in first]
    adds = [api.post(f"/posts/{post_id}/comments", json={"body": "more"}, headers=bob.headers) for _ in range(15)]
    deletes = [api.delete(f"/comments/{cid}", headers=author.headers) for cid in ids for _ in range(2)]
    responses = await asyncio.gather(*adds, *deletes)
    assert {r.status_code for r in responses} <= {201, 204, 404}
    row = await stores.pg.fetchrow(
        "SELECT comment_count, (SELECT count(*) FROM comments WHERE post_id = $1) AS actual FROM posts WHERE id = $1",
        post_id)
    assert row["comment_count"] == row["actual"] == 15


async def test_follow_counts_are_exact_under_crossed_concurrent_follows(api: httpx.AsyncClient, stores: Stores):
    users = [await make_user(stores) for _ in range(6)]
    rng = random.Random(7)
    calls = []
    for _ in range(60):
        a, b = rng.sample(users, 2)
        calls.append(api.request(rng.choice(["POST", "DELETE"]), f"/users/{b.id}/follow", headers=a.headers))
    assert {r.status_code for r in await asyncio.gather(*calls)} == {200}
    mismatches = await stores.pg.fetch(
        """SELECT u.id FROM users u
           WHERE followers_count <> (SELECT count(*) FROM follows WHERE followed_id = u.id)
              OR following_count <> (SELECT count(*) FROM follows WHERE follower_id = u.id)""")
    assert mismatches == []


async def test_post_deleted_while_being_liked_never_fails_with_500(api: httpx.AsyncClient, stores: Stores):
    author = await make_user(stores)
    likers = [await make_user(stores) for _ in range(8)]
    for _ in range(3):
        post_id = (await api.post("/posts", json={"body": "p"}, headers=author.headers)).json()["id"]
        likes = [api.put(f"/posts/{post_id}/like", headers=u.headers) for u in likers]
        comments = [api.post(f"/posts/{post_id}/comments", json={"body": "c"}, headers=u.headers) for u in likers]
        responses = await asyncio.gather(*likes[:4], api.delete(f"/posts/{post_id}", headers=author.headers),
                                         *likes[4:], *comments)
        assert {r.status_code for r in responses} <= {200, 201, 204, 404}, [r.text for r in responses]
    left = await stores.pg.fetchval("SELECT count(*) FROM post_likes")
    assert left == 0
    assert await stores.pg.fetchval("SELECT posts_count FROM users WHERE id = $1", author.id) == 0
