"""A block made on one instance holds at once on another: its cached pages, and the sockets
it holds (presence, typing, messages)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from nubo_backend.jsonutil import dumps_str
from nubo_backend.messaging import service as messaging
from nubo_backend.stores import Stores
from tests.e2e.ws_support import OPENED, frames_until, open_ws
from tests.factories import TestUser, make_user
from tests.test_blocks import block, post


@pytest.fixture(autouse=True)
async def _close_clients() -> AsyncIterator[None]:
    yield
    while OPENED:
        await OPENED.pop().close()


async def reads(api: httpx.AsyncClient, viewer: TestUser, other: TestUser, others_post: int) -> dict[str, Any]:
    """What viewer is shown of other on every cached page (and a few that are not)."""
    headers = viewer.headers
    front = (await api.get("/posts", headers=headers)).json()["items"]
    feed = (await api.get("/feed", headers=headers)).json()["items"]
    tagged = (await api.get("/tags/cached/posts", headers=headers)).json()["items"]
    return {
        "profile": (await api.get(f"/users/{other.id}", headers=headers)).status_code,
        "post": (await api.get(f"/posts/{others_post}", headers=headers)).status_code,
        "their posts": (await api.get(f"/users/{other.id}/posts", headers=headers)).status_code,
        "front page": other.id in {p["author"]["id"] for p in front},
        "feed": other.id in {p["author"]["id"] for p in feed},
        "tag page": other.id in {p["author"]["id"] for p in tagged},
    }


SEEN = {"profile": 200, "post": 200, "their posts": 200, "front page": True, "feed": True, "tag page": True}
HIDDEN = {"profile": 404, "post": 404, "their posts": 404, "front page": False, "feed": False, "tag page": False}


async def test_a_block_on_one_instance_hides_cached_pages_at_once_on_another(
    api: httpx.AsyncClient, stores: Stores, start_server
):
    alice, bob = await make_user(stores), await make_user(stores)
    other = start_server()
    await api.post(f"/users/{bob.id}/follow", headers=alice.headers)
    await api.post(f"/users/{alice.id}/follow", headers=bob.headers)
    alices, bobs = await post(api, alice, "a #cached"), await post(api, bob, "b #cached")
    async with httpx.AsyncClient(base_url=other.url, timeout=10) as api2:
        for client in (api, api2):  # both instances warm the shared cache, for both viewers
            assert await reads(client, alice, bob, bobs) == SEEN
            assert await reads(client, bob, alice, alices) == SEEN
        await block(api, alice, bob)
        assert await reads(api2, alice, bob, bobs) == HIDDEN
        assert await reads(api2, bob, alice, alices) == HIDDEN

        assert (await api.delete(f"/users/{bob.id}/block", headers=alice.headers)).status_code == 200
        unfollowed = {**SEEN, "feed": False}  # the block's unfollows stay
        assert await reads(api2, alice, bob, bobs) == unfollowed
        assert await reads(api2, bob, alice, alices) == unfollowed


def _from(user: TestUser, kind: str):
    def matches(frame: Any) -> bool:
        return isinstance(frame, dict) and frame.get("type") == kind and (
            frame["data"].get("user_id") == user.id or frame["data"].get("sender_id") == user.id)
    return matches


async def test_a_block_on_instance_a_stops_presence_typing_and_messages_for_sockets_on_b(
    stores: Stores, start_server
):
    a, b = start_server(), start_server()
    alice, bob, carol, dave = [await make_user(stores) for _ in range(4)]
    group = await messaging.create_group(stores, carol.id, "friends", [alice.id, bob.id, dave.id])
    # Dave has written in the group (a row, no event), so his presence reaches its members.
    await stores.pg.execute("INSERT INTO messages (conversation_id, sender_id, body) VALUES ($1, $2, 'hi')",
                            group["id"], dave.id)
    direct, _ = await messaging.open_direct(stores, alice.id, bob.id)
    alice_ws, bobs_phone = await open_ws(b, alice), await open_ws(b, bob)
    carol_ws = await open_ws(b, carol)
    async with httpx.AsyncClient(base_url=a.url, timeout=10) as api_a:
        await block(api_a, alice, bob)

        # Each time Bob acts first, Carol (who still sees him) is the proof his action went
        # out, then she acts: Alice's next frame of that kind must be Carol's, never Bob's.
        typing = {"type": "typing", "conversation_id": group["id"]}
        await bobs_phone.send(dumps_str(typing))
        await frames_until(carol_ws, _from(bob, "typing"))
        await carol_ws.send(dumps_str(typing))
        seen = await frames_until(alice_ws, lambda f: isinstance(f, dict) and f.get("type") == "typing")
        assert seen[-1]["data"]["user_id"] == carol.id

        to_direct = {"type": "message.send", "conversation_id": direct["id"], "body": "psst", "client_id": "b-1"}
        await bobs_phone.send(dumps_str(to_direct))
        refused = (await frames_until(bobs_phone, lambda f: isinstance(f, dict) and f.get("type") == "error"))[-1]
        assert (refused["code"], refused["ref"]) == ("blocked", "b-1")

        to_group = {"type": "message.send", "conversation_id": group["id"], "body": "hi", "client_id": "g-1"}
        await bobs_phone.send(dumps_str(to_group))
        await frames_until(carol_ws, _from(bob, "message.created"))
        await carol_ws.send(dumps_str({**to_group, "client_id": "g-2"}))
        seen = await frames_until(alice_ws, lambda f: isinstance(f, dict) and f.get("type") == "message.created")
        assert seen[-1]["data"]["sender_id"] == carol.id

        # Bob goes offline on B and comes back on A: Carol is told both, Alice neither; Dave
        # coming online after him is the first presence Alice hears of.
        await bobs_phone.close()
        await frames_until(carol_ws, _from(bob, "presence"))
        await open_ws(a, bob)
        await frames_until(carol_ws, _from(bob, "presence"))
        await open_ws(a, dave)
        seen = await frames_until(alice_ws, lambda f: isinstance(f, dict) and f.get("type") == "presence")
        assert seen[-1]["data"] == {"user_id": dave.id, "status": "online"}
