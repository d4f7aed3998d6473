import json

import httpx

from tests.polling import eventually


async def test_production_logs_one_json_line_per_request(start_server, stores) -> None:
    server = start_server({"NUBO_ENV": "production", "NUBO_JWT_SECRET": "k" * 40, "NUBO_HOST": "127.0.0.1"})
    async with httpx.AsyncClient(base_url=server.url) as client:
        await client.get("/ping", headers={"X-Request-ID": "req-42"})
        await client.get("/missing")
    server.stop()
    lines = [json.loads(line) for line in server.output().splitlines() if line.startswith("{")]
    requests = [entry for entry in lines if entry["msg"] == "request"]
    ping = next(entry for entry in requests if entry["request_id"] == "req-42")
    assert ping["method"] == "GET" and ping["path"] == "/ping" and ping["status"] == 200
    assert isinstance(ping["duration_ms"], float)
    assert any(entry["path"] == "/missing" and entry["status"] == 404 for entry in requests)


async def test_several_workers_share_one_port(start_server, stores) -> None:
    server = start_server(args=["--workers", "2"])
    async with httpx.AsyncClient(base_url=server.url) as client:
        responses = [await client.get("/ping") for _ in range(4)]
    assert all(r.json() == {"message": "pong"} for r in responses)

    async def workers_with_open_stores() -> int:  # the second worker may still be starting
        return server.output().count("stores open")

    assert await eventually(workers_with_open_stores, 2, within=15) == 2
