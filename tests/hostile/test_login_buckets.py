"""Case 9: the login ceiling counts per account, whatever name the attacker types for it."""

from __future__ import annotations

import httpx

from nubo_backend.stores import Stores
from tests.factories import make_user
from tests.hostile.conftest import ServerLog
from tests.support import ServerProcess


def _from(server: ServerProcess, ip: str) -> httpx.AsyncClient:
    # Another loopback address is another client IP: only the per-account bucket is shared.
    return httpx.AsyncClient(base_url=server.url, transport=httpx.AsyncHTTPTransport(local_address=ip), timeout=10)


async def test_username_and_email_of_one_account_share_one_login_ceiling(start_server, stores: Stores) -> None:
    server = start_server({"NUBO_RATE_LIMIT_LOGIN_ACCOUNT": "4"})
    log = ServerLog(server)
    await make_user(stores, "bob")
    names = [{"username": "bob"}, {"email": "bob@example.test"}, {"username": "BOB"}, {"email": "Bob@Example.test"}]
    for i, name in enumerate(names):
        async with _from(server, f"127.0.1.{i + 1}") as client:
            response = await client.post("/login", json={**name, "password": "wrong-password"})
            assert response.status_code == 401, response.text
    async with _from(server, "127.0.1.9") as client:
        by_email = await client.post("/login", json={"email": "bob@example.test", "password": "wrong-password"})
        stranger = await client.post("/login", json={"username": "nobody", "password": "wrong-password"})
    assert (by_email.status_code, by_email.json()["code"]) == (429, "rate_limited")
    assert stranger.status_code == 401  # another (unknown) identifier: its own bucket
    log.assert_no_traceback()
