"""WebSocket benchmark of nubo's /ws against a bare `websockets` broadcast server.

Starts real `nubo serve` instances (and bench/ws_baseline.py) with the stores of the current
configuration (NUBO_* variables or .env), creates throw-away users with sessions, then drives
them from several client processes (a lean asyncio WebSocket client, so the clients cost less
than the server they measure). Reports, as a markdown table:

  1. connections held by one instance and its memory per connection (RSS delta / connections);
  2. fan-out of one broadcast line to --fanout clients (p50/p99 send-to-receive, ms);
  3. cross-instance event latency: events emitted by another process at --rate per second to
     users connected on instance B, announce-call-to-receive p50/p99 (ms) through the outbox;
  4. the same fan-out on the bare websockets baseline, and the ratio.

Example: python bench/bench_ws.py --connections 10000 --fanout 5000 --rate 1000 --duration 10
Smoke:   python bench/bench_ws.py --connections 400 --fanout 300 --rate 200 --duration 3
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import multiprocessing as mp
import os
import random
import resource
import signal
import socket
import struct
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FANOUT_PREFIX = b"fanout "
MAX_IN_FLIGHT = 64  # concurrent emits of the event phase
TICK = 0.005  # seconds between bursts of due events
SOURCE_ADDRESSES = 4  # clients connect from 127.0.0.1 to 127.0.0.4

# -- a lean WebSocket client (asyncio Protocol): handshake, read unmasked frames, send masked ----


class Client(asyncio.Protocol):
    """One client connection. Records the latency of every bench frame it receives."""

    def __init__(self, path: str, host: str, token: str | None, sink: list[float], ready: asyncio.Future) -> None:
        self.path, self.host, self.token = path, host, token
        self.sink = sink
        self.ready = ready
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.upgraded = False
        self.expect_ready = token is not None  # nubo sends a `ready` frame first; the baseline does not

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        key = base64.b64encode(os.urandom(16)).decode()
        auth = f"Authorization: Bearer {self.token}\r\n" if self.token else ""
        transport.write(  # type: ignore[attr-defined]
            (
                f"GET {self.path} HTTP/1.1\r\nHost: {self.host}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{auth}\r\n"
            ).encode()
        )

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.upgraded:
            head, sep, rest = self.buffer.partition(b"\r\n\r\n")
            if not sep:
                return
            if not head.startswith(b"HTTP/1.1 101"):
                self._fail(head.split(b"\r\n", 1)[0].decode())
                return
            self.upgraded, self.buffer = True, rest
            if not self.expect_ready:
                self._set_ready()
        self._frames()

    def _frames(self) -> None:
        buf = self.buffer
        while len(buf) >= 2:
            opcode, size = buf[0] & 0x0F, buf[1] & 0x7F
            offset = 2
            if size == 126:
                if len(buf) < 4:
                    break
                size, offset = struct.unpack_from("!H", buf, 2)[0], 4
            elif size == 127:
                if len(buf) < 10:
                    break
                size, offset = struct.unpack_from("!Q", buf, 2)[0], 10
            if len(buf) < offset + size:
                break
            payload, buf = buf[offset:offset + size], buf[offset + size:]
            if opcode == 0x1:
                self._text(payload)
            elif opcode == 0x9:
                self._send(0xA, payload)  # pong, or the server's heartbeat closes us
            elif opcode == 0x8:
                self.transport.close()
        self.buffer = buf

    def _text(self, payload: bytes) -> None:
        now = time.monotonic()
        if payload.startswith(FANOUT_PREFIX):
            self.sink.append(now - float(payload[len(FANOUT_PREFIX):]))
        elif payload.startswith(b"{"):
            frame = orjson.loads(payload)
            if frame.get("type") == "ready":
                self._set_ready()
            elif frame.get("type") == "bench":
                self.sink.append(now - frame["data"]["t"])

    def _set_ready(self) -> None:
        if not self.ready.done():
            self.ready.set_result(True)

    def _fail(self, reason: str) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(reason))
        self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(str(exc or "closed")))

    def send_text(self, text: str) -> None:
        self._send(0x1, text.encode())

    def _send(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        size = len(payload)
        if size < 126:
            header = struct.pack("!BB", 0x80 | opcode, 0x80 | size)
        elif size < 65536:
            header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, size)
        else:
            header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, size)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.transport.write(header + mask + masked)


# -- client processes: commands from the driver over a pipe ------------------------------------


def client_process(pipe: Any) -> None:
    raise_fd_limit()
    asyncio.run(_client_main(pipe))


async def _client_main(pipe: Any) -> None:
    loop = asyncio.get_running_loop()
    clients: list[Client] = []
    sink: list[float] = []
    while True:
        command, *args = await loop.run_in_executor(None, pipe.recv)
        if command == "connect":
            port, path, tokens, parallel = args
            ok = await _connect_all(port, path, tokens, parallel, sink, clients)
            pipe.send(ok)
        elif command == "send":
            clients[0].send_text(f"{FANOUT_PREFIX.decode()}{time.monotonic()!r}")
            pipe.send(True)
        elif command == "noop":
            pipe.send(True)
        elif command == "alive":
            pipe.send(sum(1 for c in clients if c.transport is not None and not c.transport.is_closing()))
        elif command == "collect":
            pipe.send(list(sink))
            sink.clear()
        elif command == "close":
            for client in clients:
                if client.transport is not None:
                    client.transport.close()
            clients.clear()
            await asyncio.sleep(0.2)
            pipe.send(True)
        elif command == "exit":
            return


async def _connect_all(
    port: int, path: str, tokens: list[str | None], parallel: int, sink: list[float], clients: list[Client]
) -> int:
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(parallel)

    async def one(token: str | None) -> bool:
        reason = ""
        for attempt in range(5):
            async with gate:
                ready = loop.create_future()
                try:
                    _, client = await loop.create_connection(
                        lambda ready=ready: Client(path, f"127.0.0.1:{port}", token, sink, ready), "127.0.0.1", port,
                        # several source addresses: 20,000 sockets from one would take most of its ports
                        local_addr=(f"127.0.0.{1 + len(clients) % SOURCE_ADDRESSES}", 0),
                    )
                    await asyncio.wait_for(ready, 30)
                    clients.append(client)
                    return True
                except (OSError, TimeoutError, ConnectionError) as exc:
                    reason = type(exc).__name__ + (f" {exc.errno}" if isinstance(exc, OSError) and exc.errno else "")
                    await asyncio.sleep(0.2 * (attempt + 1))
        failures[reason] = failures.get(reason, 0) + 1
        return False

    failures: dict[str, int] = {}
    results = await asyncio.gather(*(one(t) for t in tokens))
    if failures:
        print(f"  client {os.getpid()}: connects given up after 5 attempts, last error: {failures}", file=sys.stderr)
    return sum(results)


@dataclass
class Pool:
    """The client processes; connections are spread evenly over them."""

    size: int
    procs: list[Any] = field(default_factory=list)
    pipes: list[Any] = field(default_factory=list)

    def start(self) -> Pool:
        ctx = mp.get_context("spawn")
        for _ in range(self.size):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=client_process, args=(child,), daemon=True)
            proc.start()
            self.procs.append(proc)
            self.pipes.append(parent)
        return self

    def ask(self, per_process: list[tuple]) -> list[Any]:
        for pipe, command in zip(self.pipes, per_process, strict=True):
            pipe.send(command)
        return [pipe.recv() for pipe in self.pipes]

    def everyone(self, *command: Any) -> list[Any]:
        return self.ask([command] * self.size)

    def connect(self, port: int, path: str, tokens: list[str | None], parallel: int = 32) -> int:
        shares = [tokens[i::self.size] for i in range(self.size)]
        return sum(self.ask([("connect", port, path, share, parallel) for share in shares]))

    def latencies(self) -> list[float]:
        return [x for chunk in self.everyone("collect") for x in chunk]

    def stop(self) -> None:
        for pipe in self.pipes:
            try:
                pipe.send(("exit",))
            except OSError:
                pass
        for proc in self.procs:
            proc.join(timeout=5)


# -- servers --------------------------------------------------------------------------------------


FD_WANTED = 65536  # 20,000 sockets on each side, and the servers started from here inherit it


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:  # above the hard limit only as root (CAP_SYS_RESOURCE)
        if hard < FD_WANTED:
            resource.setrlimit(resource.RLIMIT_NOFILE, (FD_WANTED, FD_WANTED))
            return
    except (ValueError, OSError):
        pass
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(cmd: list[str], port: int, env: dict[str, str], ready_path: str | None = "/ping") -> subprocess.Popen:
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if ready_path:
                httpx.get(f"http://127.0.0.1:{port}{ready_path}", timeout=0.5).raise_for_status()
            else:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc
        except (httpx.HTTPError, OSError):
            if proc.poll() is not None:
                raise RuntimeError(f"{cmd} exited with {proc.returncode}") from None
            time.sleep(0.2)
    proc.kill()  # never leave it behind
    raise TimeoutError(f"{cmd} not ready")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def nubo(port: int) -> subprocess.Popen:
    # Measures the broadcast path itself: its abuse limits (#26) off.
    env = {"NUBO_WS_IDLE_TIMEOUT": "3600", "NUBO_LOG_LEVEL": "WARNING", "NUBO_WORKERS": "1",
           "NUBO_BROADCAST_MAX_CHARS": "1048576", "NUBO_BROADCAST_PER_USER": "0", "NUBO_BROADCAST_GLOBAL": "0"}
    return start([sys.executable, "-m", "cli", "serve", "--port", str(port)], port, env)


# -- users ----------------------------------------------------------------------------------------


async def make_users(stores: Any, count: int, tag: str) -> list[tuple[int, str]]:
    """Throw-away users with live sessions: (user id, access token)."""
    from nubo_backend.auth.sessions import create_session
    from nubo_backend.auth.tokens import mint_access_token

    rows = await stores.pg.fetch(
        "INSERT INTO users (username, email, password_hash) "
        "SELECT $1 || n, $1 || n || '@bench.invalid', 'x' FROM generate_series(1, $2) AS n RETURNING id",
        tag, count,
    )
    users = []
    for row in rows:
        session = await create_session(stores.redis, stores.keys, row["id"], 3600, user_agent="bench")
        token, _ = mint_access_token(stores.settings.jwt_secret, row["id"], session.session_id, 3600)
        users.append((row["id"], token))
    return users


# -- the phases -----------------------------------------------------------------------------------


def fanout(pool: Pool, rounds: int, expected: int) -> tuple[list[float], float]:
    """Send `rounds` broadcast lines one after the other; latencies (s) and the delivered share."""
    pool.latencies()
    for _ in range(rounds):
        pool.ask([("send",)] + [("noop",)] * (pool.size - 1))
        time.sleep(0.5)
    got = pool.latencies()
    return got, len(got) / (rounds * expected)


async def event_latency(
    pool: Pool, send: Any, user_ids: list[int], rate: int, duration: float
) -> tuple[list[float], int, float]:
    """Call send(user_id, data) at `rate` per second for `duration` seconds, at most MAX_IN_FLIGHT
    at once (a backend that cannot keep up lowers the achieved rate); latencies (s) from the call
    to the receipt, how many were sent, and the rate achieved."""
    pool.latencies()
    in_flight = asyncio.Semaphore(MAX_IN_FLIGHT)
    tasks: set[asyncio.Task] = set()

    async def one(uid: int) -> None:
        try:
            await send(uid, {"t": time.monotonic()})
        finally:
            in_flight.release()

    begin = time.monotonic()
    n = 0
    while (elapsed := time.monotonic() - begin) < duration:
        for _ in range(int(elapsed * rate) - n):  # what is due by now, in ticks of TICK seconds
            await in_flight.acquire()
            task = asyncio.create_task(one(random.choice(user_ids)))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            n += 1
        await asyncio.sleep(TICK)
    achieved = n / (time.monotonic() - begin)
    if tasks:
        await asyncio.wait(tasks, timeout=30)
    await asyncio.sleep(0.5)
    return pool.latencies(), n, achieved


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def run(args: argparse.Namespace) -> list[tuple[str, str, str]]:
    from nubo_backend.settings import load_settings
    from nubo_backend.stores import open_stores

    settings = load_settings()
    stores = await open_stores(settings)
    tag = f"bench{os.getpid()}_"
    rows: list[tuple[str, str, str]] = []
    pool = Pool(args.concurrency).start()
    servers: list[subprocess.Popen] = []
    try:
        progress("creating users")
        users = await make_users(stores, max(args.connections, args.event_users), tag)
        tokens = [t for _, t in users]
        port_a, port_b = free_port(), free_port()
        a = nubo(port_a)
        servers.append(a)
        await asyncio.sleep(1)
        before = rss_kib(a.pid)

        # 2. fan-out to --fanout clients (connected first, then the rest for the hold phase)
        progress(f"connecting {args.fanout} clients to instance A")
        held = pool.connect(port_a, "/ws", tokens[: args.fanout])
        progress(f"{held} connected; fan-out")
        got, share = fanout(pool, args.rounds, held)
        rows.append((f"fan-out of one broadcast to {held} clients (nubo)",
                     f"p50 {pct(got, .5):.1f} ms, p99 {pct(got, .99):.1f} ms", f"delivered {share:.1%}"))
        nubo_p99 = pct(got, .99)

        # 1. connections held and memory per connection
        progress("connecting the rest")
        held += pool.connect(port_a, "/ws", tokens[args.fanout: args.connections])
        progress(f"{held} connected")
        await asyncio.sleep(2)
        after = rss_kib(a.pid)
        per_conn = (after - before) / max(held, 1)
        rows.insert(0, (f"connections held by one instance (asked {args.connections})", str(held),
                        f"RSS {before / 1024:.0f} → {after / 1024:.0f} MiB, {per_conn:.1f} KiB/connection"))
        pool.everyone("close")

        # 3. cross-instance events: sent from this process, received on instance B
        from nubo_backend.outbox import Event, announce
        from nubo_backend.realtime.events import publish_transient

        async def announce_one(uid: int, data: dict) -> None:
            async with stores.pg.acquire() as conn, conn.transaction():
                await announce(conn, stores, Event([uid], "bench", data))

        b = nubo(port_b)
        servers.append(b)
        receivers = users[: args.event_users]
        pool.connect(port_b, "/ws", [t for _, t in receivers])
        ids = [u for u, _ in receivers]
        phases = [
            ("event delivery (Redis publish → client on B)",
             lambda uid, data: publish_transient(stores, [uid], "bench", data)),
            ("event end to end (outbox commit → relay: MongoDB journal + publish → client on B)",
             announce_one),
        ]
        for name, send in phases:
            progress(name)
            got, sent, achieved = await event_latency(pool, send, ids, args.rate, args.duration)
            rows.append((f"{name}, {args.rate}/s asked to {len(ids)} users",
                         f"p50 {pct(got, .5):.2f} ms, p99 {pct(got, .99):.2f} ms",
                         f"{len(got)}/{sent} delivered, {achieved:.0f}/s achieved"))
        pool.everyone("close")

        # 4. the bare websockets baseline, same clients, same fan-out
        port_c = free_port()
        baseline = start([sys.executable, str(ROOT / "bench/ws_baseline.py"), str(port_c)], port_c, {}, None)
        servers.append(baseline)
        progress("baseline")
        held = pool.connect(port_c, "/", [None] * args.fanout)
        got, share = fanout(pool, args.rounds, held)
        base_p99 = pct(got, .99)
        rows.append((f"fan-out to {held} clients, bare websockets baseline",
                     f"p50 {pct(got, .5):.1f} ms, p99 {base_p99:.1f} ms",
                     f"delivered {share:.1%}; nubo/baseline p99 = {nubo_p99 / base_p99:.2f}×"))
        pool.everyone("close")
    finally:
        pool.stop()
        for proc in servers:
            stop(proc)
        ids = [row["id"] for row in await stores.pg.fetch("SELECT id FROM users WHERE username LIKE $1", f"{tag}%")]
        for collection in ("events", "broadcasts"):  # the journal of throw-away users goes too
            await stores.mongo[collection].delete_many({"user_id": {"$in": ids}})
        await stores.pg.execute("DELETE FROM users WHERE username LIKE $1", f"{tag}%")
        await stores.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connections", type=int, default=10_000, help="connections held by one instance")
    parser.add_argument("--fanout", type=int, default=5_000, help="clients receiving each broadcast")
    parser.add_argument("--rounds", type=int, default=20, help="broadcast lines sent for the fan-out figure")
    parser.add_argument("--rate", type=int, default=1_000, help="events per second for the latency figure")
    parser.add_argument("--event-users", type=int, default=200, help="users receiving those events")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of events for the latency figure")
    parser.add_argument("--concurrency", type=int, default=4, help="client processes")
    args = parser.parse_args()
    args.fanout = min(args.fanout, args.connections)
    raise_fd_limit()
    rows = asyncio.run(run(args))
    print(f"\n| WebSocket ({os.cpu_count()} cores, {args.concurrency} client processes) | result | notes |")
    print("|---|---|---|")
    for name, value, note in rows:
        print(f"| {name} | {value} | {note} |")


if __name__ == "__main__":
    main()
