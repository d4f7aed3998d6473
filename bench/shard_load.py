"""Channels, subscriptions and messages per Redis Cluster shard at N connected users (docs/scaling.md).

Uses the real key names (stores/redis_cluster.ClusterKeys) and Redis's slot function; slots are
split into equal ranges over the masters, as `redis-cli --cluster create` does. Each user holds
`--devices` sockets on distinct API nodes (so that many subscriptions to their shard channel);
`--events` per user per second are published on it (SPUBLISH: one shard each). The broadcast
is one plain channel, sent to every master by the cluster bus.

    python bench/shard_load.py --users 1000000 --masters 3 6 12 24 --devices 1.3 --events 0.05
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from redis.crc import key_slot  # noqa: E402

from nubo_backend.stores.redis_cluster import ClusterKeys  # noqa: E402

SLOTS = 16384


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--masters", type=int, nargs="+", default=[3, 6, 12, 24])
    parser.add_argument("--devices", type=float, default=1.3, help="sockets per connected user, on distinct nodes")
    parser.add_argument("--events", type=float, default=0.05, help="events per user per second")
    parser.add_argument("--broadcasts", type=float, default=1.0, help="broadcast lines per second")
    args = parser.parse_args()

    keys = ClusterKeys("")
    per_slot = [0] * SLOTS
    for uid in range(1, args.users + 1):
        per_slot[key_slot(keys("user", uid).encode())] += 1
    print(f"{args.users:,} users, {args.devices} sockets each, {args.events} events/user/s, "
          f"{args.broadcasts} broadcasts/s\n")
    print("| masters | user channels per shard (min-max) | subscriptions per shard | SPUBLISH/s per shard "
          "| deliveries/s per shard | broadcast copies/s per shard |")
    print("|---:|---|---:|---:|---:|---:|")
    for masters in args.masters:
        bounds = [SLOTS * m // masters for m in range(masters + 1)]
        shards = [sum(per_slot[bounds[m]:bounds[m + 1]]) for m in range(masters)]
        mean = statistics.mean(shards)
        print(f"| {masters} | {min(shards):,}-{max(shards):,} | {mean * args.devices:,.0f} "
              f"| {mean * args.events:,.0f} | {mean * args.events * args.devices:,.0f} | {args.broadcasts:,.0f} |")


if __name__ == "__main__":
    main()
