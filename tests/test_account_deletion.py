"""DELETE /me erases an account and leaves everyone else's counters and pages right."""

from __future__ import annotations

import httpx

from nubo_backend.stores import Stores
from tests.factories import PASSWORD, make_user


async def test_deletion_needs_the_password(api: httpx.AsyncClient, stores: Stores) -> None:
    alice = await make_user(stores)
    wrong = await api.request("DELETE", "/me", json={"password": "not it at all"}, headers=alice.headers)
    missing = await api.request("DELETE", "/me", json={}, headers=alice.headers)
    assert wrong.status_code == 403 and wrong.json()["code"] == "wrong_password"
    assert missing.status_code == 422
    assert (await api.get("/me", headers=alice.headers)).status_code == 200


async def test_deleted_account_is_gone_and_its_tokens_with_it(api: httpx.AsyncClient, stores: Stores) -> None:
    alice = await make_user(stores)
    post = (await api.post("/posts", json={"body": "soon gone"}, headers=alice.headers)).json()
    assert (await api.get(f"/posts/{post['id']}")).status_code == 200  # cached now
    assert (await api.get("/posts")).json()["items"][0]["id"] == post["id"]  # front page cached

    deleted = await api.request("DELETE", "/me", json={"password": PASSWORD}, headers=alice.headers)
    assert deleted.status_code == 204

    assert (await api.get("/me", headers=alice.headers)).json()["error"] == "Token invalide"
    assert (await api.get(f"/users/{alice.id}")).status_code == 404
    assert (await api.get(f"/posts/{post['id']}")).status_code == 404
    assert (await api.get("/posts")).json()["items"] == []
    login = await api.post("/login", json={"username": alice.username, "password": PASSWORD})
    assert login.status_code == 401


async def test_deleted_accounts_temporary_history_goes_too(api: httpx.AsyncClient, stores: Stores) -> None:
    from datetime import UTC, datetime

    alice = await make_user(stores)
    now = datetime.now(UTC)
    for collection in ("events", "notifications", "broadcasts"):
        await stores.mongo[collection].insert_one({"user_id": alice.id, "id": 1, "created_at": now})
    await api.request("DELETE", "/me", json={"password": PASSWORD}, headers=alice.headers)
    for collection in ("events", "notifications", "broadcasts"):
        assert await stores.mongo[collection].count_documents({"user_id": alice.id}) == 0, collection


async def test_others_counters_lose_the_deleted_accounts_marks(api: httpx.AsyncClient, stores: Stores) -> None:
    alice, bob = await make_user(stores), await make_user(stores)
    post = (await api.post("/posts", json={"body": "bob's"}, headers=bob.headers)).json()
    await api.post(f"/users/{bob.id}/follow", headers=alice.headers)
    await api.post(f"/users/{alice.id}/follow", headers=bob.headers)  # mutual
    await api.put(f"/posts/{post['id']}/like", headers=alice.headers)
    for text in ("one", "two"):
        await api.post(f"/posts/{post['id']}/comments", json={"body": text}, headers=alice.headers)
    before = (await api.get(f"/users/{bob.id}")).json()
    assert (before["followers_count"], before["following_count"]) == (1, 1)  # and cached
    assert (await api.get(f"/posts/{post['id']}")).json()["comment_count"] == 2

    await api.request("DELETE", "/me", json={"password": PASSWORD}, headers=alice.headers)

    profile = (await api.get(f"/users/{bob.id}")).json()
    assert (profile["followers_count"], profile["following_count"]) == (0, 0)
    seen = (await api.get(f"/posts/{post['id']}")).json()
    assert (seen["like_count"], seen["comment_count"]) == (0, 0)
    assert await stores.pg.fetchval("SELECT count(*) FROM comments") == 0
    assert await stores.pg.fetchval("SELECT count(*) FROM post_likes") == 0


async def test_messages_of_a_deleted_account_stay_without_a_sender(api: httpx.AsyncClient, stores: Stores) -> None:
    alice, bob = await make_user(stores), await make_user(stores)
    cid = (await api.post("/conversations", json={"user_id": bob.id}, headers=alice.headers)).json()["id"]
    await api.post(f"/conversations/{cid}/messages", json={"body": "bye"}, headers=alice.headers)
    await api.request("DELETE", "/me", json={"password": PASSWORD}, headers=alice.headers)
    messages = (await api.get(f"/conversations/{cid}/messages", headers=bob.headers)).json()["items"]
    assert [(m["body"], m["sender_id"]) for m in messages] == [("bye", None)]
