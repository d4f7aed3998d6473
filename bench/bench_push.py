"""Push throughput, and socket delivery with and without a slow push service, in one run.

    python bench/bench_push.py --mongo-url mongodb://127.0.0.1:27018 \
        [--pushes 1000] [--recipients 50] [--socket-users 10] [--rate 50] [--seconds 10] [--slow 2.0]

One `nubo serve` (its own database and Redis namespace) pushes to the local Web Push service of
the tests (tests/push_receivers.py: it checks every VAPID JWT and decrypts every payload, on the
bench's own loop). Three phases:

1. Throughput: `--recipients` users without a socket, each with a Web Push subscription; a sender
   POSTs `--pushes` direct messages to them while the server holds their jobs (a grace of an
   hour); then every job is made due at once. Pushes per second = pushes received / time from
   then to the last push received: the sender's rate, not the REST API's.
2. Socket delivery, push service normal: `--socket-users` users hold a socket; messages to them
   at `--rate`/s for `--seconds`, while the same rate of messages goes to push-only users.
   Latency: from the start of the POST to `message.created` on the socket.
3. The same with the push service answering every request after `--slow` seconds.

Reports pushes/s, and p50/p99 of socket delivery in phases 2 and 3.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import httpx
from websockets.asyncio.client import connect

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.bench_ws import free_port, pct, progress  # noqa: E402
from nubo_backend.push.vapid import new_private_key_pem  # noqa: E402
from tests.push_receivers import WebPushReceiver  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN = os.environ.get("NUBO_BENCH_PG_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
DB = f"nubo_bench_push_{os.getpid()}"
MAX_IN_FLIGHT = 64
_names = itertools.count(1)


async def signup(api: httpx.AsyncClient) -> tuple[int, dict[str, str]]:
    name = f"push{next(_names)}_{os.getpid()}"
    response = await api.post("/signup", json={"username": name, "email": f"{name}@bench.test",
                                                "password": "password123"})
    response.raise_for_status()
    body = response.json()
    return body["user"]["id"], {"Authorization": f"Bearer {body['access_token']}"}


async def direct(api: httpx.AsyncClient, headers: dict[str, str], user_id: int) -> int:
    response = await api.post("/conversations", headers=headers, json={"user_id": user_id})
    response.raise_for_status()
    return response.json()["id"]


async def send_all(api: httpx.AsyncClient, headers: dict[str, str], conversations: list[int], count: int,
                   rate: float | None = None, sent_at: dict[str, float] | None = None) -> None:
    """POST count messages round-robin over conversations, at rate/s (or as fast as 64 in flight go)."""
    gate = asyncio.Semaphore(MAX_IN_FLIGHT)
    started = time.monotonic()

    async def one(i: int) -> None:
        async with gate:
            body = f"m{i}-{os.urandom(4).hex()}"
            if sent_at is not None:
                sent_at[body] = time.monotonic()
            await api.post(f"/conversations/{conversations[i % len(conversations)]}/messages",
                           headers=headers, json={"body": body})

    tasks = []
    for i in range(count):
        if rate:
            await asyncio.sleep(max(started + i / rate - time.monotonic(), 0))
        tasks.append(asyncio.create_task(one(i)))
    await asyncio.gather(*tasks)


async def socket_phase(api, server_url, sender, socket_convs, socket_users, push_convs, rate, seconds) -> list[float]:
    sent_at: dict[str, float] = {}
    latencies: list[float] = []
    count = int(rate * seconds)

    async def read(headers: dict[str, str], ready: asyncio.Event) -> None:
        async with connect(server_url.replace("http", "ws") + "/ws", additional_headers=headers) as ws:
            ready.set()
            async for raw in ws:
                frame = json.loads(raw)
                if frame.get("type") == "message.created":
                    body = frame["data"]["body"]
                    if body in sent_at:
                        latencies.append(time.monotonic() - sent_at.pop(body))

    readies = [asyncio.Event() for _ in socket_users]
    readers = [asyncio.create_task(read(h, r)) for (_, h), r in zip(socket_users, readies, strict=True)]
    await asyncio.gather(*(r.wait() for r in readies))
    await asyncio.sleep(0.5)  # presence written
    await asyncio.gather(
        send_all(api, sender, socket_convs, count, rate, sent_at),
        send_all(api, sender, push_convs, count, rate),
    )
    deadline = time.monotonic() + 10
    while sent_at and time.monotonic() < deadline:  # noqa: ASYNC110 - a bench's bounded wait
        await asyncio.sleep(0.05)
    for task in readers:
        task.cancel()
    await asyncio.gather(*readers, return_exceptions=True)
    return latencies


async def serve(port: int, env: dict[str, str], url: str) -> subprocess.Popen:
    server = subprocess.Popen([sys.executable, "-m", "cli", "serve", "--port", str(port)], cwd=ROOT,  # noqa: ASYNC220
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    async with httpx.AsyncClient(base_url=url, timeout=5) as api:
        for _ in range(600):
            with contextlib.suppress(httpx.HTTPError):
                if (await api.get("/ping")).status_code == 200:
                    return server
            await asyncio.sleep(0.1)
    raise RuntimeError("server did not start")


async def main(args: argparse.Namespace) -> None:
    admin = await asyncpg.connect(PG_ADMIN)
    await admin.execute(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
    await admin.execute(f'CREATE DATABASE "{DB}"')
    await admin.close()
    receiver = await WebPushReceiver().start()
    port = free_port()
    env = {**os.environ, "NUBO_ENV": "test", "NUBO_ENV_FILE": "/nonexistent",
           "NUBO_POSTGRES_DSN": f"postgresql://postgres@127.0.0.1:5432/{DB}",
           "NUBO_REDIS_NAMESPACE": f"benchpush{os.getpid()}:", "NUBO_MONGO_URL": args.mongo_url, "NUBO_MONGO_DB": DB,
           "NUBO_RATE_LIMIT_SIGNUP": "100000", "NUBO_PUSH_VAPID_PRIVATE_KEY": new_private_key_pem(),
           "NUBO_PUSH_ALLOW_PRIVATE_ENDPOINTS": "true", "NUBO_PUSH_TIMEOUT": "30"}
    subprocess.run([sys.executable, "-m", "cli", "migrate"], cwd=ROOT, env=env, check=True,  # noqa: ASYNC221
                   capture_output=True)
    url = f"http://127.0.0.1:{port}"
    server = await serve(port, {**env, "NUBO_PUSH_GRACE": "3600"}, url)
    pg = await asyncpg.connect(env["NUBO_POSTGRES_DSN"])
    try:
        async with httpx.AsyncClient(base_url=url, timeout=60) as api:
            _, sender = await signup(api)
            progress("signing up and subscribing recipients")
            push_convs = []
            for _ in range(args.recipients):
                uid, headers = await signup(api)
                agent = receiver.new_subscription()
                reply = await api.post("/push/subscription", headers=headers, json={"subscription": agent.json()})
                reply.raise_for_status()
                receiver.server_key = reply.json()["server_key"]
                push_convs.append(await direct(api, sender, uid))
            socket_users = [await signup(api) for _ in range(args.socket_users)]
            socket_convs = [await direct(api, sender, uid) for uid, _ in socket_users]

            progress(f"phase 1: {args.pushes} messages, their pushes held")
            await send_all(api, sender, push_convs, args.pushes)
            while await pg.fetchval("SELECT count(*) FROM push_jobs") < args.pushes:  # noqa: ASYNC110
                await asyncio.sleep(0.1)
            progress("phase 1: every push due now")
            started = time.monotonic()
            await pg.execute("UPDATE push_jobs SET not_before = now(); NOTIFY nubo_push")
            await receiver.wait_for(args.pushes, within=300)
            elapsed = max(r.at for r in receiver.received) - started
            received, errors = len(receiver.received), len(receiver.errors)
            server.terminate()
            server.wait(timeout=20)
            server = await serve(port, env, url)  # the same, pushing after the default grace
            progress(f"phase 2: socket delivery at {args.rate}/s, push service normal")
            receiver.reset()
            normal = await socket_phase(api, url, sender, socket_convs, socket_users, push_convs, args.rate,
                                        args.seconds)
            progress(f"phase 3: the same, every push answered after {args.slow} s")
            receiver.delay = args.slow
            slow = await socket_phase(api, url, sender, socket_convs, socket_users, push_convs, args.rate,
                                      args.seconds)
            receiver.delay = 0
        print(f"pushes: {received}/{args.pushes} received ({errors} refused) in {elapsed:.2f} s = "
              f"{received / elapsed:.0f} pushes/s")
        for label, values in (("push service normal", normal), (f"push service {args.slow:g} s slow", slow)):
            print(f"socket delivery, {label}: {len(values)} delivered, p50 {pct(values, 0.5):.0f} ms, "
                  f"p99 {pct(values, 0.99):.0f} ms")
    finally:
        await pg.close()
        server.terminate()
        server.wait(timeout=20)
        await receiver.stop()
        admin = await asyncpg.connect(PG_ADMIN)
        await admin.execute(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mongo-url", required=True)
    parser.add_argument("--pushes", type=int, default=1000)
    parser.add_argument("--recipients", type=int, default=50)
    parser.add_argument("--socket-users", type=int, default=10)
    parser.add_argument("--rate", type=float, default=50)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--slow", type=float, default=2.0)
    asyncio.run(main(parser.parse_args()))
