"""Direct messages end to end, two checkouts side by side: REST send on instance A -> the
recipient's socket on instance B.

    python bench/bench_dm.py --a ../nubo-before --b . --mongo-url mongodb://127.0.0.1:27018 \
        [--rates 50,100,200,400] [--seconds 5] [--rounds 3] [--pairs 20]

Each checkout gets a database of its own (migrated by that checkout), a Redis namespace of its
own and two `nubo serve` instances run from its folder (so each imports its own code); both
stacks run at once and the rounds alternate A/B and B/A, so the machine's drift falls on both.
`--pairs` sender/recipient pairs sign up through the API and open a direct conversation; the
recipients hold a socket on B. Both ends are the project's own client (`nubo_backend.client`):
one `Nubo` per user, `post_message` to send, `events()` to receive. At each rate the
senders POST messages on A (at most 64 in flight: a server that cannot keep up lowers the
achieved rate) for `--seconds`; a message's latency runs from the start of its POST to its
`message.created` reaching the recipient's client (its `on_frame` hook: as the socket's
reader gets the frame). Reports, per checkout and rate, the medians
over rounds of the achieved rate, p50 and p99.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.bench_ws import free_port, progress  # noqa: E402
from nubo_backend.client import Frame, MessageCreated, Nubo, NuboError  # noqa: E402

MAX_IN_FLIGHT = 64
PG_ADMIN = os.environ.get("NUBO_BENCH_PG_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")


@dataclass
class Side:
    label: str
    checkout: Path
    env: dict[str, str]
    servers: list[subprocess.Popen] = field(default_factory=list)
    ports: list[int] = field(default_factory=list)
    pairs: list[tuple[Nubo, int]] = field(default_factory=list)  # (sender, conversation id)
    clients: list[Nubo] = field(default_factory=list)  # every client, to close
    sent_at: dict[str, float] = field(default_factory=dict)  # message body -> when its POST began
    latencies: list[float] = field(default_factory=list)
    readers: list[asyncio.Task] = field(default_factory=list)

    def url(self, index: int) -> str:
        return f"http://127.0.0.1:{self.ports[index]}"


async def prepare(side: Side, pairs: int) -> None:
    database = side.env["NUBO_POSTGRES_DSN"].rsplit("/", 1)[1]
    admin = await asyncpg.connect(PG_ADMIN)
    await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    await admin.execute(f'CREATE DATABASE "{database}"')
    await admin.close()
    env = {**os.environ, **side.env}
    # Set-up: nothing else runs on this loop yet, so blocking calls are fine here.
    subprocess.run([sys.executable, "-m", "cli", "migrate"], cwd=side.checkout, env=env, check=True,  # noqa: ASYNC221
                   capture_output=True)
    for _ in range(2):
        port = free_port()
        proc = subprocess.Popen([sys.executable, "-m", "cli", "serve", "--port", str(port)], cwd=side.checkout,  # noqa: ASYNC220
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        side.servers.append(proc)
        side.ports.append(port)
        for _ in range(200):
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/ping", timeout=0.5).status_code == 200:  # noqa: ASYNC210
                    break
            await asyncio.sleep(0.1)
    for n in range(pairs):
        # Senders on A; recipients signed up (and their sockets) on B.
        sender = await Nubo.signup(side.url(0), f"dms{n}", f"dms{n}@bench.invalid", "bench password", timeout=30)
        recipient = await Nubo.signup(side.url(1), f"dmr{n}", f"dmr{n}@bench.invalid", "bench password",
                                      timeout=30)
        side.clients += [sender, recipient]
        conversation = await sender.open_direct(recipient.user.id)
        side.pairs.append((sender, conversation.id))
        recipient.realtime.on_frame = lambda frame: arrived(side, frame)
        await asyncio.wait_for(recipient.realtime.wait_connected(), 10)
        side.readers.append(asyncio.create_task(drain(recipient)))


def arrived(side: Side, frame: Frame) -> None:
    # Timed as the client's socket reader gets the frame (on_frame), not where events()
    # yields it one event-loop turn later: that turn is the driver's scheduling, not the server.
    if isinstance(frame, MessageCreated):
        began = side.sent_at.pop(frame.data.get("body") or "", None)
        if began is not None:
            side.latencies.append(time.perf_counter() - began)


async def drain(recipient: Nubo) -> None:
    async for _ in recipient.events():  # what the application would read; timed in arrived()
        pass


async def measure(side: Side, rate: int, seconds: float) -> tuple[float, float, float, float]:
    """(achieved rate, p50 ms, p99 ms, delivered share) of one step."""
    side.latencies.clear()
    side.sent_at.clear()
    in_flight = asyncio.Semaphore(MAX_IN_FLIGHT)
    counter = itertools.count()
    acked = 0

    async def one(sender: Nubo, conversation: int) -> None:
        nonlocal acked
        body = f"{side.label}-{next(counter)}"
        side.sent_at[body] = time.perf_counter()
        try:
            await sender.post_message(conversation, body)
            acked += 1
        except (NuboError, httpx.HTTPError):
            pass  # not acknowledged: lowers the achieved rate
        finally:
            in_flight.release()

    tasks = set()
    begin, n = time.perf_counter(), 0
    while (elapsed := time.perf_counter() - begin) < seconds:
        for _ in range(int(elapsed * rate) - n):
            await in_flight.acquire()
            sender, conversation = side.pairs[n % len(side.pairs)]
            task = asyncio.create_task(one(sender, conversation))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            n += 1
        await asyncio.sleep(0.002)
    if tasks:
        await asyncio.wait(tasks, timeout=30)
    achieved = acked / (time.perf_counter() - begin)
    for _ in range(50):  # the last deliveries
        if not side.sent_at:
            break
        await asyncio.sleep(0.1)
    got = sorted(side.latencies)
    if not got:
        return achieved, float("nan"), float("nan"), 0.0
    return (achieved, got[len(got) // 2] * 1000, got[min(len(got) - 1, int(len(got) * 0.99))] * 1000,
            len(got) / max(acked, 1))


async def run(args: argparse.Namespace) -> None:
    rates = [int(r) for r in args.rates.split(",")]
    sides = []
    for label, checkout in (("A", args.a), ("B", args.b)):
        tag = f"benchdm_{label.lower()}_{os.getpid()}"
        sides.append(Side(label, Path(checkout).resolve(), {  # noqa: ASYNC240
            "NUBO_ENV": "development", "NUBO_ENV_FILE": "/nonexistent/.env", "NUBO_LOG_LEVEL": "WARNING",
            "NUBO_POSTGRES_DSN": PG_ADMIN.rsplit("/", 1)[0] + f"/{tag}",
            "NUBO_REDIS_NAMESPACE": f"{tag}:", "NUBO_MONGO_URL": args.mongo_url, "NUBO_MONGO_DB": tag,
            "NUBO_WS_IDLE_TIMEOUT": "3600", "NUBO_RATE_LIMIT_SIGNUP": "100000",
        }))
    results: dict[tuple[str, int], list[tuple[float, float, float, float]]] = {}
    driver_cpu = 0.0  # this process's CPU seconds in the measured steps: the load driver's own cost
    try:
        for side in sides:
            progress(f"{side.label}: {side.checkout}: database, two instances, {args.pairs} pairs")
            await prepare(side, args.pairs)
        for round_no in range(args.rounds):
            order = sides if round_no % 2 == 0 else sides[::-1]
            for rate in rates:
                for side in order:
                    cpu = resource.getrusage(resource.RUSAGE_SELF)
                    figure = await measure(side, rate, args.seconds)
                    after = resource.getrusage(resource.RUSAGE_SELF)
                    driver_cpu += after.ru_utime - cpu.ru_utime + after.ru_stime - cpu.ru_stime
                    results.setdefault((side.label, rate), []).append(figure)
                    progress(f"round {round_no + 1}/{args.rounds} {side.label} {rate}/s: "
                             f"{figure[0]:.0f}/s p50 {figure[1]:.1f} ms p99 {figure[2]:.1f} ms "
                             f"delivered {figure[3]:.1%}")
    finally:
        for side in sides:
            for task in side.readers:
                task.cancel()
            for client in side.clients:
                await client.aclose()
            for proc in side.servers:
                proc.terminate()
            for proc in side.servers:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(10)
    print(f"\n| checkout | target/s | achieved/s | p50 ms | p99 ms | delivered | (medians of {args.rounds} rounds) |")
    print("|---|---|---|---|---|---|---|")
    for side in sides:
        for rate in rates:
            runs = results.get((side.label, rate), [])
            if not runs:
                continue
            med = [statistics.median(r[i] for r in runs) for i in range(4)]
            print(f"| {side.label} `{side.checkout.name}` | {rate} | {med[0]:.0f} | {med[1]:.1f} | {med[2]:.1f} | "
                  f"{med[3]:.1%} | |")
    steps = sum(len(runs) for runs in results.values())
    print(f"\nThe driver's own CPU over the {steps} measured steps: {driver_cpu:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--a", required=True, help="first checkout (e.g. the code before a change)")
    parser.add_argument("--b", default=".", help="second checkout")
    parser.add_argument("--mongo-url", default=os.environ.get("NUBO_MONGO_URL", "mongodb://127.0.0.1:27017"))
    parser.add_argument("--rates", default="50,100,200,400", help="messages per second, comma-separated")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each step")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pairs", type=int, default=20, help="sender/recipient pairs")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
