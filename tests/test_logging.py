import io
import json
import logging

import httpx
import pytest

from nubo_backend.observability.logs import AccessLog, RequestIds, setup_logging
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


@pytest.mark.parametrize("log_format", ["json", "text"])
@pytest.mark.parametrize("path", ['/posts/"7"', "/posts?cursor=abc%2F", "/tags/caf\u00e9/posts", "/a\\b"])
async def test_the_access_line_is_the_line_logging_would_write(log_format: str, path: str, settings) -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        setup_logging(settings.replace(log_format=log_format, log_level="INFO"))
        stream = io.StringIO()
        root.handlers[0].setStream(stream)
        fields = {"method": "GET", "path": path, "client_ip": "203.0.113.9", "status": 200,
                  "duration_ms": 1.25, "request_id": "r-1"}
        logging.getLogger("nubo.access").info("request", extra=fields)
        access = AccessLog()
        assert access.stream is stream
        access.request("GET", path, "203.0.113.9", 200, 1.2534, "r-1")
        access.flush()
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    by_logging, ours = stream.getvalue().splitlines()
    if log_format == "json":
        expected, got = json.loads(by_logging), json.loads(ours)
        assert got.pop("ts")[:19] == expected.pop("ts")[:19]
        assert got == expected
    else:
        assert ours[8:] == by_logging[8:]  # after the HH:MM:SS stamp


def test_request_ids_made_here_are_32_alphanumerics_and_never_repeat() -> None:
    ids = RequestIds()
    made = [ids.next() for _ in range(1000)]
    assert len(set(made)) == 1000 and all(len(i) == 32 and i.isalnum() for i in made)
    assert RequestIds().next()[:16] != made[0][:16]
