"""Mutes: silent and one-way; the muted person's posts leave the muter's feed, their
notifications stop reaching the muter, and nothing changes for the muted person."""

from __future__ import annotations

import httpx

from nubo_backend.stores import Stores
from tests.factories import TestUser, make_user
from tests.polling import eventually
from tests.test_blocks import notifications_of, post


async def mute(api: httpx.AsyncClient, muter: TestUser, muted: TestUser) -> None:
    response = await api.put(f"/users/{muted.id}/mute", headers=muter.headers)
    assert response.json() == {"user_id": muted.id, "muted": True}, response.text


async def feed_ids(api: httpx.AsyncClient, user: TestUser) -> list[int]:
    return [p["id"] for p in (await api.get("/feed", headers=user.headers)).json()["items"]]


async def test_mute_is_idempotent_and_listed_newest_first_in_pages(api: httpx.AsyncClient, stores: Stores):
    me, *others = [await make_user(stores) for _ in range(3)]
    for other in others:
        await mute(api, me, other)
    await mute(api, me, others[1])
    first = (await api.get("/me/mutes", params={"limit": 1}, headers=me.headers)).json()
    assert [u["id"] for u in first["items"]] == [others[1].id]
    assert set(first["items"][0]) == {"id", "username", "display_name", "avatar_url", "muted_at"}
    rest = (await api.get("/me/mutes", params={"cursor": first["next_cursor"]}, headers=me.headers)).json()
    assert ([u["id"] for u in rest["items"]], rest["next_cursor"]) == ([others[0].id], None)
    for _ in range(2):
        unmuted = await api.delete(f"/users/{others[0].id}/mute", headers=me.headers)
        assert unmuted.json() == {"user_id": others[0].id, "muted": False}
    assert [u["id"] for u in (await api.get("/me/mutes", headers=me.headers)).json()["items"]] == [others[1].id]


async def test_muting_yourself_or_an_unknown_user_is_a_clear_client_error(api: httpx.AsyncClient, stores: Stores):
    me = await make_user(stores)
    for method in ("PUT", "DELETE"):
        yourself = await api.request(method, f"/users/{me.id}/mute", headers=me.headers)
        assert (yourself.status_code, yourself.json()["code"]) == (422, "self_mute")
        unknown = await api.request(method, "/users/424242/mute", headers=me.headers)
        assert (unknown.status_code, unknown.json()["code"]) == (404, "user_not_found")


async def test_muted_posts_leave_the_feed_at_once_and_come_back_on_unmute(api: httpx.AsyncClient, stores: Stores):
    me, loud, friend = await make_user(stores), await make_user(stores), await make_user(stores)
    for followed in (loud, friend):
        await api.post(f"/users/{followed.id}/follow", headers=me.headers)
    louds, friends = await post(api, loud, "LOUD"), await post(api, friend, "hi")
    assert await feed_ids(api, me) == [friends, louds]  # the first page is cached now
    await mute(api, me, loud)
    assert await feed_ids(api, me) == [friends]
    later = await post(api, loud, "LOUDER")
    assert await feed_ids(api, me) == [friends]
    # Only the feed: the muted person's posts and profile are still there to look at.
    assert (await api.get(f"/posts/{later}", headers=me.headers)).status_code == 200
    assert (await api.get(f"/users/{loud.id}", headers=me.headers)).json()["followed_by_me"] is True
    await api.delete(f"/users/{loud.id}/mute", headers=me.headers)
    assert await feed_ids(api, me) == [later, friends, louds]


async def test_a_muted_persons_notifications_stop_and_everyone_elses_go_on(api: httpx.AsyncClient, stores: Stores):
    me, loud, friend = await make_user(stores), await make_user(stores), await make_user(stores)
    mine = await post(api, me, "mine")
    await api.put(f"/posts/{mine}/like", headers=loud.headers)
    before = [("like.created", loud.id)]
    assert await eventually(lambda: notifications_of(api, me), before) == before
    await mute(api, me, loud)
    assert await notifications_of(api, me) == []  # the muted person's older ones are out of the list too
    await api.post(f"/posts/{mine}/comments", json={"body": f"@{me.username}"}, headers=loud.headers)
    await post(api, loud, f"hey @{me.username}")
    await api.post(f"/users/{me.id}/follow", headers=loud.headers)
    await api.put(f"/posts/{mine}/like", headers=friend.headers)
    expected = [("like.created", friend.id)]
    assert await eventually(lambda: notifications_of(api, me), expected) == expected
    assert await stores.mongo["notifications"].count_documents({"user_id": me.id, "data.actor_id": loud.id}) == 1


async def test_nothing_changes_for_the_muted_person(api: httpx.AsyncClient, stores: Stores):
    me, loud = await make_user(stores), await make_user(stores)
    await api.post(f"/users/{loud.id}/follow", headers=me.headers)
    await mute(api, me, loud)
    mine = await post(api, me, f"hello @{loud.username}")
    assert (await api.get(f"/posts/{mine}", headers=loud.headers)).status_code == 200
    assert (await api.get(f"/users/{me.id}", headers=loud.headers)).status_code == 200
    assert (await api.put(f"/posts/{mine}/like", headers=loud.headers)).status_code == 200
    assert (await api.post(f"/users/{me.id}/follow", headers=loud.headers)).status_code == 200
    conversation = await api.post("/conversations", json={"user_id": me.id}, headers=loud.headers)
    sent = await api.post(f"/conversations/{conversation.json()['id']}/messages",
                          json={"body": "hi", "client_id": "l-1"}, headers=loud.headers)
    assert sent.status_code == 201
    expected = [("follow.created", me.id), ("mention.created", me.id)]  # the muter's still reach them
    assert await eventually(lambda: notifications_of(api, loud), expected) == expected
    assert (await api.get("/me/mutes", headers=loud.headers)).json()["items"] == []
    kinds = {d["type"] async for d in stores.mongo["events"].find({"user_id": loud.id})}
    assert not any("mute" in kind for kind in kinds)  # never told
