"""Case 3: an over-limit body gets the JSON 413 whatever the client does while it is refused:
write it all first (httpx.AsyncClient), chunk it, or ask with Expect: 100-continue."""

from __future__ import annotations

import socket

import httpx
import pytest

from tests.hostile.conftest import ServerLog
from tests.support import ServerProcess

TOO_LARGE = {"error": "Request body too large", "code": "payload_too_large"}


@pytest.mark.parametrize("mib", [4, 32])
async def test_client_writing_its_whole_body_first_reads_the_413(
    server: ServerProcess, server_log: ServerLog, mib: int
) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        response = await client.post("/posts", content=b"x" * (mib << 20),
                                     headers={"Content-Type": "application/json"})
    assert (response.status_code, response.json()) == (413, TOO_LARGE)


async def test_chunked_body_over_the_limit_reads_the_413(server: ServerProcess, server_log: ServerLog) -> None:
    async def chunks():
        for _ in range(64):
            yield b"x" * (64 << 10)  # 4 MiB in all

    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        response = await client.post("/posts", content=chunks(), headers={"Content-Type": "application/json"})
    assert (response.status_code, response.json()) == (413, TOO_LARGE)


def test_expect_continue_with_an_over_limit_length_gets_413_not_100(
    server: ServerProcess, server_log: ServerLog
) -> None:
    request = (
        "POST /posts HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        "Content-Length: 50000000\r\nExpect: 100-continue\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(request.encode())
        data = b""
        while chunk := sock.recv(65536):  # the server ends its side after the answer
            data += chunk
    assert data.startswith(b"HTTP/1.1 413 "), data[:200]
    assert b"100 Continue" not in data
    assert data.endswith(b'{"error":"Request body too large","code":"payload_too_large"}')
