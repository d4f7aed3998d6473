import json

import httpx

from tests.support import PrivateRedis


async def test_ping_answers_pong_as_in_the_seed(api: httpx.AsyncClient) -> None:
    response = await api.get("/ping")
    assert response.status_code == 200
    assert response.json() == {"message": "pong"}


async def test_health_says_process_is_alive(api: httpx.AsyncClient) -> None:
    response = await api.get("/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


async def test_ready_checks_every_store(api: httpx.AsyncClient) -> None:
    response = await api.get("/ready")
    assert response.status_code == 200
    assert response.json()["checks"] == {"postgres": "ok", "redis": "ok", "mongo": "ok", "schema": "ok"}


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
