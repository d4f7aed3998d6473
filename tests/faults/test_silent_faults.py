"""Faults that do not announce themselves: a store's connections going silent without closing,
and traffic that stalls. A FaultProxy (tests/faults/proxy.py) sits between the instances and
each of PostgreSQL and Redis (the `proxied_stack` fixture); the test reaches the stores
directly, as an instance on a healthy path would.

The flow is the suite's (test_delivery_faults.py): 100 DMs at 20/s to bob's two devices and
alice's, exactly once, with the counts printed (`FAULTS {...}`) for docs/reliability.md.
"""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from nubo_backend.auth.sessions import revoke_session
from nubo_backend.client import Nubo, SessionRevoked
from nubo_backend.settings import load_settings
from nubo_backend.stores import open_stores
from tests.factories import make_user
from tests.faults.stack import Stack
from tests.faults.test_delivery_faults import _alice_and_bob, _flow
from tests.faults.traffic import send_messages

pytestmark = pytest.mark.faults

SILENCE = 10.0
# Everything live again within this after a silence ends: the bus notices the silence
# (ping interval 2 s + timeout 3 s, during the fault), then its reconnection waits out its
# back-off (at most 5 s) and the new connection's confirmation; the catch-up follows.
REDIS_RECOVERY_BOUND = 12.0
# A request answers within this while PostgreSQL is silent: its statement's command_timeout
# (5 s), then asyncpg's cancel request for it, which is bounded by the same timeout and which
# the connection's release waits for (10 s, measured 10.0), with room for a loaded machine.
PG_ANSWER_BOUND = 12.5
# A request answers within this while Redis stalls: each Redis call it makes waits at most
# REDIS_COMMAND_TIMEOUT (2 s), and a login makes three (rate limit, session, index).
STALL_ANSWER_BOUND = 8.0


class ReadyWatch:
    """Polls /ready on every instance every 0.3 s: what it answered, and when."""

    def __init__(self, stack: Stack) -> None:
        self.urls = [server.url for server in stack.servers]
        self.seen: list[tuple[float, str, int, dict]] = []  # (when, url, status, checks)
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> ReadyWatch:
        self.task = asyncio.create_task(self._poll())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.task is not None
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)

    async def _poll(self) -> None:
        async with httpx.AsyncClient(timeout=15) as http:
            while True:
                for url in self.urls:
                    try:
                        response = await http.get(f"{url}/ready")
                        self.seen.append((time.monotonic(), url, response.status_code,
                                          response.json().get("checks") or {}))
                    except httpx.HTTPError:
                        pass
                await asyncio.sleep(0.3)

    def failed(self, check: str) -> list[str]:
        """The reasons /ready gave for `check` while it answered 503."""
        return [checks[check] for _, _, status, checks in self.seen
                if status == 503 and checks.get(check, "ok") not in ("ok", "not checked")]

    async def wait_ready(self, within: float) -> float:
        """Until every instance has answered 200 last; how long that took."""
        began = time.monotonic()
        while time.monotonic() - began < within:
            last = {url: status for _, url, status, _ in self.seen}
            if len(last) == len(self.urls) and set(last.values()) == {200}:
                return time.monotonic() - began
            await asyncio.sleep(0.2)
        raise AssertionError(f"/ready not back to 200 within {within}s: {self.seen[-4:]}")


async def _silence(proxy_of: str, stack: Stack, seconds: float = SILENCE) -> None:
    proxy = getattr(stack, proxy_of)
    proxy.silence()
    await asyncio.sleep(seconds)
    proxy.restore()


