"""Case 8: a request head RFC 9112 does not allow is a JSON 400, and a client's request id is
kept only when it is safe to log."""

from __future__ import annotations

import re
import socket

import httpx
import pytest

from nubo_backend.jsonutil import loads
from tests.hostile.conftest import ServerLog
from tests.support import ServerProcess


def exchange(server: ServerProcess, head: bytes, body: bytes = b"") -> bytes:
    """Send one raw request; everything the server answers until it closes or goes quiet."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=3) as sock:
        sock.sendall(head + b"\r\n\r\n" + body)
        data = b""
        try:
            while chunk := sock.recv(65536):
                data += chunk
                if data.endswith(b"}"):
                    break
        except TimeoutError:
            pass
    return data


MALFORMED = {
    "space before colon in Transfer-Encoding": (
        b"POST /login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\nContent-Length: 2",
        b"{}",
    ),
    "no Host": (b"GET /ping HTTP/1.1", b""),
    "two Hosts": (b"GET /ping HTTP/1.1\r\nHost: a\r\nHost: b", b""),
    "NUL in a header value": (b"GET /ping HTTP/1.1\r\nHost: x\r\nX-A: a\x00b", b""),
    "bare CR in a header value": (b"GET /ping HTTP/1.1\r\nHost: x\r\nX-A: a\rb", b""),
    "control byte in the path": (b"GET /pi\x01ng HTTP/1.1\r\nHost: x", b""),
    "LF in the method": (b"GE\nT /ping HTTP/1.1\r\nHost: x", b""),
    "folded header line": (b"GET /ping HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b", b""),
}


@pytest.mark.parametrize("head,body", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_request_is_a_json_400(
    server: ServerProcess, server_log: ServerLog, head: bytes, body: bytes
) -> None:
    data = exchange(server, head, body)
    assert data.startswith(b"HTTP/1.1 400 "), data[:300]
    assert loads(data.partition(b"\r\n\r\n")[2])["code"] == "bad_request"
    # Nothing the client sent lands raw in the log: every line is one of ours.
    assert all(re.match(r"\d\d:\d\d:\d\d ", line) for line in server_log.text().splitlines())


async def test_a_safe_request_id_is_kept(api: httpx.AsyncClient, server_log: ServerLog) -> None:
    response = await api.get("/ping", headers={"X-Request-ID": "edge-7f3a:42"})
    assert (response.status_code, response.headers["x-request-id"]) == (200, "edge-7f3a:42")


@pytest.mark.parametrize("given", ["attacker-chosen-id <script>", "a" * 129, "id\twith\ttabs", "é"])
async def test_an_unsafe_request_id_is_replaced(api: httpx.AsyncClient, server_log: ServerLog, given: str) -> None:
    response = await api.get("/ping", headers={"X-Request-ID": given.encode()})
    assert response.status_code == 200
    made = response.headers["x-request-id"]
    assert made != given and len(made) == 32 and made.isalnum()
    assert given not in server_log.text()
