"""Connections one `nubo serve` instance holds, and its memory per connection, heartbeat running.

Starts one instance (heartbeat every --heartbeat seconds, so that pings and pongs run while it
is measured), creates --users throw-away users with sessions, and opens --connections sockets
spread over them from --clients client processes (bench_ws.py's lean client, which answers
pings), from several source addresses (127.0.0.1-4, so that no address runs out of ports).
Then it holds them for --hold seconds (several heartbeats) and reports the instance's RSS
before any client, once all are `ready`, and after the hold, per connection; and how many
sockets were still open at the end (a socket that missed a heartbeat is closed with 1011).

    python bench/bench_connections.py --connections 20000 --users 20000 --heartbeat 5 --hold 16

With --workers N (N > 1) the instance is `nubo serve --workers N`: Sanic's worker processes
share the listening socket, and each has its own limit on open files. RSS is then summed over
the worker processes (those Sanic started with SANIC_WORKER_NAME in their environment); the
main process and multiprocessing's helpers (its resource tracker and manager) are reported
apart, not counted, since they hold no socket and do not grow with them.

    python bench/bench_connections.py --workers 2 --connections 24000 --users 24000 --clients 6

With --tracemalloc N the instance runs under tracemalloc (N frames; slower, and its own
overhead is in RSS) and prints the N-frame allocation sites that grew most per connection.
Settings (database, Redis, MongoDB) come from NUBO_* / .env / config, as for bench_ws.py.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_ws import Pool, free_port, make_users, raise_fd_limit, rss_kib, start, stop  # noqa: E402

START_SIGNAL, SNAPSHOT_SIGNAL = signal.SIGUSR1, signal.SIGUSR2


def serve_traced(frames: int, out: str) -> None:
    """The server; START_SIGNAL starts tracemalloc (after start-up, which it would slow down
    past the bench's patience), each SNAPSHOT_SIGNAL then writes a snapshot to out.<n>."""
    import tracemalloc

    taken = [0]

    def snapshot(*_: object) -> None:
        taken[0] += 1
        tracemalloc.take_snapshot().dump(f"{out}.{taken[0]}")

    signal.signal(START_SIGNAL, lambda *_: tracemalloc.start(frames))
    signal.signal(SNAPSHOT_SIGNAL, snapshot)
    sys.argv = ["cli", "serve", *sys.argv[sys.argv.index("--serve") + 1:]]
    from cli import app

    app()


def descendants(pid: int) -> list[int]:
    """pid's child processes, their children, and so on."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def sanic_workers(pid: int) -> list[int]:
    """The worker processes of the instance whose main process is pid."""
    workers = []
    for child in descendants(pid):
        try:
            environ = Path(f"/proc/{child}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(var.startswith(b"SANIC_WORKER_NAME=Sanic-Server-") for var in environ):
            workers.append(child)
    return sorted(workers)


def started_at(pid: int) -> str | None:
    """The process's start time (in clock ticks since boot), which tells it from a later one with its pid."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except OSError:
        return None


def sockets_on(port: int, pids: list[int]) -> dict[int, int]:
    """How many established TCP connections to 127.0.0.1:port each process holds."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1].endswith(f":{port:04X}") and fields[3] == "01":  # local port, ESTABLISHED
            inodes.add(f"socket:[{fields[9]}]")
    held = {}
    for pid in pids:
        fds = Path(f"/proc/{pid}/fd")
        held[pid] = sum(1 for fd in fds.iterdir() if _link(fd) in inodes)
    return held


def _link(path: Path) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return ""


def growth(before: str, after: str, connections: int, top: int = 15) -> str:
    import tracemalloc

    old, new = tracemalloc.Snapshot.load(before), tracemalloc.Snapshot.load(after)
    stats = new.compare_to(old, "traceback")
    total = sum(s.size_diff for s in stats)
    lines = [f"tracemalloc: +{total / connections:.0f} B per connection in Python objects"]
    for stat in stats[:top]:
        where = " <- ".join(f"{Path(f.filename).name}:{f.lineno}" for f in stat.traceback)
        per_conn = f"{stat.size_diff / connections:7.0f} B/conn  {stat.count_diff / connections:5.2f} blocks/conn"
        lines.append(f"  {per_conn}  {where}")
    return "\n".join(lines)


async def run(args: argparse.Namespace) -> list[str]:
    from nubo_backend.settings import load_settings
    from nubo_backend.stores import open_stores

    settings = load_settings()
    stores = await open_stores(settings, pool_size=2)
    port = free_port()
    env = {"NUBO_WS_HEARTBEAT_INTERVAL": str(args.heartbeat), "NUBO_WS_IDLE_TIMEOUT": "3600",
           "NUBO_LOG_LEVEL": "WARNING", "NUBO_WS_MAX_CONNECTIONS_PER_USER": str(args.connections + 10)}
    snapshots = f"/tmp/nubo-connections-{os.getpid()}.trace"
    if args.tracemalloc:
        cmd = [sys.executable, __file__, "--tracemalloc", str(args.tracemalloc), "--snapshots", snapshots,
               "--serve", "--port", str(port)]
    else:
        cmd = [sys.executable, "-m", "cli", "serve", "--port", str(port)]
        if args.workers > 1:
            cmd += ["--workers", str(args.workers)]
    pool = Pool(args.clients).start()
    server = None
    report = []
    try:
        began = time.perf_counter()
        users = await make_users(stores, args.users, f"conn{os.getpid()}_")
        print(f"  {len(users)} users in {time.perf_counter() - began:.0f}s", file=sys.stderr)
        tokens = [users[n % len(users)][1] for n in range(args.connections)]
        server = start(cmd, port, env)
        await asyncio.sleep(2)
        if args.tracemalloc:
            server.send_signal(START_SIGNAL)
            await asyncio.sleep(0.5)
            server.send_signal(SNAPSHOT_SIGNAL)
            await asyncio.sleep(2)
        # What is measured: the one process, or the worker processes (not the main one, below).
        measured = [server.pid] if args.workers <= 1 else sanic_workers(server.pid)
        if len(measured) != max(args.workers, 1):
            raise RuntimeError(f"expected {args.workers} worker processes, found {measured}")
        others = [] if args.workers <= 1 else [server.pid, *set(descendants(server.pid)) - set(measured)]
        rss = lambda pids: sum(rss_kib(p) for p in pids)  # noqa: E731
        before, others_before = rss(measured), rss(others)
        rss_each_before = {p: rss_kib(p) for p in measured}
        began = time.perf_counter()
        shares = [tokens[n::args.clients] for n in range(args.clients)]
        held = sum(pool.ask([("connect", port, "/ws", share, 50) for share in shares]))
        connect_s = time.perf_counter() - began
        await asyncio.sleep(1)
        ready = rss(measured)
        sockets_each = sockets_on(port, measured)
        if args.tracemalloc:
            server.send_signal(SNAPSHOT_SIGNAL)
        print(f"  {held} ready in {connect_s:.0f}s; holding {args.hold}s", file=sys.stderr)
        await asyncio.sleep(args.hold)
        after, others_after = rss(measured), rss(others)
        alive = sum(pool.ask([("alive",)] * args.clients))
        load = os.getloadavg()
        per = lambda rss: (rss - before) / max(held, 1)  # noqa: E731
        instance = "1 process" if args.workers <= 1 else f"--workers {args.workers}, RSS summed over the workers"
        report += [
            f"{args.connections} connections asked ({args.users} users), {args.clients} client processes, "
            f"heartbeat {args.heartbeat:g}s, held {args.hold:g}s; {instance}; {os.cpu_count()} CPUs, "
            f"load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}",
            "",
            "| connections ready | connect s | RSS before | RSS ready | KiB/conn ready | RSS after hold "
            "| KiB/conn after hold | open after hold |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|",
            f"| {held} | {connect_s:.0f} | {before / 1024:.0f} MiB | {ready / 1024:.0f} MiB | {per(ready):.1f} "
            f"| {after / 1024:.0f} MiB | {per(after):.1f} | {alive} |",
        ]
        if args.workers > 1:
            report += [""] + [
                f"- worker pid {p}: {sockets_each[p]} client sockets once all were ready, RSS "
                f"{rss_each_before[p] / 1024:.0f} -> {rss_kib(p) / 1024:.0f} MiB"
                for p in measured
            ] + [
                f"- not counted: the main process and multiprocessing's helpers ({len(others)} processes), "
                f"RSS {others_before / 1024:.0f} -> {others_after / 1024:.0f} MiB"
            ]
        if args.tracemalloc:
            report += ["", growth(f"{snapshots}.1", f"{snapshots}.2", held)]
    finally:
        pool.stop()
        if server is not None:
            started = {pid: started_at(pid) for pid in descendants(server.pid)}
            stop(server)
            for pid, when in started.items():  # a worker its manager failed to stop: never left behind
                if when is not None and started_at(pid) == when:  # (the same process, not a pid reused)
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
        await stores.pg.execute("DELETE FROM users WHERE username LIKE $1", f"conn{os.getpid()}_%")
        await stores.close()
        for path in Path("/tmp").glob(f"nubo-connections-{os.getpid()}.trace.*"):  # noqa: ASYNC240 - at the end
            path.unlink()
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connections", type=int, default=20_000)
    parser.add_argument("--users", type=int, default=20_000, help="connections are spread over this many users")
    parser.add_argument("--clients", type=int, default=4, help="client processes")
    parser.add_argument("--heartbeat", type=float, default=5.0, help="NUBO_WS_HEARTBEAT_INTERVAL of the instance")
    parser.add_argument("--hold", type=float, default=16.0, help="seconds to hold every connection")
    parser.add_argument("--workers", type=int, default=1, help="the instance's worker processes (serve --workers)")
    parser.add_argument("--tracemalloc", type=int, default=0, metavar="FRAMES")
    parser.add_argument("--snapshots", help=argparse.SUPPRESS)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args, _ = parser.parse_known_args()
    if args.workers > 1 and args.tracemalloc:
        parser.error("--tracemalloc traces one process: leave --workers at 1")
    raise_fd_limit()
    if args.serve:
        serve_traced(args.tracemalloc, args.snapshots)
        return
    print("\n".join(asyncio.run(run(args))))


if __name__ == "__main__":
    main()
