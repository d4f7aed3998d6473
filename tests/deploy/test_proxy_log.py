"""Issue #26, item 10: the production proxy's access log keeps no access token, though a page's
<img src> and a WebSocket carry it in the query string (`?access_token=`)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from nubo_backend.jsonutil import loads
from tests.deploy.caddy_support import CaddyProxy
from tests.support import ServerProcess

SECRET = "eyJzZWNyZXQiOiJ0b2tlbiJ9.never-logged"


@pytest.fixture
def proxy(server: ServerProcess) -> Iterator[CaddyProxy]:
    caddy = CaddyProxy([server.port]).start()
    yield caddy
    caddy.stop()


def _access_lines(proxy: CaddyProxy) -> list[dict]:
    lines = [loads(line) for line in proxy.output().splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("logger", "").startswith("http.log.access")]


async def test_the_access_log_keeps_the_path_and_the_query_but_no_token(proxy: CaddyProxy) -> None:
    async with httpx.AsyncClient(base_url=proxy.url, timeout=10) as client:
        image = await client.get("/media/999999", params={"size": "small", "access_token": SECRET})
        header = await client.get("/me", headers={"Authorization": f"Bearer {SECRET}"})
    # Only the log is filtered: the API still receives (and refuses) the token itself.
    assert [(r.status_code, r.json()["code"]) for r in (image, header)] == [(401, "invalid_token")] * 2
    for _ in range(50):  # bounded: Caddy writes each line as its response goes out
        if len(_access_lines(proxy)) >= 2:
            break
        await asyncio.sleep(0.1)
    uris = [urlsplit(line["request"]["uri"]) for line in _access_lines(proxy)]
    assert [(u.path, parse_qs(u.query)) for u in uris] == [
        ("/media/999999", {"size": ["small"], "access_token": ["REDACTED"]}), ("/me", {})]
    assert SECRET not in proxy.output()
