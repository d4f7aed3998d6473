"""A post to followers is live-only: it reaches the followers holding a socket, once, and no
follower's durable stream (ids, journal, resume) ever holds it (docs/realtime.md)."""

import httpx

from nubo_backend.stores import Stores
from tests.e2e.ws_support import frames_until, open_ws, silent
from tests.factories import make_user


async def _post(server, user, body: str) -> int:
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as api:
        response = await api.post("/posts", json={"body": body}, headers=user.headers)
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def _follow(server, follower, followed) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as api:
        response = await api.post(f"/users/{followed.id}/follow", headers=follower.headers)
    assert response.status_code in (200, 201), response.text


def _post_created(frame) -> bool:
    return isinstance(frame, dict) and frame.get("type") == "post.created"


async def test_a_new_post_reaches_connected_followers_live_and_no_journal(stores: Stores, server) -> None:
    alice, bob, carol = [await make_user(stores) for _ in range(3)]
    await _follow(server, bob, alice)
    await _follow(server, carol, alice)  # not connected: nothing reaches her, nothing waits for her
    phone = await open_ws(server, bob)
    post_id = await _post(server, alice, "hello followers")
    frame = (await frames_until(phone, _post_created))[-1]
    assert (frame["id"], frame["data"]["post"]["id"]) == (None, post_id)
    assert await silent(phone)  # once
    assert await stores.mongo["events"].count_documents({"type": "post.created"}) == 0
    assert await stores.pg.fetchval("SELECT count(*) FROM event_sequences WHERE user_id = ANY($1)",
                                    [bob.id, carol.id]) == 0


async def test_a_muted_authors_posts_do_not_reach_the_muter(stores: Stores, server) -> None:
    me, loud, friend = [await make_user(stores) for _ in range(3)]
    for followed in (loud, friend):
        await _follow(server, me, followed)
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as api:
        assert (await api.put(f"/users/{loud.id}/mute", headers=me.headers)).status_code == 200
    phone = await open_ws(server, me)
    await _post(server, loud, "LOUD")
    friends = await _post(server, friend, "hi")
    frame = (await frames_until(phone, _post_created))[-1]
    assert frame["data"]["post"]["id"] == friends
    assert await silent(phone)
