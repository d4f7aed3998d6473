"""Reposts and quotes over real HTTP: idempotence, counts, the feed (once per post), notifications,
tombstones, and blocks."""

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


async def _feed_ids(api: httpx.AsyncClient, user, **params) -> list[int]:
    response = await api.get("/feed", params=params, headers=user.headers)
    assert response.status_code == 200, response.text
    return [p["id"] for p in response.json()["items"]]


async def _notifications(stores: Stores, user_id: int, kind: str) -> list[dict]:
    docs = await stores.mongo["notifications"].find({"user_id": user_id, "type": kind}).to_list()
    return [d["data"] for d in docs]


async def test_repost_and_unrepost_are_idempotent_and_counted(api: httpx.AsyncClient, stores: Stores):
    alice, bob = await make_user(stores), await make_user(stores)
    post = await _post(api, alice)
    for _ in range(2):
        reposted = await api.put(f"/posts/{post['id']}/repost", headers=bob.headers)
        assert reposted.status_code == 200, reposted.text
        assert (reposted.json()["repost_count"], reposted.json()["reposted_by_me"]) == (1, True)
    as_alice = (await api.get(f"/posts/{post['id']}", headers=alice.headers)).json()
    assert (as_alice["repost_count"], as_alice["reposted_by_me"]) == (1, False)
    for _ in range(2):
        undone = await api.delete(f"/posts/{post['id']}/repost", headers=bob.headers)
        assert (undone.json()["repost_count"], undone.json()["reposted_by_me"]) == (0, False)


async def test_reposts_list_the_reposters_newest_first(api: httpx.AsyncClient, stores: Stores):
    alice, bob, carol = await make_user(stores), await make_user(stores), await make_user(stores)
    post = await _post(api, alice)
    for user in (bob, carol):
        await api.put(f"/posts/{post['id']}/repost", headers=user.headers)
    first = (await api.get(f"/posts/{post['id']}/reposts", params={"limit": 1})).json()
    second = (await api.get(f"/posts/{post['id']}/reposts",
                            params={"limit": 1, "cursor": first["next_cursor"]})).json()
    assert [u["id"] for u in first["items"] + second["items"]] == [carol.id, bob.id]
    assert second["next_cursor"] is None


async def test_a_repost_puts_the_post_in_the_reposters_followers_feed(api: httpx.AsyncClient, stores: Stores):
    author, reposter, reader = await make_user(stores), await make_user(stores), await make_user(stores)
    await api.post(f"/users/{reposter.id}/follow", headers=reader.headers)
    old = await _post(api, author, "old")
    newer = await _post(api, reposter, "mine")
    assert await _feed_ids(api, reader) == [newer["id"]]  # cached first page
    await api.put(f"/posts/{old['id']}/repost", headers=reposter.headers)
    assert await _feed_ids(api, reader) == [old["id"], newer["id"]]  # at the repost's place in time
    await api.delete(f"/posts/{old['id']}/repost", headers=reposter.headers)
    assert await _feed_ids(api, reader) == [newer["id"]]


async def test_a_post_reposted_by_fifty_followees_shows_once_in_the_feed(api: httpx.AsyncClient, stores: Stores):
    reader, author = await make_user(stores), await make_user(stores)
    followees = [await make_user(stores) for _ in range(50)]
    post = await _post(api, author)
    for followee in followees:
        await api.post(f"/users/{followee.id}/follow", headers=reader.headers)
        await _post(api, followee, "own")
        await api.put(f"/posts/{post['id']}/repost", headers=followee.headers)
    seen, cursor = [], None
    while True:  # small pages, so that reposts of it fall on every page's far side
        params = {"limit": 7, **({"cursor": cursor} if cursor else {})}
        body = (await api.get("/feed", params=params, headers=reader.headers)).json()
        seen += [p["id"] for p in body["items"]]
        if (cursor := body["next_cursor"]) is None:
            break
    assert seen.count(post["id"]) == 1
    assert seen[0] == post["id"]  # at its newest repost, after every followee's own post
    assert len(seen) == 51 and len(set(seen)) == 51


async def test_repost_notifies_the_author_once(api: httpx.AsyncClient, stores: Stores):
    alice, bob = await make_user(stores), await make_user(stores)
    post = await _post(api, alice)
    await api.put(f"/posts/{post['id']}/repost", headers=bob.headers)
    await api.put(f"/posts/{post['id']}/repost", headers=bob.headers)
    await api.put(f"/posts/{post['id']}/repost", headers=alice.headers)  # own repost: no notification

    async def seen():
        return [(d["actor_id"], d["post_id"]) for d in await _notifications(stores, alice.id, "repost.created")]

    assert await eventually(seen, [(bob.id, post["id"])]) == [(bob.id, post["id"])]
    await asyncio.sleep(0.2)  # and no second one
    assert await seen() == [(bob.id, post["id"])]


