"""Case 10 (HTTP side): a body that is not declared JSON is a 415, and a 405 says what is allowed."""

from __future__ import annotations

import httpx
import pytest

from nubo_backend.stores import Stores
from tests.factories import make_user
from tests.hostile.conftest import ServerLog


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "image/png", None])
async def test_json_under_another_content_type_is_415(
    api: httpx.AsyncClient, stores: Stores, server_log: ServerLog, content_type: str | None
) -> None:
    user = await make_user(stores)
    headers = {**user.headers, **({"Content-Type": content_type} if content_type else {})}
    response = await api.post("/posts", content=b'{"body": "hello"}', headers=headers)
    assert (response.status_code, response.json()["code"]) == (415, "unsupported_media_type")
    assert (await api.get("/posts")).json()["items"] == []


async def test_json_with_a_charset_or_a_json_suffix_is_accepted(
    api: httpx.AsyncClient, stores: Stores, server_log: ServerLog
) -> None:
    user = await make_user(stores)
    for content_type in ("application/json; charset=utf-8", "application/merge-patch+json"):
        response = await api.post("/posts", content=b'{"body": "hello"}',
                                  headers={**user.headers, "Content-Type": content_type})
        assert response.status_code == 201, response.text


async def test_wrong_method_is_405_with_allow(api: httpx.AsyncClient, server_log: ServerLog) -> None:
    response = await api.delete("/login")
    assert (response.status_code, response.json()["code"]) == (405, "method_not_allowed")
    assert set(response.headers["allow"].replace(" ", "").split(",")) >= {"POST"}


@pytest.mark.parametrize("method,path", [("TRACE", "/comments/1"), ("TRACE", "/posts/1"), ("PUT", "/ping")])
async def test_every_405_names_the_allowed_methods(
    api: httpx.AsyncClient, server_log: ServerLog, method: str, path: str
) -> None:
    response = await api.request(method, path)
    assert response.status_code == 405
    assert response.headers.get("allow"), response.headers
    assert method not in response.headers["allow"]


@pytest.mark.parametrize("query", ["limit=", "limit=&cursor=", "limit=%20"])
async def test_an_empty_limit_is_422_not_the_default(api: httpx.AsyncClient, server_log: ServerLog,
                                                     query: str) -> None:
    response = await api.get(f"/posts?{query}")
    assert (response.status_code, response.json()["details"][0]["field"]) == (422, "limit")


async def test_an_empty_cursor_is_the_first_page(api: httpx.AsyncClient, server_log: ServerLog) -> None:
    assert (await api.get("/posts?cursor=")).status_code == 200


@pytest.mark.parametrize("content_type, body", [
    ("multipart/form-data", b"--x\r\nno headers here\r\n--x--\r\n"),  # no boundary parameter
    ("multipart/form-data; boundary=x", b"--x\r\nno colon in this part header\r\n\r\nDATA\r\n--x--\r\n"),
])
async def test_a_malformed_multipart_upload_is_422_without_a_traceback(
    api: httpx.AsyncClient, stores: Stores, server_log: ServerLog, content_type: str, body: bytes
) -> None:
    user = await make_user(stores)
    response = await api.post("/media", content=body, headers={**user.headers, "Content-Type": content_type})
    assert (response.status_code, response.json()["details"][0]["field"]) == (422, "file")
    assert "Failed when parsing form" not in server_log.text()
