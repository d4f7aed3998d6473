"""A Redis at its memory limit under `noeviction` (docs/deploy.md, Redis): writes that would
grow it are refused, and the API must stay truthful. A private redis-server with a small
`maxmemory`, filled by the test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from redis.asyncio import Redis
from redis.exceptions import OutOfMemoryError

from tests.auth_support import bearer, signup
from tests.support import PrivateRedis, ServerProcess


@pytest.fixture
def small_redis() -> Iterator[PrivateRedis]:
    redis = PrivateRedis(args=["--maxmemory", "16mb", "--maxmemory-policy", "noeviction"]).start()
    yield redis
    redis.stop()


@pytest.fixture
async def full_api(small_redis: PrivateRedis, start_server) -> AsyncIterator[tuple[httpx.AsyncClient, Redis]]:
    server: ServerProcess = start_server({"NUBO_REDIS_URL": small_redis.url})
    admin = Redis.from_url(small_redis.url)
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        client.server = server  # type: ignore[attr-defined]
        yield client, admin
    await admin.aclose()


async def _fill(redis: Redis) -> None:
    """SET 256 KiB values until Redis refuses: it is at maxmemory."""
    for n in range(1000):
        try:
            await redis.set(f"fill:{n}", b"x" * 262144)
        except OutOfMemoryError:
            return
    raise AssertionError("Redis never filled up")


async def test_logout_on_a_full_redis_revokes_the_session(full_api: tuple[httpx.AsyncClient, Redis]) -> None:
    """Logging out frees memory (DEL is allowed when full): it must revoke, never answer
    success without revoking, and never leave the session valid behind a 503."""
    api, admin = full_api
    member = await signup(api)
    token = member["access_token"]
    assert (await api.get("/me", headers=bearer(token))).status_code == 200
    await _fill(admin)
    assert (await api.post("/login", json={"username": member["user"]["username"], "password": "x" * 12})
            ).status_code in (401, 503)
    response = await api.post("/logout", headers=bearer(token))
    assert response.status_code == 204, response.text
    me = await api.get("/me", headers=bearer(token))
    assert me.status_code == 401 and me.json()["code"] == "invalid_token"
    assert "Traceback" not in api.server.output()  # type: ignore[attr-defined]


async def test_a_post_edited_on_a_full_redis_is_never_served_stale(full_api: tuple[httpx.AsyncClient, Redis]) -> None:
    """The page is cached, Redis fills up, the post is edited: the next read has the edit."""
    api, admin = full_api
    author = bearer((await signup(api))["access_token"])
    post = (await api.post("/posts", json={"body": "before"}, headers=author)).json()
    assert (await api.get(f"/posts/{post['id']}")).json()["body"] == "before"  # now cached
    await _fill(admin)
    edited = await api.patch(f"/posts/{post['id']}", json={"body": "after"}, headers=author)
    assert edited.status_code == 200
    assert (await api.get(f"/posts/{post['id']}")).json()["body"] == "after"
