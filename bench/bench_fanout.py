"""Fan-out from ONE client process: nubo on two instances against minimal Sanic in memory, same run.

The issue's workload: `--receivers` sockets (default 5,000), all signed in as one user, held by
this one process (the `websockets` library on uvloop), spread evenly over two `nubo serve`
instances; one more socket on instance A sends a plain-text line every `--interval` seconds,
`--rounds` times. nubo relays each line through Redis (`nubo-websocket`) to both instances and
keeps it in MongoDB. The baseline is bench/minimal_sanic.py: one process, a set of sockets, each
line sent to every one of them in memory, once with Sanic's `send` (the issue's baseline) and once
written as nubo writes (one prebuilt frame, one transport write per socket). Because the client
is one process, it competes for the cores with the servers, as the issue asks.

Per round: the full fan-out (send to the last receiver's copy) and every copy's latency.
Reported: medians of the full fan-out, the first copy and p50/p99 of copies, connects that did
not complete, CPU per line of the servers and of this client, and how this client ran: how often
per line it waited for input (few waits: the copies came faster than it reads them, and it read
them in large batches), how often it was preempted, and its garbage collector's passes and time.
This client's collector is off during the rounds unless `--client-gc` says otherwise: with 5,000
sockets in one process it cost the fastest writers' rows 63-77 ms a line (see --help).

    python bench/bench_fanout.py [--receivers 5000] [--rounds 10] [--interval 0.5] [--instances 2]

Settings (database, Redis, MongoDB) come from NUBO_* / .env / config, as for bench_ws.py.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import uvloop
from websockets.asyncio.client import ClientConnection, connect

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_ws import free_port, make_users, raise_fd_limit, start, stop  # noqa: E402

NUBO = "nubo, {} instance(s) via Redis"
MINIMAL = "minimal Sanic, in memory"
PREBUILT = "minimal Sanic, in memory, prebuilt frame"

CONNECT_TIMEOUT = 90.0
PARALLEL_CONNECTS = 100


class Receivers:
    """The receiving sockets and what each line's copies took."""

    def __init__(self) -> None:
        self.sockets: list[ClientConnection] = []
        self.failed = 0
        self.arrivals: dict[int, list[float]] = {}  # round -> receive times
        self.tasks: list[asyncio.Task[None]] = []

    async def open(self, urls: list[str], headers: dict[str, str], count: int) -> None:
        gate = asyncio.Semaphore(PARALLEL_CONNECTS)

        async def one(n: int) -> None:
            async with gate:
                try:
                    ws = await connect(urls[n % len(urls)], additional_headers=headers,
                                       open_timeout=CONNECT_TIMEOUT, max_queue=None, compression=None)
                except Exception:  # noqa: BLE001 - counted: the issue asks that every connect completes
                    self.failed += 1
                    return
                self.sockets.append(ws)
                self.tasks.append(asyncio.create_task(self._read(ws)))

        await asyncio.gather(*(one(n) for n in range(count)))

    async def _read(self, ws: ClientConnection) -> None:
        try:
            async for message in ws:
                if isinstance(message, str) and message.startswith("fanout "):
                    self.arrivals.setdefault(int(message.split()[1]), []).append(time.perf_counter())
        except Exception:  # noqa: BLE001 - a closed socket ends its reader
            pass

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*(ws.close() for ws in self.sockets), return_exceptions=True)


class GcClock:
    """This process's garbage collector during the rounds: set as `mode` asks (see --client-gc),
    given back as it was at the end, and the wall time it spent collecting (gc.callbacks)."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.seconds = 0.0
        self._began = 0.0

    def __enter__(self) -> GcClock:
        if self.mode != "default":
            gc.collect()
            gc.freeze()
        if self.mode == "off":
            gc.disable()
        gc.callbacks.append(self._note)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._note)
        gc.enable()
        gc.unfreeze()

    def _note(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._began


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def client_switches() -> tuple[int, int]:
    """This process's context switches so far: (voluntary, i.e. it waited for input; involuntary,
    i.e. it was preempted by another process wanting the core)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_nvcsw, usage.ru_nivcsw


