"""The guard's memo of live sessions: trusted only while revocations are heard."""

from __future__ import annotations

import time

import httpx

from nubo_backend.auth.live_sessions import LiveSessions
from nubo_backend.auth.sessions import revoke_session
from nubo_backend.stores import Stores
from tests.factories import make_user
from tests.polling import eventually


def active_memo(ttl: float = 5.0) -> LiveSessions:
    memo = LiveSessions(ttl)
    memo.active = lambda: True
    return memo


def test_memo_answers_what_redis_said_until_ttl() -> None:
    memo = active_memo(ttl=0.2)
    memo.remember("s1", 7, 100, time.monotonic())
    assert memo.get("s1") == (7, 100)
    time.sleep(0.25)
    assert memo.get("s1") is None


def test_memo_is_silent_while_revocations_cannot_be_heard() -> None:
    memo = LiveSessions(5.0)  # not wired to a connected bus
    memo.remember("s1", 7, 100, time.monotonic())
    assert memo.get("s1") is None
    memo.active = lambda: True
    assert memo.get("s1") is None  # nothing was remembered while inactive


def test_forgotten_session_is_not_answered_and_not_re_remembered_by_an_older_read() -> None:
    memo = active_memo()
    asked_at = time.monotonic()  # a guard asked Redis, then the session was revoked...
    memo.forget(["s1"])
    memo.remember("s1", 7, 100, asked_at)  # ...and its (stale) answer arrives afterwards
    assert memo.get("s1") is None
    memo.remember("s1", 7, 100, time.monotonic())  # a later read that found it live again
    assert memo.get("s1") == (7, 100)


def test_memo_is_bounded_and_cleared_on_reconnect() -> None:
    memo = LiveSessions(5.0, max_entries=2)
    memo.active = lambda: True
    for n in range(3):
        memo.remember(f"s{n}", n, 0, time.monotonic())
    assert memo.get("s0") is None and memo.get("s2") == (2, 0)
    memo.clear()
    assert memo.get("s2") is None


async def test_revocation_on_one_instance_refuses_the_token_on_another_at_once(
    stores: Stores, start_server
) -> None:
    a, b = start_server(), start_server()
    alice = await make_user(stores)
    async with httpx.AsyncClient(base_url=a.url) as on_a, httpx.AsyncClient(base_url=b.url) as on_b:
        for _ in range(3):  # b now knows the session as live
            assert (await on_b.get("/me", headers=alice.headers)).status_code == 200
        assert (await on_a.post("/logout", headers=alice.headers)).status_code == 204

        async def status_on_b() -> int:
            return (await on_b.get("/me", headers=alice.headers)).status_code

        # Pub/Sub reaches b within milliseconds; allow a little scheduling slack, far below the ttl.
        assert await eventually(status_on_b, 401, within=0.5) == 401


async def test_a_session_revoked_directly_in_redis_is_refused_by_every_instance(
    stores: Stores, start_server
) -> None:
    server = start_server()
    alice = await make_user(stores)
    async with httpx.AsyncClient(base_url=server.url) as client:
        assert (await client.get("/me", headers=alice.headers)).status_code == 200
        await revoke_session(stores.redis, stores.keys, alice.id, alice.session_id)

        async def status() -> int:
            return (await client.get("/me", headers=alice.headers)).status_code

        assert await eventually(status, 401, within=0.5) == 401
