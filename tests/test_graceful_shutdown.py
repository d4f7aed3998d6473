"""SIGTERM, seen from the HTTP side: what a load balancer and its clients get while an instance drains."""

import asyncio
import json
import signal
import socket
import time
from types import SimpleNamespace

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from nubo_backend.health.routes import ready
from tests.factories import make_user
from tests.support import ServerProcess


def _start_request(port: int, method: str, path: str, body: bytes) -> socket.socket:
    """A kept-alive request whose headers are sent and whose body is not: in flight."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    sock.sendall(head.encode())
    return sock


def _finish_request(sock: socket.socket, body: bytes) -> tuple[int, dict[str, str], bytes]:
    sock.sendall(body)
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        rest += sock.recv(65536)
    # Connection: close means the server closes its side after the response.
    closed = sock.recv(1) == b"" if headers.get("connection") == "close" else False
    headers["_closed"] = str(closed)
    return int(lines[0].split()[1]), headers, rest


def _listener_closes(port: int, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            return True
        time.sleep(0.1)
    return False


@pytest.fixture
def draining_server(test_env, stores):
    server = ServerProcess({**test_env, "NUBO_SHUTDOWN_GRACE": "5"}).start()
    yield server
    server.stop()


def test_in_flight_request_finishes_and_its_kept_alive_connection_closes(draining_server) -> None:
    port = draining_server.port
    signup = json.dumps({"username": "late_one", "email": "late@example.test", "password": "password123"}).encode()
    post = _start_request(port, "POST", "/signup", signup)
    time.sleep(1.0)  # the request is read up to its body (then Sanic counts it as in flight)
    draining_server.proc.send_signal(signal.SIGTERM)
    assert _listener_closes(port, within=5.0)  # new traffic goes elsewhere
    status, headers, body = _finish_request(post, signup)
    assert status == 201, body  # accepted during the drain, and its response arrives
    assert headers["connection"] == "close" and headers["_closed"] == "True"
    assert draining_server.proc.wait(timeout=15) == 0


async def test_ready_answers_503_as_soon_as_the_instance_drains() -> None:
    # A GET's handler runs as soon as its headers arrive, so a real request cannot be held
    # in flight across the SIGTERM; the flag it reads is the one the test above sees set
    # (its response says Connection: close only while draining).
    request = SimpleNamespace(app=SimpleNamespace(ctx=SimpleNamespace(draining=True)))
    response = await ready(request)
    assert response.status == 503
    assert json.loads(response.body)["code"] == "shutting_down"


def test_in_flight_request_is_cut_after_the_grace_period(test_env, stores) -> None:
    server = ServerProcess({**test_env, "NUBO_SHUTDOWN_GRACE": "1"}).start()
    try:
        stuck = _start_request(server.port, "POST", "/signup", b"{}")  # body never sent
        time.sleep(1.0)
        started = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        server.proc.wait(timeout=10)
        assert time.monotonic() - started < 5
        stuck.close()
    finally:
        server.stop()


async def test_websockets_get_1001_going_away(draining_server, stores) -> None:
    user = await make_user(stores)
    ws = await connect(draining_server.ws_url, additional_headers=user.headers, open_timeout=5)
    assert json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "ready"
    draining_server.proc.send_signal(signal.SIGTERM)
    with pytest.raises(ConnectionClosed):
        while True:
            await asyncio.wait_for(ws.recv(), 5)
    assert ws.close_code == 1001
