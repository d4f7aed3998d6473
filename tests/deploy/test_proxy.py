"""The production proxy end to end: a real Caddy (deploy/Caddyfile, plain HTTP) in front of
two real instances on 127.0.0.1. The client address it forwards, trusted only from it (clients
come from distinct loopback addresses, 127.0.0.3, .4, ..., each with a bucket of its own);
WebSockets through it; and a rolling restart behind it that no client notices."""

from __future__ import annotations

import asyncio
import itertools
import re
import signal
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest
from websockets.asyncio.client import connect

from nubo_backend.jsonutil import loads
from nubo_backend.stores import Stores
from tests.deploy.caddy_support import CaddyProxy
from tests.support import ServerProcess

PROXIED = {"NUBO_TRUSTED_PROXIES": "127.0.0.1/32", "NUBO_RATE_LIMIT_LOGIN": "3"}
_names = itertools.count(1)


@dataclass
class Stack:
    a: ServerProcess
    b: ServerProcess
    proxy: CaddyProxy


@pytest.fixture(scope="module")
def proxied(test_env: dict[str, str], session_stores: Stores) -> Iterator[Stack]:
    """Caddy in front of two instances that trust it; shared by the module's tests, each of
    which empties Redis first (the `stores` fixture) and uses client addresses of its own."""
    a = ServerProcess({**test_env, **PROXIED}).start()
    b = ServerProcess({**test_env, **PROXIED}).start()
    proxy = CaddyProxy([a.port, b.port]).start()
    yield Stack(a, b, proxy)
    proxy.stop()
    a.stop()
    b.stop()


@pytest.fixture
async def client_from() -> AsyncIterator[Callable[[str, str], httpx.AsyncClient]]:
    """An HTTP client whose connections leave from the given loopback address."""
    opened: list[httpx.AsyncClient] = []

    def make(source: str, base_url: str) -> httpx.AsyncClient:
        transport = httpx.AsyncHTTPTransport(local_address=source)
        client = httpx.AsyncClient(base_url=base_url, transport=transport, timeout=10)
        opened.append(client)
        return client

    yield make
    for client in opened:
        await client.aclose()


async def _failed_login(client: httpx.AsyncClient, **headers: str) -> int:
    response = await client.post("/login", json={"username": f"nobody{next(_names)}", "password": "wrong password"},
                                 headers=headers)
    return response.status_code


def _logged_ips(server: ServerProcess) -> set[str]:
    return set(re.findall(r"client_ip=(\S+)", server.output()))


async def test_the_login_limit_counts_the_client_behind_the_proxy_across_both_instances(
    proxied: Stack, stores: Stores, client_from
) -> None:
    a, b = proxied.a, proxied.b
    first, second = client_from("127.0.0.3", proxied.proxy.url), client_from("127.0.0.4", proxied.proxy.url)
    assert [await _failed_login(first) for _ in range(4)] == [401, 401, 401, 429]
    assert await _failed_login(second) == 401  # another client, its own bucket
    # Round robin spread the four attempts over both instances; each logged the real client.
    assert "127.0.0.3" in _logged_ips(a) and "127.0.0.3" in _logged_ips(b)


async def test_a_session_records_the_client_address_not_the_proxys(proxied: Stack, stores: Stores, client_from) -> None:
    client = client_from("127.0.0.6", proxied.proxy.url)
    signup = await client.post("/signup", json={"username": "viaproxy", "email": "viaproxy@example.test",
                                                "password": "correct horse"})
    assert signup.status_code == 201, signup.text
    token = signup.json()["access_token"]
    sessions = await client.get("/sessions", headers={"Authorization": f"Bearer {token}"})
    assert [s["ip"] for s in sessions.json()["items"]] == ["127.0.0.6"]


async def test_a_forged_header_sent_through_the_proxy_is_replaced(proxied: Stack, stores: Stores, client_from) -> None:
    victim, forger = client_from("127.0.0.7", proxied.proxy.url), client_from("127.0.0.8", proxied.proxy.url)
    assert [await _failed_login(victim) for _ in range(4)][-1] == 429
    # Claiming to be the limited client (or anyone) through Caddy changes nothing.
    assert await _failed_login(forger, **{"X-Forwarded-For": "127.0.0.7"}) == 401
    assert "127.0.0.8" in _logged_ips(proxied.a) | _logged_ips(proxied.b)


