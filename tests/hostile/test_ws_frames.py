"""Hostile WebSocket frames: invalid UTF-8 is closed 1007 (RFC 6455 8.1), cheaply, and counted."""

from __future__ import annotations

import asyncio
import contextlib
import os
import struct
from typing import Any

import pytest

from nubo_backend.stores import Stores
from tests.factories import make_user
from tests.hostile.conftest import ServerLog
from tests.support import ServerProcess


async def _open(server: ServerProcess, token: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(
        f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        f"Authorization: Bearer {token}\r\n\r\n".encode()
    )
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert head.startswith(b"HTTP/1.1 101"), head
    return reader, writer


def _frame(payload: bytes, opcode: int = 0x1, fin: bool = True) -> bytes:
    """A masked client frame, as RFC 6455 requires of clients."""
    mask = os.urandom(4)
    first = (0x80 if fin else 0) | opcode
    size = len(payload)
    if size < 126:
        head = struct.pack("!BB", first, 0x80 | size)
    else:
        head = struct.pack("!BBH", first, 0x80 | 126, size)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


async def _close_code(reader: asyncio.StreamReader, within: float = 5.0) -> int | None:
    """Read server frames until a close frame; its code (None if the socket just ended)."""
    async with asyncio.timeout(within):
        while True:
            head = await reader.readexactly(2)
            size = head[1] & 0x7F
            if size == 126:
                size = struct.unpack("!H", await reader.readexactly(2))[0]
            elif size == 127:
                size = struct.unpack("!Q", await reader.readexactly(8))[0]
            payload = await reader.readexactly(size)
            if head[0] & 0x0F == 0x8:
                return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None


async def _refusals_until_closed(ws: Any, frames: int, interval: float, within: float) -> int:
    """Send `frames` pings, one per `interval` seconds, until the server closes the socket (or
    `within` seconds pass); the `rate_limited` refusals received meanwhile."""
    from websockets.exceptions import ConnectionClosed

    async def send() -> None:
        for n in range(frames):
            await ws.send(f'{{"type": "ping", "client_id": "f{n}"}}')
            await asyncio.sleep(interval)

    errors = 0
    sending = asyncio.create_task(send())
    with contextlib.suppress(ConnectionClosed):
        async with asyncio.timeout(within):
            async for frame in ws:
                errors += '"rate_limited"' in frame
    sending.cancel()
    await asyncio.gather(sending, return_exceptions=True)
    return errors


async def test_a_text_frame_of_invalid_utf8_is_closed_1007(stores: Stores, server: ServerProcess,
                                                           server_log: ServerLog) -> None:
    alice = await make_user(stores)
    reader, writer = await _open(server, alice.token)
    writer.write(_frame(b"hello \xff\xfe world"))
    assert await _close_code(reader) == 1007
    writer.close()


async def test_invalid_utf8_split_across_fragments_is_closed_1007(stores: Stores, server: ServerProcess,
                                                                 server_log: ServerLog) -> None:
    alice = await make_user(stores)
    reader, writer = await _open(server, alice.token)
    writer.write(_frame(b"caf\xc3", fin=False) + _frame(b"\x28 x", opcode=0x0))  # \xc3\x28 is not UTF-8
    assert await _close_code(reader) == 1007
    writer.close()


async def test_valid_utf8_split_across_fragments_still_works(stores: Stores, server: ServerProcess,
                                                            server_log: ServerLog) -> None:
    alice = await make_user(stores)
    reader, writer = await _open(server, alice.token)
    writer.write(_frame(b'{"type": "pi', fin=False) + _frame(b'ng", "x": "caf\xc3', opcode=0x0, fin=False)
                 + _frame(b'\xa9"}', opcode=0x0))
    async with asyncio.timeout(5):
        seen = b""
        while b'"pong"' not in seen:
            seen += await reader.read(4096)
    writer.close()


async def test_a_flood_is_closed_after_a_bounded_number_of_refusals(stores: Stores, start_server) -> None:
    """A flood that lets a token refill now and then is closed all the same, and costs us at
    most 2 × rate error frames, however long it goes on."""
    from websockets.asyncio.client import connect

    server = start_server({"NUBO_WS_RATE_LIMIT": "5"})
    alice = await make_user(stores)
    async with connect(server.ws_url, additional_headers=alice.headers) as ws:
        await ws.recv()  # ready
        errors = await _refusals_until_closed(ws, 400, 0.01, 10)  # ~100 frames/s for up to 4 s, 20× the limit
    assert ws.close_code == 1008
    assert 0 < errors <= 2 * 5 + 1


async def test_a_user_holding_too_many_sockets_gets_4008(stores: Stores, start_server) -> None:
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    server = start_server({"NUBO_WS_MAX_CONNECTIONS_PER_USER": "2"})
    alice = await make_user(stores)
    first = await connect(server.ws_url, additional_headers=alice.headers)
    second = await connect(server.ws_url, additional_headers=alice.headers)
    for ws in (first, second):
        assert '"ready"' in await ws.recv()
    third = await connect(server.ws_url, additional_headers=alice.headers)
    try:
        with pytest.raises(ConnectionClosed):
            async with asyncio.timeout(5):
                async for _ in third:
                    pass
        assert third.close_code == 4008
    finally:
        for ws in (first, second, third):
            await ws.close()


async def test_many_sockets_of_one_user_share_one_frame_budget(stores: Stores, start_server) -> None:
    """6 sockets × 8 pings, each socket well within its own limit: together they get at most the
    user's budget (a burst of 4, refilled at 4/s) of pongs, the rest is refused `rate_limited`."""
    from websockets.asyncio.client import connect

    server = start_server({"NUBO_WS_RATE_LIMIT": "20", "NUBO_WS_USER_RATE_LIMIT": "4"})
    alice = await make_user(stores)
    sockets = [await connect(server.ws_url, additional_headers=alice.headers) for _ in range(6)]
    try:
        for ws in sockets:
            assert '"ready"' in await ws.recv()
        started = asyncio.get_running_loop().time()
        for n in range(8):
            for i, ws in enumerate(sockets):
                await ws.send(f'{{"type": "ping", "client_id": "s{i}-{n}"}}')
        answers: list[str] = []
        async with asyncio.timeout(10):
            for ws in sockets:
                answers += [await ws.recv() for _ in range(8)]  # one answer per frame: pong or refusal
        elapsed = asyncio.get_running_loop().time() - started
    finally:
        for ws in sockets:
            await ws.close()
    pongs = sum('"pong"' in a for a in answers)
    refused = [a for a in answers if '"rate_limited"' in a]
    assert pongs + len(refused) == 48
    assert 4 <= pongs <= 4 + 4 * elapsed + 1, (pongs, elapsed)
    assert "across its sockets" in refused[0]
    assert all(ws.close_code in (None, 1000) for ws in sockets)  # 8 frames each: nobody is closed


async def test_one_socket_over_the_user_budget_is_closed_after_bounded_refusals(
    stores: Stores, start_server
) -> None:
    """Refusals by the user's budget count toward the same close as the socket's own: a socket
    that keeps sending over it is closed 1008 after at most 2 × rate error frames."""
    from websockets.asyncio.client import connect

    server = start_server({"NUBO_WS_RATE_LIMIT": "5", "NUBO_WS_USER_RATE_LIMIT": "2"})
    alice = await make_user(stores)
    quiet = await connect(server.ws_url, additional_headers=alice.headers)
    async with connect(server.ws_url, additional_headers=alice.headers) as ws:
        await ws.recv()  # ready
        # 4 frames/s: within the socket's 5/s, over the user's 2/s
        errors = await _refusals_until_closed(ws, 200, 0.25, 20)
    await quiet.close()
    assert ws.close_code == 1008
    assert 0 < errors <= 2 * 5 + 1
