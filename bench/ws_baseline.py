"""Baseline for bench_ws.py: a bare `websockets` server that relays each text frame to every client.

No auth, no Redis, no journal: the least any Python WebSocket broadcast can cost, so the
fan-out of nubo's /ws can be read as a ratio to it. Usage: python bench/ws_baseline.py PORT
"""

from __future__ import annotations

import asyncio
import signal
import sys

from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed


async def main(port: int) -> None:
    clients: set[ServerConnection] = set()

    async def relay(ws: ServerConnection) -> None:
        clients.add(ws)
        try:
            async for message in ws:
                broadcast(clients, message)
        except ConnectionClosed:
            pass  # clients of the bench leave without a closing handshake
        finally:
            clients.discard(ws)

    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set_result, None)
    async with serve(relay, "127.0.0.1", port, compression=None, max_queue=None, backlog=4096):
        print(f"baseline listening on {port}", flush=True)
        await stop


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
