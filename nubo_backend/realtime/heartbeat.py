"""The WebSocket heartbeat: one task pings every socket of the instance each interval.

Sanic's own keepalive is one sleeping task per socket (turned off in app.py): at 20,000 sockets
that is 20,000 tasks, their coroutines and a `wait_for` per ping. Here a socket costs one
pending future between two pings. Same rule as Sanic's: a socket pinged that has not answered
by the next ping (one interval, NUBO_WS_HEARTBEAT_INTERVAL) is failed with 1011.

The same ticks close idle sockets (no frame for NUBO_WS_IDLE_TIMEOUT), so that a socket's read
waits without a timeout of its own (a `wait_for` task and a timer per socket in Sanic's recv).
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Iterable
from typing import Protocol

TICK_CHUNK = 1000  # sockets pinged between two yields to the event loop


class Beating(Protocol):
    def heartbeat(self, payload: bytes) -> None: ...

    def close_if_idle(self, now: float, idle: float) -> None: ...


class Heartbeat:
    def __init__(self, interval: float, idle: float, sockets: Iterable[Beating]) -> None:
        self.interval = interval
        self.idle = idle
        self.sockets = sockets
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.interval > 0 or self.idle > 0:
            self.task = asyncio.create_task(self._run(), name="nubo-ws-heartbeat")

    def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()

    async def _run(self) -> None:
        # Ticks often enough for both: an idle socket closes within 1.5 idle timeouts.
        steps = [t for t in (self.interval, self.idle / 2) if t > 0]
        step = min(steps)
        loop = asyncio.get_running_loop()
        pinged_at = loop.time()
        pings = 0
        while True:
            await asyncio.sleep(step)
            now = loop.time()
            ping = self.interval > 0 and now - pinged_at >= self.interval - step / 2
            if ping:
                pinged_at, pings = now, pings + 1
            payload = struct.pack("!I", pings & 0xFFFFFFFF)  # unique among a socket's pending pings
            for n, sock in enumerate(list(self.sockets), 1):
                if self.idle > 0:
                    sock.close_if_idle(now, self.idle)
                if ping:
                    sock.heartbeat(payload)
                if n % TICK_CHUNK == 0:
                    await asyncio.sleep(0)
