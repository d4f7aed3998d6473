"""A/B of the cost of a first page in two checkouts, in-process and interleaved.

    python bench/ab_pages.py --a ../nubo-old --b . --user 192 [--kind feed|posts] [--rounds 40] [--pages 200]

Each checkout runs in a worker process of its own (this file with --worker, cwd = the checkout,
so it imports that checkout's `nubo_backend`), with the stores of the current settings (the
seeded database of `bench_http.py`; `--user` is a seeded user who follows others). A worker
serves `--pages` signed-in first pages of /feed or /posts through the service layer, rendered
to JSON bytes as the route sends them, and reports the CPU time it used per page
(`time.process_time`: the Redis round trip's client side included, the HTTP layer left out).
Rounds alternate A/B and B/A, so the drift of a shared machine's CPU speed, which is tens of
per cent over minutes and hides a 10 % change in whole-server runs, falls on both alike.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
from pathlib import Path


async def worker(user_id: int, kind: str) -> None:
    sys.path.insert(0, str(Path.cwd()))
    from nubo_backend.jsonutil import dumps
    from nubo_backend.posts import service
    from nubo_backend.settings import load_settings
    from nubo_backend.stores import open_stores

    stores = await open_stores(load_settings(), pool_size=2)

    async def first_page() -> bytes:
        if kind == "feed":
            return dumps(await service.feed(stores, user_id, 20, None))
        return dumps(await service.recent_posts(stores, 20, None, user_id))

    for _ in range(50):  # fill the cache
        await first_page()
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        pages = int(line)
        started = time.process_time()
        for _ in range(pages):
            await first_page()
        print((time.process_time() - started) / pages * 1e6, flush=True)
    await stores.close()


def compare(args: argparse.Namespace) -> None:
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", "--user", str(args.user), "--kind", args.kind]
    workers = {side: subprocess.Popen(command, cwd=path, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
               for side, path in (("A", args.a), ("B", args.b))}
    try:
        for side, proc in workers.items():
            if proc.stdout.readline().strip() != "ready":
                sys.exit(f"worker {side} did not start; check the NUBO_* settings and --user")
        costs: dict[str, list[float]] = {"A": [], "B": []}
        for n in range(args.rounds):
            for side in ("A", "B") if n % 2 == 0 else ("B", "A"):
                workers[side].stdin.write(f"{args.pages}\n")
                workers[side].stdin.flush()
                costs[side].append(float(workers[side].stdout.readline()))
    finally:
        for proc in workers.values():
            proc.stdin.close()
            proc.wait()
    print(f"{args.kind}: {args.rounds} interleaved rounds of {args.pages} signed-in first pages, CPU µs per page\n")
    print("| checkout | median | min |")
    print("|---|---:|---:|")
    for side, path in (("A", args.a), ("B", args.b)):
        print(f"| {side} ({path}) | {statistics.median(costs[side]):.0f} | {min(costs[side]):.0f} |")
    change = statistics.median(costs["B"]) / statistics.median(costs["A"]) - 1
    print(f"\nB vs A (median): {100 * change:+.0f} %")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--a", help="checkout A (a directory)")
    parser.add_argument("--b", help="checkout B")
    parser.add_argument("--user", type=int, required=True, help="a seeded user id (the viewer)")
    parser.add_argument("--kind", choices=("feed", "posts"), default="feed")
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--pages", type=int, default=200, help="pages per worker and round")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        asyncio.run(worker(args.user, args.kind))
    elif not (args.a and args.b):
        parser.error("--a and --b are required")
    else:
        compare(args)


if __name__ == "__main__":
    main()
