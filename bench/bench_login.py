"""Login latency, and /ping latency while logins hash, against a real `nubo serve`.

Three measurements in one run, so they compare on the same machine at the same moment:

1. /ping alone, one client sending back to back (the baseline);
2. POST /login from --concurrency clients, each with its own account;
3. the same single /ping client while (2) runs: if argon2 ran on the event loop, this
   would wait behind the hashes; off the loop it should stay near the baseline.

`--flood N` adds N clients of one other account sending `POST /me/password` with a wrong
password back to back during (2) and (3) (the server started here has the login budgets
lifted, so every one of them hashes): how much one account's flood of password checks
slows everyone else's logins (issue #26); with `--login-limits` the shipped budgets stay
on, and all but the first 10 of the flood's checks are refused (429) without hashing.

By default the script starts its own server (test-like environment, a database of its
own, production argon2 cost unless told otherwise) and removes everything afterwards.
With --url it drives a server you started (it signs up its own bench accounts there).
Accounts and logins go through the project's client (`Nubo.signup`, then one `Nubo` per
login client calling `log_in_again` back to back: one kept-alive connection each, as
before); /ping, which has no client method, is a plain httpx GET.

    .venv/bin/python bench/bench_login.py --duration 10 --concurrency 8
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from nubo_backend.client import Nubo, NuboError  # noqa: E402
from tests.support import MongoEmulator, ServerProcess, jongodb_binary  # noqa: E402

PASSWORD = "bench-password-123"


def percentile(samples: list[float], q: float) -> float:
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Result:
    def __init__(self, name: str) -> None:
        self.name = name
        self.latencies: list[float] = []
        self.errors = 0
        self.elapsed = 0.0

    def row(self) -> str:
        ms = [x * 1000 for x in self.latencies]
        rate = len(ms) / self.elapsed if self.elapsed else 0.0
        p50 = statistics.median(ms) if ms else float("nan")
        return (
            f"| {self.name} | {len(ms)} | {self.errors} | {rate:.1f} | {p50:.1f} | "
            f"{percentile(ms, 0.99):.1f} | {max(ms, default=float('nan')):.1f} |"
        )


Send = Callable[[], Awaitable[bool]]


async def drive(result: Result, deadline: float, send: Send) -> None:
    """One client: send requests back to back until the deadline, recording each latency."""
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        try:
            ok = await send()
        except (httpx.HTTPError, NuboError):
            ok = False
        if ok:
            result.latencies.append(time.perf_counter() - started)
        else:
            result.errors += 1


async def ping_alone(url: str, duration: float) -> Result:
    result = Result("/ping alone (1 client)")
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        started = time.perf_counter()
        await drive(result, started + duration, lambda: _ok(client.get("/ping")))
        result.elapsed = time.perf_counter() - started
    return result


async def _ok(request: Awaitable[httpx.Response]) -> bool:
    return (await request).status_code == 200


async def logins_with_ping(
    url: str, duration: float, usernames: list[str], flooder: str | None, flood: int
) -> tuple[Result, Result, Result]:
    during = f", {flood} flooding" if flood else ""
    logins = Result(f"POST /login ({len(usernames)} clients{during})")
    pings = Result(f"/ping during logins (1 client{during})")
    floods = Result(f"POST /me/password, wrong ({flood} clients, one account)")
    clients = [await Nubo.login(url, name, PASSWORD, timeout=60) for name in usernames]
    try:
        async with httpx.AsyncClient(base_url=url, timeout=60) as pinger:
            headers = {}
            if flood and flooder:
                signed_in = await pinger.post("/login", json={"username": flooder, "password": PASSWORD})
                headers = {"Authorization": f"Bearer {signed_in.json()['access_token']}"}
            wrong = {"current_password": "not-the-password", "new_password": "whatever-new-123"}

            async def check_wrong() -> bool:  # a 429 (the budget spent) counts as an error
                return (await pinger.post("/me/password", json=wrong, headers=headers)).status_code == 403

            started = time.perf_counter()
            deadline = started + duration

            def login(client: Nubo) -> Send:
                async def send() -> bool:
                    await client.log_in_again(PASSWORD)  # POST /login; raises if refused
                    return True
                return send

            await asyncio.gather(
                *(drive(logins, deadline, login(client)) for client in clients),
                drive(pings, deadline, lambda: _ok(pinger.get("/ping"))),
                *(drive(floods, deadline, check_wrong) for _ in range(flood)),
            )
            elapsed = time.perf_counter() - started
    finally:
        for client in clients:
            await client.aclose()
    logins.elapsed = pings.elapsed = floods.elapsed = elapsed
    return logins, pings, floods


async def make_accounts(url: str, count: int) -> list[str]:
    tag = secrets.token_hex(3)
    names = [f"bench_{tag}_{i}" for i in range(count)]
    for name in names:
        async with await Nubo.signup(url, name, f"{name}@bench.test", PASSWORD, timeout=60):
            pass
    return names


@asynccontextmanager
async def own_server(args: argparse.Namespace) -> AsyncIterator[str]:
    """A fresh database, Redis namespace and (emulated unless --mongo-url) MongoDB, and a server on them."""
    import asyncpg
    import redis.asyncio as aioredis

    from nubo_backend.stores.migrations import migrate

    run = f"bench_login_{os.getpid()}"
    base = args.pg_admin_dsn.rpartition("/")[0]
    dsn = f"{base}/{run}"
    async with AsyncExitStack() as stack:
        admin = await asyncpg.connect(args.pg_admin_dsn)
        await admin.execute(f'CREATE DATABASE "{run}"')
        await admin.close()

        async def drop_database() -> None:
            conn = await asyncpg.connect(args.pg_admin_dsn)
            await conn.execute(f'DROP DATABASE IF EXISTS "{run}" WITH (FORCE)')
            await conn.close()

        stack.push_async_callback(drop_database)
        await migrate(dsn)

        mongo_url = args.mongo_url
        if not mongo_url:
            binary = jongodb_binary()
            if binary is None:
                raise SystemExit("no MongoDB: pass --mongo-url, or run ./scripts/test once to install the emulator")
            emulator = MongoEmulator(binary).start()
            stack.callback(emulator.stop)
            mongo_url = emulator.url

        namespace = f"{run}:"

        async def forget_redis_keys() -> None:
            client = aioredis.Redis.from_url(args.redis_url)
            keys = [k async for k in client.scan_iter(match=f"{namespace}*", count=1000)]
            if keys:
                await client.delete(*keys)
            await client.aclose()

        stack.push_async_callback(forget_redis_keys)
        env = {
            "NUBO_ENV": "test",
            "NUBO_ENV_FILE": "/nonexistent/.env",
            "NUBO_POSTGRES_DSN": dsn,
            "NUBO_REDIS_URL": args.redis_url,
            "NUBO_REDIS_NAMESPACE": namespace,
            "NUBO_MONGO_URL": mongo_url,
            "NUBO_MONGO_DB": run,
            "NUBO_LOG_LEVEL": "WARNING",
            "NUBO_ARGON2_TIME_COST": str(args.argon2_time_cost),
            "NUBO_ARGON2_MEMORY_COST": str(args.argon2_memory_cost),
            "NUBO_RATE_LIMIT_SIGNUP": "100000000",
        }
        # The test environment's own login limit is 1000 (config/test.toml): set the shipped one.
        env["NUBO_RATE_LIMIT_LOGIN"] = "10" if args.login_limits else "100000000"
        server = ServerProcess(env).start(wait=False)
        stack.callback(server.stop)
        server.wait_ready(timeout=120)  # a loaded shared machine starts a server slowly
        yield server.url


async def run(args: argparse.Namespace) -> None:
    async with AsyncExitStack() as stack:
        url = args.url or await stack.enter_async_context(own_server(args))
        usernames = await make_accounts(url, args.concurrency + (1 if args.flood else 0))
        flooder = usernames.pop() if args.flood else None
        baseline = await ping_alone(url, args.duration)
        logins, pings, floods = await logins_with_ping(url, args.duration, usernames, flooder, args.flood)
    cost = "server's own" if args.url else f"t={args.argon2_time_cost}, m={args.argon2_memory_cost} KiB"
    print(f"\nLogin benchmark: {args.duration:g}s per phase, {args.concurrency} login clients, argon2 {cost}\n")
    print("| scenario | requests | errors | req/s | p50 ms | p99 ms | max ms |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for result in (baseline, logins, pings, *([floods] if args.flood else [])):
        print(result.row())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per phase")
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent login clients")
    parser.add_argument("--flood", type=int, default=0,
                        help="clients of one other account flooding POST /me/password meanwhile")
    parser.add_argument("--login-limits", action="store_true",
                        help="keep the shipped login and password budgets (10 per minute: use with short runs)")
    parser.add_argument("--url", help="drive this running server instead of starting one")
    parser.add_argument("--argon2-time-cost", type=int, default=3, help="for the server started here")
    parser.add_argument("--argon2-memory-cost", type=int, default=65536, help="KiB, for the server started here")
    parser.add_argument(
        "--pg-admin-dsn",
        default=os.environ.get("NUBO_TEST_PG_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"),
    )
    parser.add_argument("--redis-url", default=os.environ.get("NUBO_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--mongo-url", default=os.environ.get("NUBO_MONGO_URL"), help="default: the emulator")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
