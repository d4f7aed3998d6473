"""@mentions notify the people they name, once each, through the real server."""

from __future__ import annotations

import httpx

from nubo_backend.posts.mentions import MAX_MENTIONS, mentioned_usernames
from nubo_backend.stores import Stores
from tests.factories import make_user
from tests.polling import eventually


def test_mentions_are_distinct_usernames_and_ignore_email_addresses() -> None:
    text = "hi @Bob and @bob, mail bob@example.com, @al is too short, @carol_9! @@x @dave."
    assert mentioned_usernames(text) == ["bob", "carol_9", "dave"]


def test_mentions_per_text_are_bounded() -> None:
    text = " ".join(f"@user{n:03d}" for n in range(MAX_MENTIONS + 5))
    assert len(mentioned_usernames(text)) == MAX_MENTIONS


async def mentions_of(stores: Stores, user_id: int) -> list[tuple]:
    docs = await stores.mongo["notifications"].find({"user_id": user_id, "type": "mention.created"}).to_list()
    return sorted((d["data"]["actor_id"], d["data"]["post_id"], d["data"].get("comment_id")) for d in docs)


async def test_a_post_mentioning_someone_notifies_them(api: httpx.AsyncClient, stores: Stores) -> None:
    alice, bob, carol = await make_user(stores), await make_user(stores), await make_user(stores)
    body = f"lunch with @{bob.username.upper()} and @{alice.username} and @nobody_here?"
    post = (await api.post("/posts", json={"body": body}, headers=alice.headers)).json()
    expected = [(alice.id, post["id"], None)]
    assert await eventually(lambda: mentions_of(stores, bob.id), expected) == expected
    assert await mentions_of(stores, alice.id) == []  # nobody is notified of their own mention
    assert await mentions_of(stores, carol.id) == []


async def test_a_comment_mentioning_someone_notifies_them(api: httpx.AsyncClient, stores: Stores) -> None:
    alice, bob, carol = await make_user(stores), await make_user(stores), await make_user(stores)
    post = (await api.post("/posts", json={"body": "hello"}, headers=alice.headers)).json()
    comment = (await api.post(f"/posts/{post['id']}/comments", json={"body": f"cc @{carol.username}"},
                              headers=bob.headers)).json()
    expected = [(bob.id, post["id"], comment["id"])]
    assert await eventually(lambda: mentions_of(stores, carol.id), expected) == expected
