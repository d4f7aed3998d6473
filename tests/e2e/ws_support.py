"""WebSocket clients for the end-to-end tests: connect as a user, read frames with a deadline."""

from __future__ import annotations

import asyncio
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from nubo_backend.jsonutil import loads
from tests.factories import TestUser
from tests.support import ServerProcess

# Clients opened by the running test; tests/e2e/conftest.py closes them after it, so a
# connection left open cannot receive the next test's events (user ids restart at 1).
OPENED: list[ClientConnection] = []


async def open_ws(server: ServerProcess, user: TestUser, query: str = "", **kwargs: Any) -> ClientConnection:
    """A client connected to server's /ws as user (Bearer header), once its `ready` frame came."""
    url = server.ws_url + (f"?{query}" if query else "")
    ws = await connect(url, additional_headers=user.headers, open_timeout=5, **kwargs)
    OPENED.append(ws)
    ready = await next_frame(ws)
    assert ready["type"] == "ready", ready
    return ws


async def next_frame(ws: ClientConnection, within: float = 5.0) -> Any:
    """The next frame: parsed JSON when it is JSON, else the raw text."""
    raw = await asyncio.wait_for(ws.recv(), within)
    try:
        return loads(raw)
    except ValueError:
        return raw


async def next_event(ws: ClientConnection, within: float = 5.0) -> dict[str, Any]:
    """The next frame that is a per-user event (has an `id`), skipping presence and others."""
    while True:
        frame = await next_frame(ws, within)
        if isinstance(frame, dict) and frame.get("id") is not None:
            return frame


async def frames_until(ws: ClientConnection, predicate: Any, within: float = 5.0) -> list[Any]:
    """Read until predicate(frame) is true; every frame read, the matching one last."""
    seen = []
    async with asyncio.timeout(within):
        while True:
            frame = await next_frame(ws, within)
            seen.append(frame)
            if predicate(frame):
                return seen


async def silent(ws: ClientConnection, seconds: float = 0.3) -> bool:
    """True if nothing arrives within `seconds`."""
    try:
        await asyncio.wait_for(ws.recv(), seconds)
    except TimeoutError:
        return True
    return False
