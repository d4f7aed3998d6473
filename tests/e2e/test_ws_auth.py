"""/ws is upgraded only after the one auth guard; a refused client gets the seed's JSON 401."""

import socket

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

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


async def second_device(stores: Stores, user):
    """The same user logged in on another device: a session and token of its own."""
    import dataclasses

    from nubo_backend.auth.sessions import create_session
    from nubo_backend.auth.tokens import mint_access_token

    session = await create_session(stores.redis, stores.keys, user.id, stores.settings.refresh_token_ttl)
    token, _ = mint_access_token(stores.settings.jwt_secret, user.id, session.session_id, 900)
    return dataclasses.replace(user, token=token, session_id=session.session_id)


async def test_logout_closes_that_sessions_open_websockets_on_every_instance(
    stores: Stores, start_server, api
) -> None:
    a, b = start_server(), start_server()
    alice = await make_user(stores)
    phone = await second_device(stores, alice)
    laptop_on_a, laptop_on_b, phone_on_b = await open_ws(a, alice), await open_ws(b, alice), await open_ws(b, phone)

    assert (await api.post("/logout", headers=alice.headers)).status_code == 204

    for ws in (laptop_on_a, laptop_on_b):
        with pytest.raises(ConnectionClosed) as closed:
            await next_frame(ws, within=5)
        assert closed.value.rcvd.code == 1008
        assert "revoked" in closed.value.rcvd.reason
    await phone_on_b.send('{"type": "ping"}')  # the other session is untouched
    assert await next_frame(phone_on_b) == {"type": "pong"}


async def test_password_change_closes_the_other_sessions_websockets(stores: Stores, server: ServerProcess, api) -> None:
    alice = await make_user(stores)
    other = await second_device(stores, alice)
    mine, theirs = await open_ws(server, alice), await open_ws(server, other)
    changed = await api.post("/me/password", json={"current_password": "password123", "new_password": "a new secret"},
                             headers=alice.headers)
    assert changed.status_code == 200, changed.text
    with pytest.raises(ConnectionClosed):
        await next_frame(theirs, within=5)
    await mine.send('{"type": "ping"}')
    assert await next_frame(mine) == {"type": "pong"}
