"""/ws is upgraded only after the one auth guard; a refused client gets the seed's JSON 401."""

import socket

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from nubo_backend.auth.sessions import revoke_session
from nubo_backend.jsonutil import loads
from nubo_backend.stores import Stores
from tests.e2e.ws_support import next_frame, open_ws
from tests.factories import make_user
from tests.support import ServerProcess


def raw_upgrade(server: ServerProcess, path: str = "/ws", headers: str = "") -> tuple[str, bytes]:
    """Send a WebSocket upgrade request by hand; the status line and everything the server sent."""
    request = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        f"Sec-WebSocket-Version: 13\r\n{headers}\r\n"
    )
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(request.encode())
        data = b""
        while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    status, _, _ = data.partition(b"\r\n")
    return status.decode(), data


def json_body(data: bytes) -> dict:
    return loads(data.partition(b"\r\n\r\n")[2])


async def test_missing_header_is_refused_with_json_401_before_any_upgrade(server: ServerProcess) -> None:
    status, data = raw_upgrade(server)
    assert status == "HTTP/1.1 401 Unauthorized"
    assert b"Sec-WebSocket-Accept" not in data and b"101" not in status.encode()
    assert json_body(data) == {"error": "Authorization header manquant", "code": "missing_authorization"}


async def test_bad_token_is_refused_with_json_401(server: ServerProcess) -> None:
    status, data = raw_upgrade(server, headers="Authorization: Bearer not-a-jwt\r\n")
    assert status.startswith("HTTP/1.1 401")
    assert json_body(data) == {"error": "Token invalide", "code": "invalid_token"}


async def test_revoked_session_is_refused_on_a_new_websocket(stores: Stores, server: ServerProcess) -> None:
    user = await make_user(stores)
    await revoke_session(stores.redis, stores.keys, user.id, user.session_id)
    with pytest.raises(InvalidStatus) as refused:
        await open_ws(server, user)
    assert refused.value.response.status_code == 401
    assert loads(refused.value.response.body)["error"] == "Token invalide"


async def test_access_token_in_the_query_string_is_accepted(stores: Stores, server: ServerProcess) -> None:
    user = await make_user(stores)
    async with connect(f"{server.ws_url}?access_token={user.token}", open_timeout=5) as ws:
        assert await next_frame(ws) == {"type": "ready", "user_id": user.id, "last_event_id": 0}
        await ws.send('{"type": "ping"}')
        assert await next_frame(ws) == {"type": "pong"}


async def test_bad_last_event_id_is_refused_before_the_upgrade(stores: Stores, server: ServerProcess) -> None:
    user = await make_user(stores)
    status, data = raw_upgrade(server, "/ws?last_event_id=-3", f"Authorization: Bearer {user.token}\r\n")
    assert status.startswith("HTTP/1.1 422")
    assert json_body(data)["code"] == "validation_error"


async def test_the_connected_user_id_is_logged(stores: Stores, start_server) -> None:
    server = start_server({"NUBO_LOG_LEVEL": "INFO"})
    user = await make_user(stores)
    ws = await open_ws(server, user)
    await ws.send('{"type": "ping"}')
    await next_frame(ws)
    await ws.close()
    assert f"Utilisateur connecté (userID): {user.id}" in server.output()


async def test_a_plain_http_get_is_told_to_upgrade(stores: Stores, api) -> None:
    user = await make_user(stores)
    response = await api.get("/ws", headers=user.headers)
    assert response.status_code == 426 and "error" in response.json()
