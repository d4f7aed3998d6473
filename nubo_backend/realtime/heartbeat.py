"""The WebSocket heartbeat: one task pings every socket of the instance each interval.

Sanic's own keepalive is one sleeping task per socket (turned off in app.py): at 20,000 sockets
that is 20,000 tasks, their coroutines and a `wait_for` per ping. Here a socket costs one
pending future between two ticks. Same rule as Sanic's: a socket pinged at one tick that has
not answered by the next (one interval, NUBO_WS_HEARTBEAT_INTERVAL) is failed with 1011.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Iterable
from typing import Protocol

TICK_CHUNK = 1000  # sockets pinged between two yields to the event loop


class Beating(Protocol):
    def heartbeat(self, payload: bytes) -> None: ...


class Heartbeat:
    def __init__(self, interval: float, sockets: Iterable[Beating]) -> None:
        self.interval = interval
        self.sockets = sockets
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.interval > 0:
            self.task = asyncio.create_task(self._run(), name="nubo-ws-heartbeat")

    def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()

    async def _run(self) -> None:
        tick = 0
        while True:
            await asyncio.sleep(self.interval)
            tick += 1
            payload = struct.pack("!I", tick & 0xFFFFFFFF)  # unique among a socket's pending pings
            for n, sock in enumerate(list(self.sockets), 1):
                sock.heartbeat(payload)
                if n % TICK_CHUNK == 0:
                    await asyncio.sleep(0)
