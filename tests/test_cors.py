"""CORS: off unless NUBO_CORS_ORIGINS names origins; then those origins, and only those, may call
the API from a browser (and read the X-Request-ID of its answers)."""

from __future__ import annotations

import httpx

ORIGIN = "https://app.example"


async def test_cors_is_off_by_default(api: httpx.AsyncClient) -> None:
    response = await api.get("/ping", headers={"Origin": ORIGIN})
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers


async def test_a_configured_origin_may_call_and_read_the_request_id(start_server) -> None:
    server = start_server({"NUBO_CORS_ORIGINS": f"{ORIGIN}, https://admin.example"})
    async with httpx.AsyncClient(base_url=server.url) as client:
        allowed = await client.get("/ping", headers={"Origin": ORIGIN})
        other = await client.get("/ping", headers={"Origin": "https://evil.example"})
        error = await client.get("/no-such-route", headers={"Origin": "https://admin.example"})
        preflight = await client.options("/posts", headers={
            "Origin": ORIGIN, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        })
    assert allowed.headers["access-control-allow-origin"] == ORIGIN
    assert allowed.headers["access-control-expose-headers"] == "x-request-id"
    assert "x-request-id" in allowed.headers
    assert "access-control-allow-origin" not in other.headers
    assert (error.status_code, error.headers["access-control-allow-origin"]) == (404, "https://admin.example")
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == ORIGIN
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert set(preflight.headers["access-control-allow-headers"].split(",")) == {"authorization", "content-type"}
