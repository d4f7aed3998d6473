"""Rate limits, cost of hashing, and the event loop staying free while logins hash."""

import asyncio
import statistics
import time

import httpx

from nubo_backend.stores import Stores
from tests.auth_support import PASSWORD, signup
from tests.factories import make_user
from tests.support import PrivateRedis

# Costly enough that one verification takes a noticeable time (tens of ms or more).
SLOW_ARGON2 = {"NUBO_ARGON2_TIME_COST": "4", "NUBO_ARGON2_MEMORY_COST": "65536"}


def _client_from(server, ip: str) -> httpx.AsyncClient:
    """A client whose connections come from another loopback address, i.e. another IP for the server."""
    transport = httpx.AsyncHTTPTransport(local_address=ip)
    return httpx.AsyncClient(base_url=server.url, transport=transport, timeout=10)


def _wrong_login(username: str) -> dict[str, str]:
    return {"username": username, "password": "wrong-password"}


async def test_login_rate_limit_per_ip_answers_429_with_retry_after(start_server) -> None:
    server = start_server({"NUBO_RATE_LIMIT_LOGIN": "3", "NUBO_RATE_LIMIT_WINDOW": "30"})
    async with _client_from(server, "127.0.0.2") as client:
        statuses = [(await client.post("/login", json=_wrong_login(f"user{i}"))).status_code for i in range(3)]
        limited = await client.post("/login", json=_wrong_login("user9"))
    assert statuses == [401, 401, 401]
    assert limited.status_code == 429
    assert limited.json()["code"] == "rate_limited"
    assert 1 <= int(limited.headers["retry-after"]) <= 30
    async with _client_from(server, "127.0.0.3") as elsewhere:
        assert (await elsewhere.post("/login", json=_wrong_login("user9"))).status_code == 401


async def test_login_ceiling_per_account_holds_across_ips(start_server, stores: Stores) -> None:
    server = start_server({"NUBO_RATE_LIMIT_LOGIN_ACCOUNT": "3"})
    await make_user(stores, "target")
    for ip in ("127.0.0.4", "127.0.0.5", "127.0.0.6"):
        async with _client_from(server, ip) as client:
            assert (await client.post("/login", json=_wrong_login("target"))).status_code == 401
    async with _client_from(server, "127.0.0.7") as client:
        # The account is locked for the window, even with the right password, even by e-mail case games.
        right = await client.post("/login", json={"username": "TARGET", "password": PASSWORD})
        other = await client.post("/login", json=_wrong_login("someone_else"))
    assert right.status_code == 429
    assert "retry-after" in right.headers
    assert other.status_code == 401


async def test_signup_and_refresh_are_rate_limited(start_server) -> None:
    server = start_server({"NUBO_RATE_LIMIT_SIGNUP": "2", "NUBO_RATE_LIMIT_REFRESH": "2"})
    async with httpx.AsyncClient(base_url=server.url) as client:
        first = await signup(client, "rl_one")
        await signup(client, "rl_two")
        third = await client.post(
            "/signup", json={"username": "rl_three", "email": "rl3@example.test", "password": PASSWORD}
        )
        assert third.status_code == 429
        assert third.json()["code"] == "rate_limited"
        token = first["refresh_token"]
        for _ in range(2):
            response = await client.post("/refresh", json={"refresh_token": token})
            assert response.status_code == 200
            token = response.json()["refresh_token"]
        limited = await client.post("/refresh", json={"refresh_token": token})
    assert limited.status_code == 429
    assert "retry-after" in limited.headers


async def test_rate_limits_fail_open_when_redis_is_down(start_server, stores: Stores) -> None:
    redis = PrivateRedis().start()
    try:
        server = start_server({"NUBO_REDIS_URL": redis.url, "NUBO_RATE_LIMIT_LOGIN": "1"})
        await make_user(stores, "olga")
        redis.stop()
        async with httpx.AsyncClient(base_url=server.url) as client:
            responses = [await client.post("/login", json={"username": "olga", "password": PASSWORD}) for _ in range(3)]
    finally:
        redis.stop()
    # Past the limiter every time (no 429), then refused cleanly: sessions need Redis.
    assert [r.status_code for r in responses] == [503, 503, 503]
    assert responses[0].json()["code"] == "service_unavailable"
    assert "rate limit skipped" in server.output()


async def test_event_loop_answers_ping_while_logins_hash(start_server) -> None:
    server = start_server(SLOW_ARGON2)
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
        await signup(client, "busy")
        finished: list[float] = []

        async def one_login() -> None:
            response = await client.post("/login", json={"username": "busy", "password": PASSWORD})
            assert response.status_code == 200
            finished.append(time.perf_counter())

        started = time.perf_counter()
        logins = [asyncio.create_task(one_login()) for _ in range(8)]
        await asyncio.sleep(0.05)  # the logins are in flight, hashing
        ping_sent = time.perf_counter()
        ping = await client.get("/ping")
        ping_done = time.perf_counter()
        await asyncio.gather(*logins)
    assert ping.status_code == 200
    assert ping_done < max(finished), "ping waited for the logins to finish"
    # Answered well within the time of a single hash (the first login to finish): hashing
    # on the loop would make the ping wait for at least the hash in progress.
    one_hash = min(finished) - started
    assert ping_done - ping_sent < one_hash / 2, (ping_done - ping_sent, one_hash)


async def test_unknown_user_login_costs_about_as_much_as_a_wrong_password(start_server) -> None:
    server = start_server(SLOW_ARGON2)
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
        await signup(client, "timed")

        async def duration(username: str) -> float:
            started = time.perf_counter()
            response = await client.post("/login", json=_wrong_login(username))
            assert response.status_code == 401
            return time.perf_counter() - started

        known = statistics.median([await duration("timed") for _ in range(3)])
        unknown = statistics.median([await duration("nobody_at_all") for _ in range(3)])
    assert unknown > known * 0.5, (known, unknown)


async def test_login_rehashes_a_password_hashed_with_older_parameters(start_server, stores: Stores) -> None:
    server = start_server({"NUBO_ARGON2_TIME_COST": "2"})
    user = await make_user(stores)  # hashed with t=1
    async with httpx.AsyncClient(base_url=server.url) as client:
        first = await client.post("/login", json={"username": user.username, "password": PASSWORD})
        stored = await stores.pg.fetchval("SELECT password_hash FROM users WHERE id = $1", user.id)
        second = await client.post("/login", json={"username": user.username, "password": PASSWORD})
    assert first.status_code == second.status_code == 200
    assert ",t=2," in stored
