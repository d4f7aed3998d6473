"""Edit history of messages over real HTTP: versions kept newest first, members only, gone
with the message."""

from __future__ import annotations

import httpx

from nubo_backend.stores import Stores
from tests.factories import make_user


async def _message(api: httpx.AsyncClient, alice, bob) -> int:
    cid = (await api.post("/conversations", json={"user_id": bob.id}, headers=alice.headers)).json()["id"]
    return (await api.post(f"/conversations/{cid}/messages", json={"body": "v0"}, headers=alice.headers)).json()["id"]


async def test_message_history_after_three_edits_lists_the_replaced_versions_newest_first(
    api: httpx.AsyncClient, stores: Stores
):
    alice, bob = await make_user(stores), await make_user(stores)
    mid = await _message(api, alice, bob)
    for body in ("v1", "v2", "v3"):
        assert (await api.patch(f"/messages/{mid}", json={"body": body}, headers=alice.headers)).status_code == 200
    history = (await api.get(f"/messages/{mid}/history", headers=bob.headers)).json()
    assert [v["body"] for v in history["items"]] == ["v2", "v1", "v0"]
    assert history["next_cursor"] is None


async def test_message_history_is_for_members_only(api: httpx.AsyncClient, stores: Stores):
    alice, bob, mallory = await make_user(stores), await make_user(stores), await make_user(stores)
    mid = await _message(api, alice, bob)
    response = await api.get(f"/messages/{mid}/history", headers=mallory.headers)
    assert (response.status_code, response.json()["code"]) == (403, "not_a_member")
    assert (await api.get(f"/messages/{mid}/history")).status_code == 401
    assert (await api.get("/messages/999999/history", headers=bob.headers)).status_code == 404


async def test_a_deleted_message_keeps_no_history(api: httpx.AsyncClient, stores: Stores):
    alice, bob = await make_user(stores), await make_user(stores)
    mid = await _message(api, alice, bob)
    await api.patch(f"/messages/{mid}", json={"body": "secret"}, headers=alice.headers)
    await api.delete(f"/messages/{mid}", headers=alice.headers)
    assert (await api.get(f"/messages/{mid}/history", headers=bob.headers)).json()["items"] == []
    assert await stores.pg.fetchval("SELECT count(*) FROM message_versions") == 0