def start_profiles(pids: list[int], tag: str, seconds: float, directory: str | None) -> list[subprocess.Popen]:
    """py-spy on each server for the broadcast rounds (collapsed stacks, one file per process)."""
    if not directory:
        return []
    Path(directory).mkdir(parents=True, exist_ok=True)
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        raise SystemExit("--profile needs py-spy: pip install -e '.[bench]'")
    return [subprocess.Popen([spy, "record", "--pid", str(pid), "--rate", "250", "--nonblocking",
                              "--format", "raw", "--duration", str(int(seconds) + 1),
                              "-o", str(Path(directory) / f"{tag}-{pid}.txt")],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for pid in pids]


async def measure(name: str, urls: list[str], headers: dict[str, str],
                  args: argparse.Namespace, pids: list[int]) -> dict[str, object]:
    receivers = Receivers()
    began = time.perf_counter()
    await receivers.open(urls, headers, args.receivers)
    connect_s = time.perf_counter() - began
    print(f"  {name}: {len(receivers.sockets)} connected in {connect_s:.1f}s, {receivers.failed} failed",
          file=sys.stderr)
    # the sender is on the first address (instance A for nubo)
    sender = await connect(urls[0], additional_headers=headers, open_timeout=CONNECT_TIMEOUT)
    await asyncio.sleep(1)
    tag = name.split(",")[0].replace(" ", "_") + f"-{time.strftime('%H%M%S')}"
    profilers = start_profiles(pids, tag, args.rounds * args.interval + 2, args.profile)
    profilers += start_profiles([os.getpid()], f"client-{tag}", args.rounds * args.interval + 2, args.profile)
    cpu_before = [cpu_seconds(pid) for pid in pids]
    client_before = time.process_time()
    switches_before = client_switches()
    sent: dict[int, float] = {}
    with GcClock(args.client_gc) as gc_clock:
        gc_before = gc.get_stats()  # after the clock's own collection, which is not the rounds'
        for n in range(args.rounds):
            sent[n] = time.perf_counter()
            await sender.send(f"fanout {n}")
            await asyncio.sleep(args.interval)
        await asyncio.sleep(2)  # the last copies
    server_cpu = sum(cpu_seconds(pid) for pid in pids) - sum(cpu_before)
    client_cpu = time.process_time() - client_before
    passes = [now["collections"] - then["collections"] for now, then in zip(gc.get_stats(), gc_before, strict=True)]
    voluntary, involuntary = (after - before for after, before in zip(client_switches(), switches_before, strict=True))
    for profiler in profilers:
        profiler.wait(timeout=30)
    full, first, copies, missing = [], [], [], 0
    for n, at in sent.items():
        got = receivers.arrivals.get(n, [])
        missing += len(receivers.sockets) - len(got)
        copies.extend(t - at for t in got)
        if got:
            first.append(min(got) - at)
        if len(got) == len(receivers.sockets):
            full.append(max(got) - at)
    await sender.close()
    await receivers.close()
    return {
        "name": name, "connected": len(receivers.sockets), "failed": receivers.failed, "connect_s": connect_s,
        "full_ms": 1000 * statistics.median(full) if full else float("nan"), "complete_rounds": len(full),
        "first_ms": 1000 * statistics.median(first) if first else float("nan"),
        "p50_ms": 1000 * statistics.median(copies) if copies else float("nan"),
        "p99_ms": 1000 * sorted(copies)[int(0.99 * (len(copies) - 1))] if copies else float("nan"),
        "missing": missing,
        "server_cpu_ms": 1000 * server_cpu / args.rounds, "client_cpu_ms": 1000 * client_cpu / args.rounds,
        "client_waits": voluntary / args.rounds, "client_preempted": involuntary / args.rounds,
        "client_gc": sum(passes) / args.rounds, "client_full_gc": passes[-1],
        "client_gc_ms": 1000 * gc_clock.seconds / args.rounds,
    }


async def run(args: argparse.Namespace) -> None:
    from nubo_backend.settings import load_settings
    from nubo_backend.stores import open_stores

    print(f"load average {os.getloadavg()[0]:.1f} at the start", file=sys.stderr)
    settings = load_settings()
    stores = await open_stores(settings, pool_size=2)
    servers: list[subprocess.Popen] = []
    results = []
    try:
        [(_, token)] = await make_users(stores, 1, f"fan{os.getpid()}_")
        headers = {"Authorization": f"Bearer {token}"}
        # Measures the broadcast path itself: its abuse limits (#26) off.
        env = {"NUBO_WS_IDLE_TIMEOUT": "3600", "NUBO_LOG_LEVEL": "WARNING",
               "NUBO_WS_MAX_CONNECTIONS_PER_USER": str(args.receivers + 10),
               "NUBO_BROADCAST_PER_USER": "0", "NUBO_BROADCAST_GLOBAL": "0"}
        ports = [free_port() for _ in range(args.instances)]
        for port in ports:
            servers.append(start([sys.executable, "-m", "cli", "serve", "--port", str(port)], port, env))
        base_port = free_port()
        servers.append(start([sys.executable, str(ROOT / "bench" / "minimal_sanic.py"), str(base_port)], base_port, {}))
        nubo_pids = [proc.pid for proc in servers[:len(ports)]]
        for n in range(args.repeat):
            order = [(NUBO.format(args.instances), [f"ws://127.0.0.1:{p}/ws" for p in ports], nubo_pids),
                     (MINIMAL, [f"ws://127.0.0.1:{base_port}/ws"], [servers[-1].pid]),
                     (PREBUILT, [f"ws://127.0.0.1:{base_port}/ws-prebuilt"], [servers[-1].pid])]
            for name, urls, pids in (order if n % 2 == 0 else order[::-1]):
                results.append(await measure(name, urls, headers, args, pids))
    finally:
        for proc in servers:
            stop(proc)
        await stores.close()
    print(f"{args.receivers} receivers in one client process (its GC: {args.client_gc}), "
          f"{args.rounds} lines every {args.interval}s, "
          f"{os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f} at the end.\n")
    print("| server | connected | connects failed | connect s | full fan-out median ms | first copy ms "
          "| copy p50 ms | copy p99 ms "
          "| rounds complete | copies missing | server CPU ms/line | client CPU ms/line "
          "| client waits/line | client preempted/line | client GC passes/line | client full GCs "
          "| client GC ms/line |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['name']} | {r['connected']} | {r['failed']} | {r['connect_s']:.0f} | {r['full_ms']:.0f} "
              f"| {r['first_ms']:.0f} | {r['p50_ms']:.0f} | {r['p99_ms']:.0f} "
              f"| {r['complete_rounds']}/{args.rounds} | {r['missing']} "
              f"| {r['server_cpu_ms']:.0f} | {r['client_cpu_ms']:.0f} | {r['client_waits']:.0f} "
              f"| {r['client_preempted']:.0f} | {r['client_gc']:.1f} | {r['client_full_gc']} "
              f"| {r['client_gc_ms']:.0f} |")
    medians = {}
    for name in dict.fromkeys(r["name"] for r in results):
        mine = [r["full_ms"] for r in results if r["name"] == name]
        medians[name] = statistics.median(mine)
        print(f"\n{name}: full fan-out medians {', '.join(f'{m:.0f}' for m in mine)} ms", end="")
    print()
    nubo = NUBO.format(args.instances)
    for baseline in (MINIMAL, PREBUILT):
        # Pair by pair too: each repeat measures the three back to back, so its ratio is the one
        # least moved by the machine's drift between repeats.
        pairs = [mine["full_ms"] / theirs["full_ms"]
                 for mine, theirs in zip((r for r in results if r["name"] == nubo),
                                         (r for r in results if r["name"] == baseline), strict=True)]
        print(f"nubo / {baseline}: {medians[nubo] / medians[baseline]:.2f}x (median of each's medians); "
              f"repeat by repeat {', '.join(f'{p:.2f}' for p in pairs)}, median {statistics.median(pairs):.2f}x")
    if args.profile:
        for path in sorted(Path(args.profile).glob("*.txt")):  # noqa: ASYNC240 - after the run
            print(summarise_profile(path))


def summarise_profile(path: Path, top: int = 12) -> str:
    """The functions a py-spy raw profile spent its samples in (self time), and their share."""
    own: dict[str, int] = {}
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        leaf = stack.rsplit(";", 1)[-1]
        name, _, where = leaf.partition(" (")
        where = where.rstrip(")").rsplit(":", 1)[0].rsplit("/", 2)[-2:]
        key = f"{name} ({'/'.join(where)})"
        own[key] = own.get(key, 0) + int(count)
        total += int(count)
    rows = sorted(own.items(), key=lambda kv: -kv[1])[:top]
    lines = [f"{path.name}: {total} samples"] + [f"  {100 * n / total:5.1f} %  {key}" for key, n in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--receivers", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--interval", type=float, default=0.5)
    parser.add_argument("--instances", type=int, default=2,
                        help="nubo instances the receivers are spread over (the issue's workload: 2)")
    parser.add_argument("--client-gc", choices=("off", "frozen", "default"), default="off",
                        help="this client's garbage collector during the rounds. off (the default): frozen "
                             "once the sockets are open, then off until the rounds end (reference counting "
                             "still frees every copy). When copies come faster than it reads them they pile "
                             "up, and its collector walks them again and again: 46-77 ms per line against "
                             "10-26 for a slow writer, a cost of this one client holding 5,000 sockets that "
                             "penalises the faster servers. frozen: gc.freeze() only; default: Python's "
                             "collector as it comes")
    parser.add_argument("--repeat", type=int, default=1, help="measure both servers this many times, alternating")
    parser.add_argument("--profile", metavar="DIR",
                        help="py-spy each server and this client during the rounds (raw stacks in DIR, one file per "
                             "process; needs the bench extra: pip install -e '.[bench]')")
    args = parser.parse_args()
    raise_fd_limit()
    uvloop.run(run(args))


if __name__ == "__main__":
    main()
