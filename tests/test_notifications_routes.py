"""GET /notifications (cursor pages, newest first) and POST /notifications/read."""

import httpx

from nubo_backend.stores import Stores
from tests.factories import announce_notification, make_user, relay_now


async def test_notifications_are_listed_in_pages_newest_first(stores: Stores, api: httpx.AsyncClient) -> None:
    alice, bob = await make_user(stores), await make_user(stores)
    for n in range(3):
        await announce_notification(stores, alice.id, "like.created", {"actor_id": bob.id, "n": n})
    await announce_notification(stores, bob.id, "like.created", {"actor_id": alice.id, "n": 99})
    await relay_now(stores)
    first = (await api.get("/notifications?limit=2", headers=alice.headers)).json()
    assert [i["data"]["n"] for i in first["items"]] == [2, 1]
    assert first["items"][0]["read"] is False and first["items"][0]["type"] == "like.created"
    rest = await api.get("/notifications", params={"limit": 2, "cursor": first["next_cursor"]}, headers=alice.headers)
    assert [i["data"]["n"] for i in rest.json()["items"]] == [0] and rest.json()["next_cursor"] is None


async def test_notifications_need_a_token_and_a_valid_cursor(stores: Stores, api: httpx.AsyncClient) -> None:
    alice = await make_user(stores)
    missing = await api.get("/notifications")
    assert missing.status_code == 401 and missing.json()["error"] == "Authorization header manquant"
    assert (await api.get("/notifications?cursor=bogus", headers=alice.headers)).status_code == 400
    assert (await api.get("/notifications?limit=0", headers=alice.headers)).status_code == 422


async def test_marking_some_then_all_notifications_read(stores: Stores, api: httpx.AsyncClient) -> None:
    alice, bob = await make_user(stores), await make_user(stores)
    for n in range(3):
        await announce_notification(stores, alice.id, "follow.created", {"actor_id": bob.id, "n": n})
    await relay_now(stores)
    items = (await api.get("/notifications", headers=alice.headers)).json()["items"]
    some = await api.post("/notifications/read", json={"ids": [items[0]["id"]]}, headers=alice.headers)
    assert some.status_code == 200 and some.json() == {"updated": 1}
    listed = (await api.get("/notifications", headers=alice.headers)).json()["items"]
    assert [i["read"] for i in listed] == [True, False, False]
    everything = await api.post("/notifications/read", headers=alice.headers)
    assert everything.json() == {"updated": 2}
    # Someone else's notification ids change nothing.
    assert (await api.post("/notifications/read", json={"ids": [items[1]["id"]]}, headers=bob.headers)).json() == {
        "updated": 0
    }


async def test_bad_read_requests_are_refused_with_details(stores: Stores, api: httpx.AsyncClient) -> None:
    alice = await make_user(stores)
    bad_id = await api.post("/notifications/read", json={"ids": ["nope"]}, headers=alice.headers)
    assert bad_id.status_code == 422 and bad_id.json()["details"][0]["field"] == "ids"
    wrong_type = await api.post("/notifications/read", json={"ids": "all"}, headers=alice.headers)
    assert wrong_type.status_code == 422
    not_json = await api.post("/notifications/read", content=b"{",
                              headers={**alice.headers, "Content-Type": "application/json"})
    assert not_json.status_code == 400 and not_json.json()["code"] == "malformed_json"
