import asyncio
import json
import time

import httpx
import pytest
from redis.asyncio import Redis

from nubo_backend.stores import Stores
from tests.factories import PASSWORD, make_user
from tests.support import PrivateRedis

RELAY_LOCK = 7237599036432887809  # the relay's advisory lock (sql/queries/outbox/outbox.sql)


async def _ready_until(client: httpx.AsyncClient, status: int, within: float = 15.0) -> httpx.Response:
    deadline = time.monotonic() + within
    while True:
        response = await client.get("/ready")
        if response.status_code == status or time.monotonic() > deadline:
            return response
        await asyncio.sleep(0.2)


async def test_ping_answers_pong_as_in_the_seed(api: httpx.AsyncClient) -> None:
    response = await api.get("/ping")
    assert response.status_code == 200
    assert response.json() == {"message": "pong"}


async def test_health_says_process_is_alive(api: httpx.AsyncClient) -> None:
    response = await api.get("/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


async def test_ready_checks_every_store(api: httpx.AsyncClient, server) -> None:
    response = await api.get("/ready")
    assert response.status_code == 200
    # It says which process answered (./scripts/dev trusts only its own).
    assert response.json()["instance"]["pid"] == server.proc.pid
    assert response.json()["checks"] == {
        "postgres": "ok", "redis": "ok", "mongo": "ok", "schema": "ok", "bus": "ok", "outbox": "ok",
        "redis_eviction": "ok",
    }


async def test_ready_names_the_store_that_fails(start_server) -> None:
    redis = PrivateRedis().start()
    try:
        server = start_server({"NUBO_REDIS_URL": redis.url})
        async with httpx.AsyncClient(base_url=server.url) as client:
            assert (await client.get("/ready")).status_code == 200
            redis.stop()
            response = await client.get("/ready")
        body = response.json()
        assert response.status_code == 503
        assert body["code"] == "not_ready"
        assert "redis" in body["error"]
        assert body["checks"]["postgres"] == "ok"
        assert body["checks"]["redis"] != "ok"
    finally:
        redis.stop()


async def test_with_redis_down_a_login_is_a_503_and_the_log_holds_no_traceback(start_server, stores: Stores) -> None:
    await make_user(stores, "carol")
    redis = PrivateRedis().start()
    try:
        server = start_server({"NUBO_REDIS_URL": redis.url})
        redis.stop()
        async with httpx.AsyncClient(base_url=server.url, timeout=20) as client:
            response = await client.post("/login", json={"username": "carol", "password": PASSWORD})
        assert response.status_code == 503, response.text
        assert set(response.json()) == {"error", "code"}
        log = server.output()
        assert "Traceback" not in log and "unhandled error" not in log, log[-3000:]
    finally:
        redis.stop()


async def test_ready_fails_while_an_event_waits_in_the_outbox_too_long(start_server, stores: Stores) -> None:
    """The relay blocked (its lock held, as by a connection gone silent mid-batch): the event
    waits, /ready says how long, and is 200 again once it has gone out."""
    server = start_server({"NUBO_READY_OUTBOX_AGE": "1"})
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client, stores.pg.acquire() as conn:
        assert (await client.get("/ready")).status_code == 200
        blocking = conn.transaction()
        await blocking.start()
        try:
            await conn.execute("SELECT pg_advisory_xact_lock($1)", RELAY_LOCK)
            await stores.pg.execute(
                "INSERT INTO outbox (type, data, recipients, event_ids) VALUES ('test.event', '{}', '{1}', '{1}')"
            )
            response = await _ready_until(client, 503)
        finally:
            await blocking.rollback()
        body = response.json()
        assert response.status_code == 503, body
        assert body["checks"]["outbox"].startswith("oldest event waiting")
        assert "outbox: oldest event waiting" in body["error"]
        assert (await _ready_until(client, 200)).status_code == 200


async def test_a_redis_that_evicts_any_key_is_refused_at_start_up_and_fails_ready(start_server) -> None:
    """allkeys-lru with a memory limit would drop sessions and rate limits without a word: the
    server refuses to start on it, or with NUBO_REDIS_EVICTION=warn starts, says so, and is not
    ready until the policy is noeviction."""
    redis = PrivateRedis(args=["--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru"]).start()
    admin = Redis.from_url(redis.url)
    try:
        with pytest.raises(RuntimeError) as refused:
            start_server({"NUBO_REDIS_URL": redis.url})
        assert "maxmemory-policy allkeys-lru evicts any key" in str(refused.value)
        assert "NUBO_REDIS_EVICTION=warn" in str(refused.value)

        server = start_server({"NUBO_REDIS_URL": redis.url, "NUBO_REDIS_EVICTION": "warn"})
        assert "allkeys-lru evicts any key" in server.output()
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            response = await client.get("/ready")
            assert response.status_code == 503
            reason = response.json()["checks"]["redis_eviction"]
            assert reason == "maxmemory-policy allkeys-lru evicts any key when full"
            await admin.config_set("maxmemory-policy", "noeviction")
            assert (await client.get("/ready")).status_code == 200
    finally:
        await admin.aclose()
        redis.stop()


async def test_every_response_carries_a_request_id(api: httpx.AsyncClient) -> None:
    response = await api.get("/ping", headers={"X-Request-ID": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"


async def test_openapi_document_is_served(api: httpx.AsyncClient) -> None:
    response = await api.get("/docs/openapi.json")
    assert response.status_code == 200
    spec = response.json()
    assert spec["info"]["title"] == "Nubo API"
    assert "/ping" in spec["paths"]
    assert "WebSocket" in spec["paths"]["/ws"]["get"]["summary"]


async def test_openapi_describes_bodies_ids_pages_and_auth_of_every_domain(api: httpx.AsyncClient) -> None:
    paths = (await api.get("/docs/openapi.json")).json()["paths"]
    body = paths["/posts"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/PostIn"}
    assert "requestBody" in paths["/conversations/{conversation_id}/messages"]["post"]
    post_id = {p["name"]: p for p in paths["/posts/{post_id}"]["get"]["parameters"]}["post_id"]
    assert post_id["in"] == "path" and post_id["schema"]["type"] == "integer"
    assert post_id["schema"]["maximum"] == 2**63 - 1
    feed = {p["name"]: p["schema"] for p in paths["/feed"]["get"]["parameters"]}
    assert feed["limit"]["maximum"] == 100 and feed["cursor"]["type"] == "string"
    assert paths["/feed"]["get"]["security"] == [{"bearer": []}]
    assert paths["/posts/{post_id}/like"]["put"]["security"] == [{"bearer": []}]
    # Readable without a token, or with one (then `liked_by_me` is the viewer's):
    assert sorted(paths["/posts"]["get"]["security"], key=len) == [{}, {"bearer": []}]
    assert "security" not in paths["/ping"]["get"]


async def test_openapi_body_schemas_use_the_documents_own_dialect(api: httpx.AsyncClient) -> None:
    spec = (await api.get("/docs/openapi.json")).json()
    assert spec["openapi"].startswith("3.0")
    schemas = json.dumps(spec["components"]["schemas"])
    assert '{"type": "null"}' not in schemas  # OpenAPI 3.0 says `nullable: true`
    assert '"exclusiveMinimum": 0' not in schemas  # a boolean in 3.0, not a bound
    username = spec["components"]["schemas"]["LoginBody"]["properties"]["username"]
    assert username["type"] == "string" and username["nullable"] is True
