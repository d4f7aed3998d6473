"""Prometheus metrics read from real instances' /metrics after real traffic (observability/)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys

import httpx
import pytest

from nubo_backend.stores import Stores
from tests.auth_support import PASSWORD, signup
from tests.conftest import STARTUP_WITHIN
from tests.e2e.ws_support import open_ws
from tests.factories import announce_event, make_user
from tests.metrics_support import scrape, value, wait_for_metric
from tests.support import ROOT, MongoEmulator, ServerProcess, free_port, jongodb_binary, start_process, wait_for_ping


def metrics_env(port: int | None = None) -> dict[str, str]:
    return {"NUBO_METRICS_PORT": str(port or free_port()), "NUBO_METRICS_SAMPLE_INTERVAL": "0.2"}


@pytest.fixture
def metered(start_patiently) -> tuple[ServerProcess, int]:
    """A real server with its metrics on a port of its own (another, should a process of the
    machine take the free port between its choice and the server's bind)."""
    for attempt in range(3):
        env = metrics_env()
        try:
            return start_patiently(env), int(env["NUBO_METRICS_PORT"])
        except RuntimeError as exc:
            if "Address already in use" not in str(exc) or attempt == 2:
                raise
    raise AssertionError("unreachable")


async def test_requests_are_counted_under_their_route_template_method_and_status(metered) -> None:
    server, port = metered
    before = scrape(port)
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as api:
        for _ in range(3):  # (not /ping, which the start-up's readiness polls may still be answering)
            assert (await api.get("/health")).status_code == 200
        assert (await api.get("/posts/41")).status_code == 404  # (a raw path per post would be a series per post)
        assert (await api.get("/posts/42")).status_code == 404
        assert (await api.get("/no/such/page")).status_code == 404

    def moved(name: str, samples=None, **labels: str) -> float:
        return value(samples or after, name, **labels) - value(before, name, **labels)

    # (counted at once, added to the metrics within the flush interval)
    after = wait_for_metric(port, lambda s: moved("nubo_http_requests_total", s, route="unmatched", method="GET",
                                                  status="404") == 1)
    assert moved("nubo_http_requests_total", route="/health", method="GET", status="200") == 3
    assert moved("nubo_http_requests_total", route="/posts/{post_id}", method="GET", status="404") == 2
    assert moved("nubo_http_requests_total", route="unmatched", method="GET", status="404") == 1
    assert moved("nubo_http_request_duration_seconds_count", route="/health", method="GET") == 3
    assert not any(("/posts/41" in str(key)) for key in after)
    assert value(after, "nubo_http_requests_in_flight") == 0
    assert value(after, "process_resident_memory_bytes") > 0  # the standard process collectors


async def test_a_websocket_opened_then_closed_is_counted_with_its_close_code(stores: Stores, metered) -> None:
    server, port = metered
    user = await make_user(stores)
    ws = await open_ws(server, user)
    await ws.send('{"type": "ping"}')
    await ws.recv()
    samples = wait_for_metric(port, lambda s: value(s, "nubo_ws_frames_total", direction="in") >= 1)
    assert value(samples, "nubo_ws_connections") == 1
    assert value(samples, "nubo_ws_opens_total") == 1
    assert value(samples, "nubo_ws_frames_total", direction="out") >= 2  # ready, pong
    await ws.close()
    samples = wait_for_metric(port, lambda s: value(s, "nubo_ws_connections") == 0)
    assert value(samples, "nubo_ws_closes_total", code="1000") == 1


async def test_logins_are_counted_by_outcome(metered) -> None:
    server, port = metered
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as api:
        user = await signup(api)
        username = user["user"]["username"]
        assert (await api.post("/login", json={"username": username, "password": PASSWORD})).status_code == 200
        assert (await api.post("/login", json={"username": username, "password": "wrong" * 3})).status_code == 401
    samples = wait_for_metric(port, lambda s: value(s, "nubo_auth_logins_total", outcome="invalid_credentials") == 1)
    assert value(samples, "nubo_auth_logins_total", outcome="success") == 1
    assert value(samples, "nubo_auth_logins_total", outcome="invalid_credentials") == 1


async def test_stores_are_up_and_their_pools_sampled(metered) -> None:
    _server, port = metered
    # (the pools are sampled before the health checks: their connections show from the second sample)
    samples = wait_for_metric(port, lambda s: all(value(s, "nubo_pool_connections", store=store, state="idle") >= 1
                                                  for store in ("postgres", "mongo")))
    for store in ("postgres", "redis", "mongo"):
        assert value(samples, "nubo_store_up", store=store) == 1
    assert value(samples, "nubo_pool_max_connections", store="postgres") > 0
    # MongoDB's pool, from PyMongo's pool events: its default size, the health checks' check-outs timed.
    assert value(samples, "nubo_pool_max_connections", store="mongo") == 100
    assert value(samples, "nubo_pool_wait_seconds_count", store="mongo") >= 1


async def test_mongodb_pool_has_no_idle_connection_while_mongodb_stalls_and_shows_the_waits_after(
    own_database, stores: Stores, start_patiently,
) -> None:
    """A server on a private MongoDB with a pool of 2: frozen (SIGSTOP) for about a second,
    four reads of /notifications take both connections and two of them wait: the pool shows
    no idle connection; thawed, all four answer, none stays busy, and the waits through the
    stall are in the histogram.

    Pool figures are the client's (PyMongo's pool events), so the wire-protocol stand-in shows
    them as a real MongoDB would; a private server is needed only to freeze it. The stall is
    kept shorter than connectTimeoutMS (2 s), so that connections opening during it survive."""
    binary = jongodb_binary()
    if binary is None:
        pytest.skip("needs the MongoDB emulator (a private one to freeze)")
    mongo = MongoEmulator(binary).start()
    try:
        env = {**metrics_env(), "NUBO_POSTGRES_DSN": own_database.postgres_dsn,
               "NUBO_MONGO_URL": f"{mongo.url}/?maxPoolSize=2", "NUBO_MONGO_DB": own_database.mongo_db}
        port = int(env["NUBO_METRICS_PORT"])
        server = start_patiently(env)
        before = wait_for_metric(port, lambda s: value(s, "nubo_pool_connections", store="mongo", state="idle") >= 1)
        assert value(before, "nubo_pool_max_connections", store="mongo") == 2
        own_stores = await _stores_on(own_database, stores)
        try:
            user = await make_user(own_stores)
        finally:
            await own_stores.close()

        def mongo_pool(samples, name: str, **labels: str) -> float:
            return value(samples, name, store="mongo", **labels)

        def waits(samples, longer_than: str | None = None) -> float:
            """Check-outs timed since `before` (longer than a bucket's bound, when given)."""
            count = "nubo_pool_wait_seconds_count"
            moved = mongo_pool(samples, count) - mongo_pool(before, count)
            if longer_than is None:
                return moved
            within = (mongo_pool(samples, "nubo_pool_wait_seconds_bucket", le=longer_than)
                      - mongo_pool(before, "nubo_pool_wait_seconds_bucket", le=longer_than))
            return moved - within

        async with httpx.AsyncClient(base_url=server.url, timeout=30, headers=user.headers) as api:
            os.kill(mongo.proc.pid, signal.SIGSTOP)
            reads = [asyncio.create_task(api.get("/notifications")) for _ in range(4)]
            try:
                full = lambda s: (mongo_pool(s, "nubo_pool_connections", state="busy")  # noqa: E731
                                  + mongo_pool(s, "nubo_pool_connections", state="opening")) == 2
                stalled = await asyncio.to_thread(wait_for_metric, port, full, 5)  # (the reads go on meanwhile)
                await asyncio.sleep(0.5)  # (the waiting reads wait through this)
            finally:
                os.kill(mongo.proc.pid, signal.SIGCONT)
                answers = await asyncio.gather(*reads, return_exceptions=True)
        assert [getattr(r, "status_code", r) for r in answers] == [200] * 4, answers
        assert mongo_pool(stalled, "nubo_pool_connections", state="idle") == 0  # (none free for them)
        after = wait_for_metric(port, lambda s: mongo_pool(s, "nubo_pool_connections", state="busy") == 0
                                and mongo_pool(s, "nubo_pool_connections", state="opening") == 0 and waits(s) >= 4)
        assert mongo_pool(after, "nubo_pool_connections", state="idle") >= 1
        assert waits(after, longer_than="0.5") >= 2  # two reads at least waited through the stall
    finally:
        os.kill(mongo.proc.pid, signal.SIGCONT)
        mongo.stop()


async def test_outbox_backlog_grows_while_the_journal_is_frozen_and_drains_after(
    own_database, stores: Stores, start_patiently,
) -> None:
    """The relay journals to MongoDB: with a private MongoDB frozen (SIGSTOP), events wait in
    the outbox and the backlog gauges say so; thawed, the relay drains them to zero."""
    binary = jongodb_binary()
    if binary is None:
        pytest.skip("needs the MongoDB emulator (a private one to freeze)")
    mongo = MongoEmulator(binary).start()
    try:
        env = {**metrics_env(), "NUBO_POSTGRES_DSN": own_database.postgres_dsn, "NUBO_MONGO_URL": mongo.url,
               "NUBO_MONGO_DB": own_database.mongo_db}
        port = int(env["NUBO_METRICS_PORT"])
        start_patiently(env)
        wait_for_metric(port, lambda s: value(s, "nubo_store_up", store="mongo") == 1)
        own_stores = await _stores_on(own_database, stores)
        try:
            user = await make_user(own_stores)
            os.kill(mongo.proc.pid, signal.SIGSTOP)
            try:
                await announce_event(own_stores, [user.id], "post.created", {"post_id": 1})
                await announce_event(own_stores, [user.id], "post.created", {"post_id": 2})
                held = wait_for_metric(port, lambda s: value(s, "nubo_outbox_backlog_events", lane="all") == 2)
                assert value(held, "nubo_outbox_oldest_age_seconds", lane="all") >= 0
                wait_for_metric(port, lambda s: value(s, "nubo_outbox_oldest_age_seconds", lane="all") > 0.3)
            finally:
                os.kill(mongo.proc.pid, signal.SIGCONT)
            drained = wait_for_metric(port, lambda s: value(s, "nubo_outbox_backlog_events", lane="all") == 0,
                                      within=30)
            assert value(drained, "nubo_outbox_oldest_age_seconds", lane="all") == 0
        finally:
            await own_stores.close()
    finally:
        os.kill(mongo.proc.pid, signal.SIGCONT)
        mongo.stop()


async def _stores_on(own, stores: Stores) -> Stores:
    from nubo_backend.stores import open_stores

    return await open_stores(own.replace(redis_namespace=stores.settings.redis_namespace), pool_size=2)


def test_workers_share_one_metrics_endpoint(test_env, session_stores) -> None:
    metrics_port = free_port()
    server = ServerProcess({**test_env, **metrics_env(metrics_port)}, args=["--workers", "2"]).start(wait=False)
    try:
        server.wait_ready(timeout=STARTUP_WITHIN)
        for _ in range(6):  # spread over both workers by the kernel: the figure is their sum
            assert httpx.get(f"{server.url}/health", timeout=10).status_code == 200
        wait_for_metric(metrics_port, lambda s: value(s, "nubo_http_requests_total", route="/health",
                                                      method="GET", status="200") == 6)
        assert f"metrics on http://127.0.0.1:{metrics_port}/metrics" in server.output()
    finally:
        server.stop()


def test_instances_each_serve_their_metrics_on_their_own_port(test_env, session_stores) -> None:
    port, metrics_port = _free_pair(), _free_pair()
    proc = start_process(
        [sys.executable, "-m", "cli", "serve", "--port", str(port), "--instances", "2",
         "--metrics-port", str(metrics_port)],
        cwd=ROOT, env={**os.environ, **test_env}, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        start_new_session=True,
    )
    try:
        lines = [proc.stdout.readline() for _ in range(2)]
        for i, line in enumerate(lines):
            assert line.startswith(f"instance {i + 1}/2: http://127.0.0.1:{port + i} (pid ")
            assert line.rstrip().endswith(f" metrics http://127.0.0.1:{metrics_port + i}/metrics")
        for i in range(2):
            wait_for_ping(port + i)
            httpx.get(f"http://127.0.0.1:{port + i}/health", timeout=10)
        for i in range(2):
            wait_for_metric(metrics_port + i, lambda s: value(s, "nubo_http_requests_total", route="/health",
                                                              method="GET", status="200") == 1)
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_a_taken_metrics_port_stops_the_server_with_one_line(test_env, session_stores) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        metrics_port = taken.getsockname()[1]
        server = ServerProcess({**test_env, **metrics_env(metrics_port)})
        server.start(wait=False)
        try:
            code = server.proc.wait(timeout=60)
        finally:
            server.stop()
    assert code == 78, server.output()  # EXIT_CANNOT_START: not restarted by --instances
    assert f"cannot serve metrics on 127.0.0.1:{metrics_port}" in server.output()


def _free_pair() -> int:
    """A port p with p + 1 free too."""
    import socket

    while True:
        p = free_port()
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", p + 1))
                return p
            except OSError:
                continue
