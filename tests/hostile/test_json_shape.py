"""Case 1: a deeply nested or sprawling JSON document is a cheap 422, on every JSON route and
on the WebSocket, never a RecursionError."""

from __future__ import annotations

import httpx

from nubo_backend.stores import Stores
from tests.e2e.ws_support import next_frame, open_ws
from tests.factories import make_user
from tests.hostile.conftest import ServerLog, cpu_seconds
from tests.support import ServerProcess

ROUNDS = 40


def nested(levels: int) -> bytes:
    return b'{"username": ' + b"[" * levels + b"]" * levels + b', "password": "x"}'


async def cpu_per_request(api: httpx.AsyncClient, server: ServerProcess, body: bytes) -> float:
    """Server CPU seconds per POST /login of `body`, over ROUNDS requests (each a 422)."""
    before = cpu_seconds(server.proc.pid)
    for _ in range(ROUNDS):
        response = await api.post("/login", content=body, headers={"Content-Type": "application/json"})
        assert response.status_code == 422, response.text
    return (cpu_seconds(server.proc.pid) - before) / ROUNDS


async def test_deeply_nested_json_costs_about_what_an_ordinary_422_costs(
    api: httpx.AsyncClient, server: ServerProcess, server_log: ServerLog
) -> None:
    response = await api.post("/login", content=nested(1000), headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"
    assert "Nested too deeply" in response.text

    ordinary = await cpu_per_request(api, server, b'{"username": 5, "password": "x"}')
    deep = await cpu_per_request(api, server, nested(1000))
    # CPU clock ticks are 10 ms: 40 rounds resolve 0.25 ms per request. The unbounded walk
    # cost ~66 ms a request; bounded, it is an ordinary 422 within that resolution.
    assert deep <= 2 * ordinary + 0.0005, (deep, ordinary)


async def test_a_json_body_with_too_many_values_is_refused_before_it_is_walked(
    api: httpx.AsyncClient, server: ServerProcess, server_log: ServerLog
) -> None:
    wide = b'{"body": "x", "media_urls": [' + b",".join([b"0"] * 200_000) + b"]}"
    before = cpu_seconds(server.proc.pid)
    response = await api.post("/login", content=wide, headers={"Content-Type": "application/json"})
    cost = cpu_seconds(server.proc.pid) - before
    assert response.status_code == 422
    assert "Too many values" in response.text
    assert cost < 0.1, cost  # parsing 200,000 numbers in C, then one bounded walk


async def test_every_json_route_bounds_nesting(
    api: httpx.AsyncClient, stores: Stores, server_log: ServerLog
) -> None:
    user = await make_user(stores)
    deep = b"[" * 1000 + b"]" * 1000
    for method, path in [("POST", "/signup"), ("POST", "/refresh"), ("POST", "/posts"),
                         ("PATCH", "/me"), ("POST", "/conversations"), ("POST", "/notifications/read"),
                         ("POST", "/me/password"), ("POST", "/conversations/1/messages"),
                         ("POST", "/conversations/1/members"), ("PATCH", "/messages/1")]:
        body = b'{"body": ' + deep + b"}"
        response = await api.request(method, path, content=body, headers={
            **user.headers, "Content-Type": "application/json"})
        assert response.status_code == 422, (path, response.text)
        assert "Nested too deeply" in response.text, path


async def test_deeply_nested_message_send_on_the_websocket_is_an_error_frame(
    stores: Stores, server: ServerProcess, server_log: ServerLog
) -> None:
    user = await make_user(stores)
    ws = await open_ws(server, user)
    deep = "[" * 1000 + "]" * 1000
    await ws.send('{"type": "message.send", "conversation_id": 1, "client_id": "c", "body": ' + deep + "}")
    frame = await next_frame(ws)
    assert frame["type"] == "error" and frame["code"] == "validation_error", frame
    assert "nested too deeply" in frame["error"]
