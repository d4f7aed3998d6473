"""Reading a client's event stream in tests, bounded in time."""

from __future__ import annotations

import asyncio
from typing import TypeVar

from nubo_backend.client import Event, Frame, Nubo

F = TypeVar("F", bound=Frame)


async def next_of(client: Nubo, kind: type[F], within: float = 10.0) -> F:
    """The next frame of that class the client yields (others are skipped)."""
    async with asyncio.timeout(within):
        async for frame in client.events():
            if isinstance(frame, kind):
                return frame
    raise AssertionError("events() ended")


async def collect_ids(client: Nubo, count: int, within: float = 30.0) -> list[int]:
    """The ids of the next `count` per-user events the client yields."""
    ids: list[int] = []
    async with asyncio.timeout(within):
        async for event in client.events():
            if isinstance(event, Event) and event.id is not None:
                ids.append(event.id)
                if len(ids) == count:
                    break
    return ids


async def connected(*clients: Nubo, within: float = 10.0) -> None:
    """Until every client's socket is open (its `ready` came)."""
    async with asyncio.timeout(within):
        for client in clients:
            await client.realtime.wait_connected()