async def test_a_quote_embeds_the_quoted_post_and_notifies_its_author(api: httpx.AsyncClient, stores: Stores):
    alice, bob = await make_user(stores), await make_user(stores)
    original = await _post(api, alice, "original")
    quote = await _post(api, bob, "so true", quote_of=original["id"])
    assert quote["quote_of"] == original["id"]
    assert (quote["quote"]["deleted"], quote["quote"]["body"], quote["quote"]["author"]["id"]) == (
        False, "original", alice.id)
    assert (await api.get(f"/posts/{quote['id']}")).json()["quote"] == quote["quote"]

    async def seen():
        return [(d["post_id"], d["quote_id"]) for d in await _notifications(stores, alice.id, "quote.created")]

    assert await eventually(seen, [(original["id"], quote["id"])]) == [(original["id"], quote["id"])]


async def test_a_quote_of_a_deleted_post_shows_a_tombstone(api: httpx.AsyncClient, stores: Stores):
    alice, bob = await make_user(stores), await make_user(stores)
    original = await _post(api, alice, "original")
    quote = await _post(api, bob, "so true", quote_of=original["id"])
    await api.get(f"/posts/{quote['id']}")  # cached with the summary
    assert (await api.delete(f"/posts/{original['id']}", headers=alice.headers)).status_code == 204
    got = (await api.get(f"/posts/{quote['id']}")).json()
    assert got["quote"] == {"id": original["id"], "deleted": True, "author": None, "body": None,
                            "created_at": None, "edited_at": None}
    assert got["body"] == "so true"


async def test_reposts_of_a_deleted_post_vanish_from_feeds(api: httpx.AsyncClient, stores: Stores):
    author, reposter, reader = await make_user(stores), await make_user(stores), await make_user(stores)
    await api.post(f"/users/{reposter.id}/follow", headers=reader.headers)
    post = await _post(api, author)
    await api.put(f"/posts/{post['id']}/repost", headers=reposter.headers)
    assert await _feed_ids(api, reader) == [post["id"]]
    await api.delete(f"/posts/{post['id']}", headers=author.headers)
    assert await _feed_ids(api, reader) == []
    assert await stores.pg.fetchval("SELECT count(*) FROM reposts") == 0


async def test_quoting_or_reposting_across_a_block_is_404(api: httpx.AsyncClient, stores: Stores):
    alice, bob = await make_user(stores), await make_user(stores)
    post = await _post(api, alice)
    await api.put(f"/users/{bob.id}/block", headers=alice.headers)
    assert (await api.put(f"/posts/{post['id']}/repost", headers=bob.headers)).status_code == 404
    quoted = await api.post("/posts", json={"body": "x", "quote_of": post["id"]}, headers=bob.headers)
    assert quoted.status_code == 404
    assert quoted.json()["code"] == "post_not_found"


async def test_a_quote_of_a_blocked_author_is_hidden_from_the_blocker(api: httpx.AsyncClient, stores: Stores):
    alice, bob, carol = await make_user(stores), await make_user(stores), await make_user(stores)
    original = await _post(api, alice, "original")
    quote = await _post(api, carol, "look", quote_of=original["id"])
    await api.put(f"/users/{alice.id}/block", headers=bob.headers)
    ids = [p["id"] for p in (await api.get("/posts", headers=bob.headers)).json()["items"]]
    assert quote["id"] not in ids


async def test_a_quote_of_a_missing_post_is_404(api: httpx.AsyncClient, stores: Stores):
    alice = await make_user(stores)
    response = await api.post("/posts", json={"body": "x", "quote_of": 999999}, headers=alice.headers)
    assert response.status_code == 404


async def test_a_repost_of_a_muted_authors_post_stays_out_of_the_muters_feed(api: httpx.AsyncClient, stores: Stores):
    reader, reposter, muted = await make_user(stores), await make_user(stores), await make_user(stores)
    await api.post(f"/users/{reposter.id}/follow", headers=reader.headers)
    await api.put(f"/users/{muted.id}/mute", headers=reader.headers)
    hidden, shown = await _post(api, muted, "muted"), await _post(api, reposter, "fine")
    await api.put(f"/posts/{hidden['id']}/repost", headers=reposter.headers)
    assert await _feed_ids(api, reader) == [shown["id"]]
