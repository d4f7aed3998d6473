"""Delivery for any audience (issue #24): one author with a large following posts while unrelated
direct messages flow, on two instances.

    python bench/bench_audience.py --mongo-url mongodb://127.0.0.1:27018 \
        [--sizes 1000,10000,100000] [--posts 5] [--connected 200] [--lanes 4] [--dm-rate 50]

A database of its own (`benchaud_<pid>`, migrated, dropped after), a Redis namespace and a Mongo
database of its own, two `nubo serve` instances A and B. Alice sends Bob a direct message over REST
on A every 1/--dm-rate s; Bob holds a socket on B; a message's latency runs from the start of its
POST to its frame on Bob's socket. Followers are made in SQL; the first --connected of them (in
every author's audience, and the last to follow: the relay reaches them at the end of its walk)
hold sockets, half on A, half on B. Per size, an author with that many
followers posts --posts times, one per second. Then the owner of a full group (the member cap;
the connected followers among its members) sends --posts messages to it.

Reported per size: the author's POST p50/p99, the DMs' p50/p99/max before (3 s), during (from the
first post until every connected follower has the last one and the outbox is empty) and after
(3 s); the time until every connected follower has a post (median and max over posts); the
largest outbox backlog and the oldest row's age sampled every 100 ms during.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import orjson
from websockets.asyncio.client import ClientConnection, connect

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.bench_ws import free_port, progress, raise_fd_limit  # noqa: E402

PG_ADMIN = os.environ.get("NUBO_BENCH_PG_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
QUIET = 3.0  # seconds of DMs measured before and after each size


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


@dataclass
class Stack:
    env: dict[str, str]
    servers: list[subprocess.Popen] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)


@dataclass
class Dms:
    """Alice -> Bob, REST on A -> socket on B; latencies tagged with when they were sent."""

    sent: dict[str, float] = field(default_factory=dict)
    done: list[tuple[float, float]] = field(default_factory=list)  # (sent at, latency)
    acked: int = 0


async def start_stack(mongo_url: str, tag: str, lanes: int, instances: int = 2) -> Stack:
    """A fresh database `tag` (migrated), Redis namespace and Mongo database, and `instances`
    servers with `lanes` relay lanes, ready."""
    env = {
        "NUBO_ENV": "development", "NUBO_ENV_FILE": "/nonexistent/.env", "NUBO_LOG_LEVEL": "WARNING",
        "NUBO_POSTGRES_DSN": PG_ADMIN.rsplit("/", 1)[0] + f"/{tag}", "NUBO_REDIS_NAMESPACE": f"{tag}:",
        "NUBO_MONGO_URL": mongo_url, "NUBO_MONGO_DB": tag, "NUBO_WS_IDLE_TIMEOUT": "3600",
        "NUBO_RATE_LIMIT_SIGNUP": "100000", "NUBO_RELAY_LANES": str(lanes),
        "NUBO_WS_MAX_CONNECTIONS_PER_USER": "100", "NUBO_JWT_SECRET": "bench-audience-secret-" + "x" * 32,
        # The load is the bench's, not abuse: no per-account write budget (docs/security.md).
        "NUBO_WRITE_BUDGETS": "post=0/60,message=0/60,conversation=0/60",
    }
    admin = await asyncpg.connect(PG_ADMIN)
    await admin.execute(f'DROP DATABASE IF EXISTS "{tag}" WITH (FORCE)')
    await admin.execute(f'CREATE DATABASE "{tag}"')
    await admin.close()
    full = {**os.environ, **env}
    subprocess.run([sys.executable, "-m", "cli", "migrate"], cwd=ROOT, env=full, check=True,  # noqa: ASYNC221
                   capture_output=True)
    stack = Stack(env)
    logs = os.environ.get("NUBO_BENCH_LOGS")  # a folder for the servers' logs, to read after
    for n in range(instances):
        port = free_port()
        out = open(Path(logs) / f"{tag}-{n}.log", "w") if logs else subprocess.DEVNULL  # noqa: SIM115, ASYNC230
        stack.servers.append(subprocess.Popen(  # noqa: ASYNC220
            [sys.executable, "-m", "cli", "serve", "--port", str(port)], cwd=ROOT, env=full,
            stdout=out, stderr=subprocess.STDOUT))
        stack.urls.append(f"http://127.0.0.1:{port}")
    async with httpx.AsyncClient(timeout=1) as http:
        for url in stack.urls:
            for _ in range(300):
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(url + "/ready")).status_code == 200:
                        break
                await asyncio.sleep(0.1)
    return stack


async def stop_stack(stack: Stack, tag: str) -> None:
    for proc in stack.servers:
        proc.terminate()
    for proc in stack.servers:
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
    admin = await asyncpg.connect(PG_ADMIN)
    await admin.execute(f'DROP DATABASE IF EXISTS "{tag}" WITH (FORCE)')
    await admin.close()
    from pymongo import AsyncMongoClient

    mongo = AsyncMongoClient(stack.env["NUBO_MONGO_URL"])
    with contextlib.suppress(Exception):  # (a stand-in may lack dropDatabase)
        await mongo.drop_database(tag)
    await mongo.close()


async def sessions(stores, user_ids: list[int]) -> list[str]:
    from nubo_backend.auth.sessions import create_session
    from nubo_backend.auth.tokens import mint_access_token

    tokens = []
    for uid in user_ids:
        session = await create_session(stores.redis, stores.keys, uid, 7200, user_agent="bench")
        tokens.append(mint_access_token(stores.settings.jwt_secret, uid, session.session_id, 7200)[0])
    return tokens


async def bulk_users(pg: asyncpg.Pool, count: int, prefix: str) -> list[int]:
    rows = await pg.fetch(
        "INSERT INTO users (username, email, password_hash) SELECT $1 || n, $1 || n || '@bench.invalid', 'x' "
        "FROM generate_series(1, $2) AS n RETURNING id", prefix, count)
    return [r["id"] for r in rows]


async def ws(url: str, token: str) -> ClientConnection:
    sock = await connect(url.replace("http", "ws") + "/ws", additional_headers={"Authorization": f"Bearer {token}"},
                         open_timeout=30, max_queue=None)
    await asyncio.wait_for(sock.recv(), 30)  # ready
    return sock


async def run(args: argparse.Namespace) -> None:
    from nubo_backend.settings import load_settings
    from nubo_backend.stores import open_stores

    raise_fd_limit()
    tag = f"benchaud_{os.getpid()}"
    sizes = [int(s) for s in args.sizes.split(",")]
    progress(f"stack: database {tag}, two instances, {args.lanes} lane(s)")
    stack = await start_stack(args.mongo_url, tag, args.lanes)
    settings = load_settings({**os.environ, **stack.env})
    stores = await open_stores(settings, pool_size=4)
    sockets: list[ClientConnection] = []
    tasks: list[asyncio.Task] = []
    try:
        progress(f"{max(sizes):,} followers, {len(sizes)} authors, a group of {settings.group_max_members}")
        followers = await bulk_users(stores.pg, max(sizes), "follower")
        authors = await bulk_users(stores.pg, len(sizes) + 1, "author")
        alice, bob = await bulk_users(stores.pg, 2, "dmuser")
        for author, size in zip(authors, sizes, strict=False):
            # The connected followers follow last: the relay reaches them at the end of its walk,
            # so the time until they all have a post is the time to walk the whole audience.
            for part in (followers[args.connected:size], followers[:args.connected]):
                await stores.pg.execute("INSERT INTO follows (follower_id, followed_id) "
                                        "SELECT unnest($1::bigint[]), $2", part, author)
        owner = authors[-1]
        tokens = await sessions(stores, [alice, bob, owner, *followers[:args.connected]])
        alice_t, bob_t, owner_t, connected_t = tokens[0], tokens[1], tokens[2], tokens[3:]
        author_t = dict(zip(authors, await sessions(stores, authors), strict=True))
        a, b = stack.urls
        http = httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=100))
        direct = (await http.post(a + "/conversations", json={"user_id": bob},
                                  headers={"Authorization": f"Bearer {alice_t}"})).json()["id"]
        members = followers[: settings.group_max_members - 1]
        group = (await http.post(a + "/conversations", json={"title": "full", "member_ids": members[:256]},
                                 headers={"Authorization": f"Bearer {owner_t}"})).json()["id"]
        for start in range(256, len(members), 256):
            added = await http.post(f"{a}/conversations/{group}/members", json={"user_ids": members[start:start + 256]},
                                    headers={"Authorization": f"Bearer {owner_t}"})
            added.raise_for_status()

        progress(f"{args.connected} follower sockets (half on A, half on B) and Bob's on B")
        bob_ws = await ws(b, bob_t)
        for n, token in enumerate(connected_t):
            sockets.append(await ws(stack.urls[n % 2], token))
        await asyncio.sleep(2)  # presence written, catch-ups done

        dms = Dms()
        arrivals: dict[int, list[float]] = {}  # post id or message body hash -> arrival times
        wanted: dict[object, int] = {}

        async def read_bob() -> None:
            async for raw in bob_ws:
                frame = orjson.loads(raw)
                if frame.get("type") == "message.created":
                    began = dms.sent.pop(frame["data"].get("body") or "", None)
                    if began is not None:
                        dms.done.append((began, time.perf_counter() - began))

        async def read_follower(sock: ClientConnection) -> None:
            async for raw in sock:
                frame = orjson.loads(raw)
                kind = frame.get("type")
                if kind == "post.created":
                    arrivals.setdefault(frame["data"]["post"]["id"], []).append(time.perf_counter())
                elif kind == "message.created" and frame["data"].get("conversation_id") == group:
                    arrivals.setdefault(frame["data"]["body"], []).append(time.perf_counter())

        tasks.append(asyncio.create_task(read_bob()))
        tasks += [asyncio.create_task(read_follower(s)) for s in sockets]
        counter = iter(range(10**9))

        async def send_dms(stop: asyncio.Event) -> None:
            interval = 1 / args.dm_rate
            next_at = time.perf_counter()
            pending = set()

            async def one() -> None:
                body = f"dm-{next(counter)}"
                dms.sent[body] = time.perf_counter()
                response = await http.post(f"{a}/conversations/{direct}/messages", json={"body": body},
                                           headers={"Authorization": f"Bearer {alice_t}"})
                if response.status_code == 201:
                    dms.acked += 1

            while not stop.is_set():
                task = asyncio.create_task(one())
                pending.add(task)
                task.add_done_callback(pending.discard)
                next_at += interval
                await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
            await asyncio.gather(*pending, return_exceptions=True)

        async def backlog_sampler(stop: asyncio.Event, samples: list[tuple[int, float]]) -> None:
            while not stop.is_set():
                row = await stores.pg.fetchrow(
                    "SELECT count(*) AS n, coalesce(extract(epoch FROM now() - min(created_at)), 0) AS age FROM outbox")
                samples.append((row["n"], float(row["age"])))
                await asyncio.sleep(0.1)

        async def outbox_empty(within: float = 120) -> None:
            deadline = time.perf_counter() + within
            while time.perf_counter() < deadline:
                if not await stores.pg.fetchval("SELECT count(*) FROM outbox"):
                    return
                await asyncio.sleep(0.05)

        async def phase(label: str, act) -> dict[str, object]:
            stop, sampling = asyncio.Event(), asyncio.Event()
            samples: list[tuple[int, float]] = []
            sender = asyncio.create_task(send_dms(stop))
            await asyncio.sleep(QUIET)
            t_before = time.perf_counter()
            sampler = asyncio.create_task(backlog_sampler(sampling, samples))
            post_ms, reach = await act()
            await outbox_empty()
            t_during = time.perf_counter()
            sampling.set()
            await sampler
            await asyncio.sleep(QUIET)
            stop.set()
            await sender
            await asyncio.sleep(1)
            before = [lat for at, lat in dms.done if at < t_before]
            during = [lat for at, lat in dms.done if t_before <= at < t_during]
            after = [lat for at, lat in dms.done if at >= t_during]
            lost = len(dms.sent)
            dms.done.clear()
            dms.sent.clear()
            return {"label": label, "post": post_ms, "reach": reach, "before": before, "during": during,
                    "after": after, "backlog": max((n for n, _ in samples), default=0),
                    "age": max((age for _, age in samples), default=0.0), "undelivered": lost,
                    "during_s": t_during - t_before}

        async def reached(key: object, began: float) -> float:
            """ms until every connected follower had `key` (a post id, a group message's body)."""
            for _ in range(300):
                if len(arrivals.get(key, ())) >= len(sockets):
                    break
                await asyncio.sleep(0.05)
            got = arrivals.get(key, [])
            return (max(got) - began) * 1000 if len(got) >= len(sockets) else float("inf")

        def author_act(author: int, size: int):
            async def act() -> tuple[list[float], list[float]]:
                post_ms, reach = [], []
                for n in range(args.posts):
                    began = time.perf_counter()
                    response = await http.post(a + "/posts", json={"body": f"post {n} to {size}"},
                                               headers={"Authorization": f"Bearer {author_t[author]}"})
                    post_ms.append((time.perf_counter() - began) * 1000)
                    post_id = response.json()["id"]
                    wanted[post_id] = began
                    await asyncio.sleep(1)
                for post_id, began in list(wanted.items()):
                    reach.append(await reached(post_id, began))
                wanted.clear()
                return post_ms, reach
            return act

        def group_act():
            async def act() -> tuple[list[float], list[float]]:
                post_ms, reach, sent = [], [], {}
                for n in range(args.posts):
                    body = f"group message {n}"
                    began = time.perf_counter()
                    response = await http.post(f"{a}/conversations/{group}/messages", json={"body": body},
                                               headers={"Authorization": f"Bearer {owner_t}"})
                    response.raise_for_status()
                    post_ms.append((time.perf_counter() - began) * 1000)
                    sent[body] = began
                    await asyncio.sleep(1)
                for body, began in sent.items():
                    reach.append(await reached(body, began))
                return post_ms, reach
            return act

        results = []
        for author, size in zip(authors, sizes, strict=False):
            progress(f"author with {size:,} followers posts {args.posts} times")
            results.append(await phase(f"{size:,} followers", author_act(author, size)))
        progress(f"a message to a full group ({settings.group_max_members} members), {args.posts} times")
        results.append(await phase(f"group of {settings.group_max_members}", group_act()))
    finally:
        for task in tasks:
            task.cancel()
        for sock in sockets:
            with contextlib.suppress(Exception):
                await sock.close()
        await stores.close()
        await stop_stack(stack, tag)

    print(f"\n{args.lanes} lane(s), two instances, DMs at {args.dm_rate}/s, {args.connected} connected followers, "
          f"{args.posts} posts per size (ms)")
    print("| audience | author's POST p50 / p99 | DMs before p50 / p99 / max | DMs during p50 / p99 / max "
          "| DMs after p50 / p99 | during p99 / before p99 | all connected have it: median / max "
          "| max backlog rows / oldest age s | DMs not delivered |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        before, during, after = (sorted(x * 1000 for x in r[k]) for k in ("before", "during", "after"))
        ratio = pct(during, 0.99) / pct(before, 0.99) if before and during else float("nan")
        print(f"| {r['label']} | {pct(r['post'], .5):.0f} / {pct(r['post'], .99):.0f} "
              f"| {pct(before, .5):.0f} / {pct(before, .99):.0f} / {max(before, default=0):.0f} "
              f"| {pct(during, .5):.0f} / {pct(during, .99):.0f} / {max(during, default=0):.0f} "
              f"| {pct(after, .5):.0f} / {pct(after, .99):.0f} | {ratio:.2f} "
              f"| {statistics.median(r['reach']):.0f} / {max(r['reach']):.0f} "
              f"| {r['backlog']} / {r['age']:.2f} | {r['undelivered']} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mongo-url", default=os.environ.get("NUBO_MONGO_URL", "mongodb://127.0.0.1:27017"))
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--posts", type=int, default=5)
    parser.add_argument("--connected", type=int, default=200)
    parser.add_argument("--lanes", type=int, default=4)
    parser.add_argument("--dm-rate", type=float, default=50)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
