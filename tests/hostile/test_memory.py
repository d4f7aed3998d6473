"""Case 7: memory after large broadcasts goes back to the system (nubo_backend.observability.memory).

A bounded load (5 senders × 350 lines of 60 KB, each sender up to 200 lines ahead: most are
refused `busy`, every one is read and parsed) grows the server by 60+ MB; once the traffic
pauses the trimmer hands the pages back, so RSS returns near where it started. RSS is read
from /proc; the test polls for the trim, a bounded number of times."""

from __future__ import annotations

import asyncio

from bench.bench_rss import sender
from bench.bench_ws import rss_kib
from nubo_backend.stores import Stores
from tests.factories import make_user

ROUND_TRIPS = 350  # lines per sender
SLACK_MB = 30  # above the idle RSS measured before the load


async def test_rss_returns_near_its_start_after_a_burst_of_large_broadcasts(stores: Stores, start_server) -> None:
    from websockets.asyncio.client import connect

    # Large broadcasts on purpose: their abuse limits (#26) off.
    server = start_server({"NUBO_WS_RATE_LIMIT": "1000", "NUBO_WS_USER_RATE_LIMIT": "1000",
           "NUBO_BROADCAST_MAX_CHARS": "1048576", "NUBO_BROADCAST_PER_USER": "0", "NUBO_BROADCAST_GLOBAL": "0",
                           "NUBO_LOG_LEVEL": "WARNING"})
    users = [await make_user(stores) for _ in range(5)]
    sockets = [await connect(server.ws_url, additional_headers=u.headers, max_size=2**20) for u in users]
    try:
        for ws in sockets:
            assert '"ready"' in await ws.recv()
        await asyncio.sleep(1)
        start_mb = rss_kib(server.proc.pid) / 1024
        refused: dict[str, int] = {}
        await asyncio.wait_for(asyncio.gather(*(
            sender(ws, str(i), ROUND_TRIPS, 60_000, 200, refused) for i, ws in enumerate(sockets)
        )), 240)
        peak_mb = rss_kib(server.proc.pid) / 1024
        for _ in range(40):  # up to 20 s: the trimmer waits for 1 s of quiet, then looks each second
            now_mb = rss_kib(server.proc.pid) / 1024
            if now_mb <= start_mb + SLACK_MB:
                break
            await asyncio.sleep(0.5)
    finally:
        for ws in sockets:
            await ws.close()
    assert now_mb <= start_mb + SLACK_MB, (start_mb, peak_mb, now_mb)
    assert "Traceback" not in server.output()
