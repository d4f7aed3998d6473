"""Sessions, cache, rate limits and presence on a real Redis Cluster, through the API."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from nubo_backend.stores import Stores
from tests.auth_support import bearer, login, signup
from tests.cluster.cluster_support import PrivateRedisCluster
from tests.e2e.ws_support import open_ws
from tests.factories import make_user
from tests.support import ServerProcess


@pytest.fixture
def server(start_cluster_server) -> ServerProcess:
    return start_cluster_server()


@pytest.fixture
async def api(server: ServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        yield client


async def test_sessions_rotate_list_and_revoke_on_a_cluster(api: httpx.AsyncClient) -> None:
    alice = await signup(api)
    second = await login(api, alice["user"]["username"])
    rotated = await api.post("/refresh", json={"refresh_token": second["refresh_token"]})
    assert rotated.status_code == 200, rotated.text
    # The old refresh token again: reuse, so that session is revoked (one Lua script, two keys).
    assert (await api.post("/refresh", json={"refresh_token": second["refresh_token"]})).status_code == 401
    assert (await api.get("/me", headers=bearer(rotated.json()["access_token"]))).status_code == 401
    listed = await api.get("/sessions", headers=bearer(alice["access_token"]))
    assert listed.status_code == 200 and len(listed.json()["items"]) == 1
    assert (await api.post("/logout/all", headers=bearer(alice["access_token"]))).status_code == 204
    assert (await api.get("/me", headers=bearer(alice["access_token"]))).status_code == 401


async def test_cached_pages_are_served_and_invalidated_on_a_cluster(
    api: httpx.AsyncClient, redis_cluster: PrivateRedisCluster
) -> None:
    alice, bob = await signup(api), await signup(api)
    first = await api.post("/posts", json={"body": "one"}, headers=bearer(alice["access_token"]))
    assert first.status_code == 201, first.text
    post_id = first.json()["id"]
    pages = [(await api.get("/posts")).json() for _ in range(2)]  # a miss, then the cached page
    assert pages[0] == pages[1] and [p["id"] for p in pages[0]["items"]] == [post_id]
    assert (await api.put(f"/posts/{post_id}/like", headers=bearer(bob["access_token"]))).status_code in (200, 201, 204)
    for _ in range(2):
        mine = (await api.get("/posts", headers=bearer(bob["access_token"]))).json()["items"][0]
        assert mine["liked_by_me"] is True and mine["like_count"] == 1
        one = (await api.get(f"/posts/{post_id}", headers=bearer(bob["access_token"]))).json()
        assert one["liked_by_me"] is True
    await api.post("/posts", json={"body": "two"}, headers=bearer(alice["access_token"]))
    assert [p["body"] for p in (await api.get("/posts")).json()["items"]] == ["two", "one"]
    # The cache's keys share one slot, so its scripts may read them together.
    slots = {redis_cluster.cli(redis_cluster.ports[0], "cluster", "keyslot", key).strip()
             for key in redis_cluster.keys("*post*")}
    assert slots == {"0"}


async def test_login_attempts_are_rate_limited_on_a_cluster(start_cluster_server) -> None:
    server = start_cluster_server({"NUBO_RATE_LIMIT_LOGIN": "3", "NUBO_RATE_LIMIT_WINDOW": "30"})
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as api:
        statuses = [(await api.post("/login", json={"username": "nobody", "password": "wrong"})).status_code
                    for _ in range(4)]
    assert statuses == [401, 401, 401, 429]


async def test_presence_counts_a_users_sockets_on_a_cluster(cluster_stores: Stores, server: ServerProcess) -> None:
    from nubo_backend.realtime import presence

    alice = await make_user(cluster_stores)
    ws = await open_ws(server, alice)
    assert await presence.is_online(cluster_stores, alice.id)
    await ws.close()
    for _ in range(50):
        if not await presence.is_online(cluster_stores, alice.id):
            break
        await asyncio.sleep(0.1)
    assert not await presence.is_online(cluster_stores, alice.id)


async def test_presence_of_many_users_on_two_instances_is_exact_and_announced_once_on_a_cluster(
    cluster_stores: Stores, start_cluster_server
) -> None:
    """Users whose presence hashes sit in different slots, written in shared batches (one
    pipeline over the masters): counts add up across instances, one online, one offline each."""
    from nubo_backend.realtime import presence
    from tests.e2e.test_ws_presence import share_conversation

    a, b = start_cluster_server(), start_cluster_server()
    watcher = await make_user(cluster_stores)
    users = [await make_user(cluster_stores) for _ in range(12)]
    await share_conversation(cluster_stores, watcher, *users)
    watching = await open_ws(a, watcher)
    sockets = await asyncio.gather(*(open_ws(server, user) for user in users for server in (a, b, b)))
    assert [await presence.online_count(cluster_stores, user.id) for user in users] == [3] * len(users)

    online = await _presence_frames(watching, len(users))
    assert sorted(online) == sorted((user.id, "online") for user in users)
    await asyncio.gather(*(ws.close() for ws in sockets))
    offline = await _presence_frames(watching, len(users))
    assert sorted(offline) == sorted((user.id, "offline") for user in users)
    assert await _presence_frames(watching, 1, within=0.5) == []  # nothing twice
    assert [await presence.online_count(cluster_stores, user.id) for user in users] == [0] * len(users)


async def _presence_frames(ws, count: int, within: float = 10.0) -> list[tuple[int, str]]:
    """The next `count` presence frames as (user id, status): fewer if `within` runs out."""
    from tests.e2e.ws_support import next_frame

    found: list[tuple[int, str]] = []
    try:
        async with asyncio.timeout(within):
            while len(found) < count:
                frame = await next_frame(ws, within)
                if isinstance(frame, dict) and frame.get("type") == "presence":
                    found.append((frame["data"]["user_id"], frame["data"]["status"]))
    except TimeoutError:
        pass
    return found
