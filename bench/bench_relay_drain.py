"""Relay throughput: how long a backlog of --events personal events takes to drain, by lanes and
instances, in one run (issue #24).

    python bench/bench_relay_drain.py --mongo-url mongodb://127.0.0.1:27018 \
        [--events 200000] [--users 20000] [--configs 1x1,4x1,1x2,4x2] [--rounds 2]

A config `LxI` is L lanes (NUBO_RELAY_LANES) on I `nubo serve` instances. For each config and
round: a fresh database (migrated), a Redis namespace and a Mongo database of its own; the
instances start on an empty outbox, then one transaction commits --events events (one recipient
each, --users users, numbered as `announce` numbers them, in the lanes the config gives), and the
clock runs from that commit until the outbox is empty. Reported: the median time over rounds and
the deliveries per second (one journal document and one publish each).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.bench_audience import start_stack, stop_stack  # noqa: E402
from bench.bench_ws import progress  # noqa: E402

FILL = """
WITH ev AS (
    SELECT n, 1 + (n % $2) AS uid FROM generate_series(0, $1 - 1) AS n
), numbered AS (
    SELECT n, uid, row_number() OVER (PARTITION BY uid ORDER BY n) AS eid FROM ev
)
INSERT INTO outbox (type, data, recipients, event_ids, lane)
SELECT 'message.created', '{"body":"backlog ' || n || '"}', ARRAY[uid], ARRAY[eid], uid % $3
  FROM numbered ORDER BY n
"""


async def one(args: argparse.Namespace, lanes: int, instances: int, tag: str) -> float:
    stack = await start_stack(args.mongo_url, tag, lanes, instances)
    try:
        conn = await asyncpg.connect(stack.env["NUBO_POSTGRES_DSN"])
        try:
            await conn.execute("INSERT INTO users (id, username, email, password_hash) OVERRIDING SYSTEM VALUE "
                               "SELECT n, 'drain' || n, 'drain' || n || '@bench.invalid', 'x' "
                               "FROM generate_series(1, $1) AS n", args.users)
            async with conn.transaction():
                await conn.execute(FILL, args.events, args.users, lanes)
                await conn.execute("INSERT INTO event_sequences (user_id, last_id) "
                                   "SELECT uid, count(*) FROM (SELECT recipients[1] AS uid FROM outbox) o GROUP BY uid")
            began = time.perf_counter()
            while await conn.fetchval("SELECT count(*) FROM outbox"):  # noqa: ASYNC110 - polling the database
                await asyncio.sleep(0.05)
            return time.perf_counter() - began
        finally:
            await conn.close()
    finally:
        await stop_stack(stack, tag)


async def run(args: argparse.Namespace) -> None:
    configs = [tuple(int(x) for x in c.split("x")) for c in args.configs.split(",")]
    times: dict[tuple[int, int], list[float]] = {}
    for round_no in range(args.rounds):
        order = configs if round_no % 2 == 0 else configs[::-1]
        for lanes, instances in order:
            tag = f"benchdrain_{os.getpid()}_{lanes}x{instances}_{round_no}"
            took = await one(args, lanes, instances, tag)
            times.setdefault((lanes, instances), []).append(took)
            progress(f"round {round_no + 1}: {lanes} lane(s) on {instances} instance(s): {args.events:,} events "
                     f"in {took:.1f} s ({args.events / took:,.0f}/s)")
    base = statistics.median(times[configs[0]])
    print(f"\n{args.events:,} events for {args.users:,} users, medians of {args.rounds} round(s)")
    print("| lanes | instances | drain s | deliveries/s | vs first row |")
    print("|---|---|---|---|---|")
    for lanes, instances in configs:
        med = statistics.median(times[(lanes, instances)])
        print(f"| {lanes} | {instances} | {med:.1f} | {args.events / med:,.0f} | {base / med:.2f}x |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mongo-url", default=os.environ.get("NUBO_MONGO_URL", "mongodb://127.0.0.1:27017"))
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--configs", default="1x1,4x1,1x2,4x2")
    parser.add_argument("--rounds", type=int, default=2)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