async def test_a_forged_header_from_an_untrusted_peer_is_ignored(proxied: Stack, stores: Stores, client_from) -> None:
    victim = client_from("127.0.0.9", proxied.proxy.url)
    assert [await _failed_login(victim) for _ in range(4)][-1] == 429
    direct = client_from("127.0.0.2", proxied.a.url)  # straight to an instance, not from the proxy's address
    assert await _failed_login(direct, **{"X-Forwarded-For": "127.0.0.9"}) == 401
    # Each attempt claims another address; all are counted against the real peer.
    assert [await _failed_login(direct, **{"X-Forwarded-For": f"127.0.1.{i}"}) for i in range(3)] == [401, 401, 429]
    assert "127.0.0.2" in _logged_ips(proxied.a) and not {"127.0.1.0", "127.0.1.1"} & _logged_ips(proxied.a)


async def test_by_default_the_header_is_ignored_and_all_share_the_proxys_address(start_server, client_from) -> None:
    untrusting = start_server({"NUBO_RATE_LIMIT_LOGIN": "3"})  # NUBO_TRUSTED_PROXIES empty
    proxy = CaddyProxy([untrusting.port]).start()
    try:
        first, second = client_from("127.0.0.3", proxy.url), client_from("127.0.0.4", proxy.url)
        assert [await _failed_login(first) for _ in range(3)] == [401, 401, 401]
        assert await _failed_login(second) == 429  # everyone is the proxy, 127.0.0.1
    finally:
        proxy.stop()
    assert _logged_ips(untrusting) == {"127.0.0.1"}


async def test_a_websocket_opens_through_the_proxy(proxied: Stack, stores: Stores, client_from) -> None:
    client = client_from("127.0.0.12", proxied.proxy.url)
    signup = await client.post("/signup", json={"username": "socketeer", "email": "socketeer@example.test",
                                                "password": "correct horse"})
    token = signup.json()["access_token"]
    ws_url = proxied.proxy.url.replace("http://", "ws://") + "/ws"
    async with connect(ws_url, additional_headers={"Authorization": f"Bearer {token}"}, open_timeout=5) as ws:
        ready = loads(await asyncio.wait_for(ws.recv(), timeout=5))
    assert ready["type"] == "ready" and ready["user_id"] == signup.json()["user"]["id"]


async def test_a_rolling_restart_behind_the_proxy_loses_no_request(start_server, test_env, client_from) -> None:
    """What docs/deploy.md's upgrade does: SIGTERM one replica (it drains), start it again, then
    the other; a client reading through the proxy all along gets only 200s."""
    replicas = [start_server(PROXIED), start_server(PROXIED)]
    proxy = CaddyProxy([r.port for r in replicas]).start()
    statuses: list[int] = []
    stop = asyncio.Event()

    async def keep_reading() -> None:
        client = client_from("127.0.0.13", proxy.url)
        deadline = time.monotonic() + 90  # bounded, whatever happens
        while not stop.is_set() and time.monotonic() < deadline:
            statuses.append((await client.get("/posts?limit=5")).status_code)
            await asyncio.sleep(0.02)

    reader = asyncio.create_task(keep_reading())
    try:
        for i, old in enumerate(replicas):
            await asyncio.to_thread(old.stop, signal.SIGTERM, 20)
            replicas[i] = await asyncio.to_thread(lambda port=old.port: ServerProcess(
                {**test_env, **PROXIED}, port=port).start())
            # The proxy takes a restarted replica back at its next health check (health_interval,
            # 3 s): only then is the next one stopped, as docs/deploy.md says.
            await asyncio.sleep(4)
        stop.set()
        await reader
    finally:
        proxy.stop()
        for replica in replicas:
            replica.stop()
    assert len(statuses) > 50
    assert set(statuses) == {200}, {s: statuses.count(s) for s in set(statuses)}
