"""RSS of one `nubo serve` after rounds of large broadcasts (issue #11, item 7).

Starts a real instance with the stores of the current configuration (NUBO_* variables or
.env), creates throw-away users with sessions, connects --senders WebSocket clients and, per
round, has each send --per-sender broadcast lines of --size bytes (every client, the senders
included, receives every line: 5 × 350 lines of 60 KB are 1,750 broadcasts, 525 MB written by
the server per round). A sender keeps at most --window of its own lines unanswered, so the
load is bounded by what the clients read. After each round and --idle seconds of quiet, the
server's VmRSS is read from /proc. Prints a markdown table.

    python bench/bench_rss.py --rounds 3
    python bench/bench_rss.py --rounds 8 --env NUBO_MEMORY_TRIM_AFTER_BYTES=0   # trimming off
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

from websockets.asyncio.client import connect

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.bench_ws import free_port, make_users, progress, rss_kib, start, stop  # noqa: E402


async def sender(ws, tag: str, count: int, size: int, window: int, refused: dict[str, int]) -> int:
    """Send `count` lines of `size` bytes, at most `window` of ours unanswered, reading every
    line (ours and the others') until ours have all come back; the lines received."""
    filler = "x" * (size - 32)
    sent = answered = received = 0
    room = asyncio.Event()
    room.set()

    async def read() -> None:
        nonlocal answered, received
        while answered < count:
            frame = await ws.recv()
            if frame.startswith("rss "):
                received += 1
                if frame.startswith(f"rss {tag} "):
                    answered += 1
                    room.set()
            elif '"error"' in frame[:40]:  # ours refused (busy: its inbox was full): answered too
                answered += 1
                refused[tag] = refused.get(tag, 0) + 1
                room.set()

    reader = asyncio.create_task(read())
    while sent < count:
        if sent - answered >= window:
            room.clear()
            await room.wait()
            continue
        await ws.send(f"rss {tag} {sent:08d} {filler}")
        sent += 1
    await reader
    return received


async def run(args: argparse.Namespace) -> list[tuple[str, str]]:
    from nubo_backend.settings import load_settings
    from nubo_backend.stores import open_stores

    settings = load_settings()
    stores = await open_stores(settings)
    tag = f"rss{os.getpid()}_"
    port = free_port()
    # Measures the broadcast path itself: its abuse limits (#26) off.
    env = {"NUBO_WS_IDLE_TIMEOUT": "3600", "NUBO_LOG_LEVEL": "WARNING", "NUBO_WS_RATE_LIMIT": "1000",
           "NUBO_BROADCAST_MAX_CHARS": "1048576", "NUBO_BROADCAST_PER_USER": "0", "NUBO_BROADCAST_GLOBAL": "0",
           "NUBO_WS_USER_RATE_LIMIT": "1000", **dict(kv.split("=", 1) for kv in args.env)}
    server = start([sys.executable, "-m", "cli", "serve", "--port", str(port)], port, env)
    rows: list[tuple[str, str]] = []
    try:
        users = await make_users(stores, args.senders, tag)
        url = f"ws://127.0.0.1:{port}/ws"
        sockets = [await connect(url, additional_headers={"Authorization": f"Bearer {t}"}, max_size=2**20)
                   for _, t in users]
        for ws in sockets:
            await ws.recv()  # ready
        await asyncio.sleep(args.idle)
        rows.append(("start (connected, idle)", f"{rss_kib(server.pid) / 1024:.0f}"))
        expected = args.senders * args.per_sender
        for n in range(1, args.rounds + 1):
            began = time.monotonic()
            refused: dict[str, int] = {}
            received = await asyncio.wait_for(asyncio.gather(*(
                sender(ws, str(i), args.per_sender, args.size, args.window, refused) for i, ws in enumerate(sockets)
            )), args.round_timeout)
            took = time.monotonic() - began
            progress(f"round {n}: each client got {min(received):,} to {max(received):,} lines, "
                     f"{sum(refused.values())} refused")
            busy = rss_kib(server.pid) / 1024
            await asyncio.sleep(args.idle)
            rows.append((f"round {n} ({expected:,} lines in {took:.1f} s): at its end, then idle",
                         f"{busy:.0f} → {rss_kib(server.pid) / 1024:.0f}"))
            progress(f"{rows[-1][0]}: {rows[-1][1]} MB")
        for ws in sockets:
            await ws.close()
    finally:
        stop(server)
        ids = [r["id"] for r in await stores.pg.fetch("SELECT id FROM users WHERE username LIKE $1", f"{tag}%")]
        await stores.mongo["broadcasts"].delete_many({"user_id": {"$in": ids}})
        await stores.pg.execute("DELETE FROM users WHERE username LIKE $1", f"{tag}%")
        await stores.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--senders", type=int, default=5)
    parser.add_argument("--per-sender", type=int, default=350, help="lines each sender broadcasts per round")
    parser.add_argument("--size", type=int, default=60_000, help="bytes per line")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--window", type=int, default=16, help="a sender's own lines in flight")
    parser.add_argument("--idle", type=float, default=3.0, help="seconds of quiet before reading RSS")
    parser.add_argument("--round-timeout", type=float, default=300.0)
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for the server")
    args = parser.parse_args()
    rows = asyncio.run(run(args))
    print(f"\n| {args.senders} senders × {args.per_sender} lines of {args.size:,} B per round | RSS MB |")
    print("|---|---:|")
    for name, value in rows:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