async def test_redis_connections_silent_for_10s(proxied_stack: Stack) -> None:
    """Every open Redis connection goes silent (never closed), new ones too for 10 s. Each
    device gets every message live again within REDIS_RECOVERY_BOUND of the fault's end, with
    no reconnection of its own; a session revoked during the fault (by a healthy path to
    Redis, so the deaf instances never hear it) has its socket closed after it."""
    stack = proxied_stack
    a = stack.servers[0]
    stores = await open_stores(load_settings(environ=stack.direct_env))
    try:
        carol = await make_user(stores, "carol")
        carol_client = Nubo.with_token(a.url, carol.token)
        async with asyncio.timeout(10):
            await carol_client.realtime.wait_connected()
        closed_at: list[float] = []

        async def watch_carol() -> None:
            try:
                async for _ in carol_client.events():
                    pass
            except SessionRevoked:
                closed_at.append(time.monotonic())

        watching = asyncio.create_task(watch_carol())
        ended: list[float] = []

        async def fault(s: Stack) -> None:
            s.redis_proxy.silence()
            await asyncio.sleep(3)
            assert await revoke_session(stores.redis, stores.keys, carol.id, carol.session_id)
            await asyncio.sleep(SILENCE - 3)
            s.redis_proxy.restore()
            ended.append(time.monotonic())

        async with ReadyWatch(stack) as ready:
            report = await _flow(stack, "Redis connections silent 10 s (proxy)", fault)
            back = await ready.wait_ready(REDIS_RECOVERY_BOUND)
        try:
            async with asyncio.timeout(REDIS_RECOVERY_BOUND):
                await asyncio.shield(watching)
        finally:
            watching.cancel()
            await carol_client.aclose()
    finally:
        await stores.close()
    print(f"SILENT redis: carol closed {closed_at[0] - ended[0]:.1f} s after the fault; "
          f"last delivery {report['last_after_fault_s']} s after; statuses {report['statuses']}")
    assert dict(carol_client.realtime.stats.closes) == {1008: 1}
    assert closed_at[0] - ended[0] < REDIS_RECOVERY_BOUND
    assert report["last_after_fault_s"] < REDIS_RECOVERY_BOUND
    assert all(d["reconnects"] == 0 for d in report["devices"].values())  # the server recovered, not the clients
    assert set(report["statuses"]) <= {200, 201, 503}
    logs = [server.output() for server in stack.servers]
    assert all("Redis pub/sub silent" in log for log in logs)  # said, on both instances
    assert all("Traceback" not in log for log in logs)
    assert any(reason.startswith("no answer for") for reason in ready.failed("bus"))  # /ready said so
    print(f"SILENT redis: /ready 200 again {back:.1f} s after the flow; bus reasons {set(ready.failed('bus'))}")


async def test_postgresql_connections_silent_for_10s_between_sends(proxied_stack: Stack) -> None:
    """Every open PostgreSQL connection goes silent while no send is in flight (the pool's idle
    connections, the relay's), new ones too for 10 s. Requests answer (503) within
    PG_ANSWER_BOUND while it lasts, and /ready says so; afterwards the request pools recover
    by themselves: every message sent after it is acknowledged, nothing restarted. (Delivery
    after it is not asserted: see the xfail below and docs/reliability.md.)"""
    stack = proxied_stack
    a, b = stack.servers
    alice, _, conversation = await _alice_and_bob(stack)
    slowest: list[float] = []
    before = await send_messages([a.url, b.url], alice, conversation["id"], 10, 20.0, prefix="b")
    async with ReadyWatch(stack) as ready:
        stack.pg_proxy.silence()
        async with httpx.AsyncClient(timeout=60) as http:
            ends = time.monotonic() + SILENCE
            while time.monotonic() < ends:
                for server in (a, b):
                    began = time.monotonic()
                    response = await http.get(f"{server.url}/users/alice")
                    slowest.append(time.monotonic() - began)
                    assert response.status_code in (200, 503), response.text
        stack.pg_proxy.restore()
        restored = time.monotonic()
        after = await send_messages([a.url, b.url], alice, conversation["id"], 20, 20.0, prefix="a",
                                    answer_within=PG_ANSWER_BOUND + 2)
        acked_within = time.monotonic() - restored
    print(f"SILENT postgres between sends: slowest answer {max(slowest):.1f} s over {len(slowest)} probes; "
          f"20 sends after it acked within {acked_within:.1f} s ({dict(after.statuses)}); "
          f"/ready outbox reasons {sorted(set(ready.failed('outbox')))[-1:]}")
    assert max(slowest) < PG_ANSWER_BOUND
    assert len(before.acked) == 10 and len(after.acked) == 20 and not after.failed
    assert set(after.statuses) <= {200, 201, 503}
    assert ready.failed("postgres")
    assert all("Traceback" not in server.output() for server in stack.servers)


@pytest.mark.xfail(strict=False, reason=(
    "after a PostgreSQL silence the outbox stayed blocked for 60 s and more in runs at load 15-18 "
    "(its relay lock, or a conversation's row locks, held by a backend the server did not time "
    "out); passed at load ~8 (docs/reliability.md)"))
