"""Connection handling: error frames, rate limit, idle timeout, slow consumers, graceful shutdown."""

import asyncio
import socket

import pytest
from websockets.exceptions import ConnectionClosed

from nubo_backend.jsonutil import loads
from nubo_backend.stores import Stores
from tests.e2e.ws_support import frames_until, next_frame, open_ws
from tests.factories import make_user
from tests.support import ServerProcess


async def test_malformed_json_gets_an_error_frame_and_the_connection_stays_usable(
    stores: Stores, server
) -> None:
    user = await make_user(stores)
    ws = await open_ws(server, user)
    await ws.send('{"type": "ping"')
    assert await next_frame(ws) == {"type": "error", "code": "malformed_json", "error": "Frame is not valid JSON"}
    await ws.send('{"type": "ping"}')
    assert await next_frame(ws) == {"type": "pong"}


async def test_unknown_type_gets_an_error_frame_naming_the_command(stores: Stores, server) -> None:
    user = await make_user(stores)
    ws = await open_ws(server, user)
    await ws.send('{"type": "teleport", "client_id": "c-1"}')
    error = await next_frame(ws)
    assert error["type"] == "error" and error["code"] == "unknown_type" and error["ref"] == "c-1"
    await ws.send(b"\x00\x01")
    assert (await next_frame(ws))["code"] == "unsupported_frame"
    await ws.send('{"type": "resume", "last_event_id": "yesterday"}')
    assert (await next_frame(ws))["code"] == "validation_error"
    await ws.send('{"type": "ping"}')
    assert await next_frame(ws) == {"type": "pong"}


async def test_frames_beyond_the_rate_limit_are_refused_then_abuse_closes_the_socket(
    stores: Stores, start_server
) -> None:
    server = start_server({"NUBO_WS_RATE_LIMIT": "5"})
    user = await make_user(stores)
    ws = await open_ws(server, user)
    for _ in range(8):
        await ws.send('{"type": "ping"}')
    frames = [await next_frame(ws) for _ in range(8)]
    assert frames.count({"type": "pong"}) == 5
    assert [f["code"] for f in frames if f["type"] == "error"] == ["rate_limited"] * 3
    await asyncio.sleep(1.1)  # the bucket refills
    await ws.send('{"type": "ping"}')
    assert await next_frame(ws) == {"type": "pong"}
    with pytest.raises(ConnectionClosed) as closed:
        for _ in range(100):
            await ws.send('{"type": "ping"}')
        while True:
            await next_frame(ws)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008


async def test_a_silent_client_is_closed_after_the_idle_timeout(stores: Stores, start_server) -> None:
    server = start_server({"NUBO_WS_IDLE_TIMEOUT": "1"})
    user = await make_user(stores)
    ws = await open_ws(server, user)
    with pytest.raises(ConnectionClosed) as closed:
        await next_frame(ws, within=5)
    assert closed.value.rcvd.code == 1000 and "idle" in closed.value.rcvd.reason


async def test_a_client_that_never_reads_is_dropped_and_others_keep_receiving(
    stores: Stores, start_server
) -> None:
    server = start_server({"NUBO_WS_SEND_QUEUE": "8"})
    user = await make_user(stores)
    tiny = socket.socket()
    tiny.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    tiny.connect(("127.0.0.1", server.port))
    slow = await open_ws(server, user, sock=tiny, max_queue=1)
    normal = await open_ws(server, user)
    line = "x" * 50_000
    count = 300
    reading = asyncio.create_task(frames_until(normal, lambda f: f.startswith(f"{count - 1}:"), within=30))
    for n in range(count):  # 10 MB/s: a reading client keeps up, one that never reads cannot
        await stores.redis.publish(stores.keys.broadcast_channel, f"{n}:{line}")
        await asyncio.sleep(0.005)
    got = await reading
    assert len(got) == count  # the normal client got every line, in order
    received = 0
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            await next_frame(slow, within=15)
            received += 1
    assert received < count
    assert closed.value.rcvd.code == 1013


async def test_graceful_shutdown_closes_with_1001_and_asks_clients_to_reconnect(
    stores: Stores, start_server
) -> None:
    server = start_server()
    user = await make_user(stores)
    ws = await open_ws(server, user)
    stopping = asyncio.get_running_loop().run_in_executor(None, server.stop)
    with pytest.raises(ConnectionClosed) as closed:
        await next_frame(ws, within=10)
    await stopping
    assert closed.value.rcvd.code == 1001
    assert closed.value.rcvd.reason == "server shutting down, reconnect"


async def test_a_client_that_answers_heartbeats_stays_open_across_many_of_them(
    stores: Stores, start_server
) -> None:
    server = start_server({"NUBO_WS_HEARTBEAT_INTERVAL": "0.3"})
    user = await make_user(stores)
    ws = await open_ws(server, user)  # the websockets client answers pings by itself
    await asyncio.sleep(2.0)  # six ticks: each ping answered before the next
    await ws.send('{"type": "ping"}')
    assert await next_frame(ws) == {"type": "pong"}


async def test_a_client_that_stops_answering_heartbeats_is_closed_and_counted_offline(
    stores: Stores, start_server
) -> None:
    from nubo_backend.realtime.presence import is_online

    server = start_server({"NUBO_WS_HEARTBEAT_INTERVAL": "1"})
    user = await make_user(stores)
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    sock.sendall(
        (
            "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
            f"Authorization: Bearer {user.token}\r\n\r\n"
        ).encode()
    )
    received = b""
    while chunk := await asyncio.to_thread(sock.recv, 65536):  # never answers the pings
        received += chunk
    sock.close()
    assert received.startswith(b"HTTP/1.1 101")
    assert b"\x88\x02\x03\xf3" in received  # a close frame with code 1011
    for _ in range(50):
        if not await is_online(stores, user.id):
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the connection was not released")


async def test_ready_is_the_first_frame_even_while_transient_events_pour_in(
    stores: Stores, server: ServerProcess
) -> None:
    from websockets.asyncio.client import connect

    from nubo_backend.realtime.events import publish_transient

    bob = await make_user(stores)
    pouring = True

    async def typing_storm() -> None:
        while pouring:
            await publish_transient(stores, [bob.id], "typing", {"conversation_id": 1, "user_id": 99})
            await asyncio.sleep(0.0005)

    storm = asyncio.create_task(typing_storm())
    try:
        for _ in range(5):
            async with connect(server.ws_url, additional_headers=bob.headers, open_timeout=5) as ws:
                first = loads(await asyncio.wait_for(ws.recv(), 5))
                assert first["type"] == "ready", first
    finally:
        pouring = False
        await storm
