"""Case 4: a client that hangs up mid-request is logged as its own doing (499), never as an
ERROR or a 5xx that alerts would count."""

from __future__ import annotations

import socket
import time

import pytest

from tests.hostile.conftest import ServerLog
from tests.support import ServerProcess


def send_then_hang_up(server: ServerProcess, data: bytes) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(data)
        time.sleep(0.05)  # the server has read it and waits for more


def access_lines_within(log: ServerLog, count: int, seconds: float = 5.0) -> list[str]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        lines = [line for line in log.text().splitlines() if "nubo.access" in line]
        if len(lines) >= count:
            return lines
        time.sleep(0.05)
    return [line for line in log.text().splitlines() if "nubo.access" in line]


@pytest.mark.parametrize(
    "data",
    [
        b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"user",
        b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Le",
    ],
    ids=["mid-body", "mid-headers"],
)
def test_client_abort_is_logged_499_without_error(server: ServerProcess, server_log: ServerLog, data: bytes) -> None:
    for _ in range(5):
        send_then_hang_up(server, data)
    lines = access_lines_within(server_log, 5)
    assert len(lines) == 5 and all("status=499" in line for line in lines), lines
    text = server_log.text()
    assert "ERROR" not in text and "status=5" not in text, text