async def test_postgresql_connections_silent_for_10s(proxied_stack: Stack) -> None:
    """Every open PostgreSQL connection goes silent (the relay's mid-transaction, holding its
    advisory lock), new ones too for 10 s. Requests answer (503 while it lasts) within
    PG_ANSWER_BOUND; afterwards the pools recover by themselves and every message is
    delivered exactly once."""
    stack = proxied_stack
    slowest: list[float] = []
    stop_probing = asyncio.Event()

    async def probe(url: str) -> None:
        """A request that needs PostgreSQL, every 0.5 s: how long each takes to answer."""
        async with httpx.AsyncClient(timeout=60) as http:
            while not stop_probing.is_set():
                began = time.monotonic()
                response = await http.get(f"{url}/users/alice")
                slowest.append(time.monotonic() - began)
                assert response.status_code in (200, 404, 503), response.text  # (404 until alice exists)
                await asyncio.sleep(0.5)

    probing = [asyncio.create_task(probe(server.url)) for server in stack.servers]
    try:
        async with ReadyWatch(stack) as ready:
            # The sender waits for an answer longer than the server may take (PG_ANSWER_BOUND):
            # a client that gives up first and retries at once piles requests on the one row
            # lock every send to this conversation takes, and on a loaded machine they never
            # get through (congestion collapse, seen with 5 s).
            report = await _flow(stack, "PostgreSQL connections silent 10 s (proxy)",
                                 lambda s: _silence("pg_proxy", s), send_timeout=PG_ANSWER_BOUND + 2)
            back = await ready.wait_ready(20)
    finally:
        stop_probing.set()
        await asyncio.gather(*probing)
    print(f"SILENT postgres: slowest answer {max(slowest):.1f} s over {len(slowest)} probes; "
          f"last delivery {report['last_after_fault_s']} s after; statuses {report['statuses']}")
    assert max(slowest) < PG_ANSWER_BOUND
    assert report["statuses"].get(503, 0) > 0
    assert set(report["statuses"]) <= {200, 201, 503}
    assert all("Traceback" not in server.output() for server in stack.servers)
    assert ready.failed("postgres")  # /ready said so
    print(f"SILENT postgres: /ready 200 again {back:.1f} s after the flow; "
          f"outbox reasons {set(ready.failed('outbox'))}")


async def test_a_redis_stall_is_answered_promptly_and_leaves_no_crowd_of_connections(proxied_stack: Stack) -> None:
    """Redis traffic held for 10 s (bytes delivered afterwards): requests that need Redis answer
    503 after its command timeout, those that can do without it (the session check, cached
    reads) answer from PostgreSQL; the pool does not swell and stay swollen."""
    from redis.asyncio import Redis

    from tests.factories import PASSWORD

    stack = proxied_stack
    a = stack.servers[0]
    stores = await open_stores(load_settings(environ=stack.direct_env))
    direct = Redis.from_url(stack.direct_env["NUBO_REDIS_URL"])
    answers: list[tuple[str, int, float]] = []
    try:
        alice = await make_user(stores, "alice")

        async def one(http: httpx.AsyncClient, kind: str) -> None:
            began = time.monotonic()
            if kind == "login":
                response = await http.post("/login", json={"username": "alice", "password": PASSWORD})
            else:
                response = await http.get("/me", headers=alice.headers)
            answers.append((kind, response.status_code, time.monotonic() - began))

        async with httpx.AsyncClient(base_url=a.url, timeout=30) as http:
            stack.redis_proxy.stall()
            try:
                asking = []
                for n in range(80):  # 8 s at 10 requests a second
                    asking.append(asyncio.create_task(one(http, "login" if n % 4 == 0 else "me")))
                    await asyncio.sleep(0.1)
                await asyncio.gather(*asking)
            finally:
                await asyncio.sleep(max(0.0, SILENCE - 8))
                stack.redis_proxy.resume()
            peak = stack.redis_proxy.open_connections
            await asyncio.sleep(3)
            after = int((await direct.info("clients"))["connected_clients"])
            assert (await http.get("/me", headers=alice.headers)).status_code == 200
    finally:
        await direct.aclose()
        await stores.close()
    slowest = max(seconds for _, _, seconds in answers)
    statuses = {kind: sorted({status for k, status, _ in answers if k == kind}) for kind in ("login", "me")}
    print(f"STALL redis: {len(answers)} answers, slowest {slowest:.1f} s, statuses {statuses}; "
          f"connections through the proxy at the end of the stall {peak}, clients of Redis 3 s after {after}")
    assert slowest < STALL_ANSWER_BOUND
    assert statuses["me"] == [200]  # the session check fell back to the token's signature
    assert set(statuses["login"]) <= {200, 503}
    assert after < 60  # not the 256 of a pool that grew and stayed
    assert "Traceback" not in a.output()
