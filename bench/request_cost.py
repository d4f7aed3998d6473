"""Server CPU per request, without sockets or a load generator: Sanic's own HTTP/1.1 protocol
fed through an in-memory transport, in one process, A/B between checkouts and the minimal app.

    python bench/request_cost.py --side minimal --side . [--side ../nubo-old] [--path /ping]
                                 [--rounds 20] [--requests 20000] [--connections 64]

Each `--side` is a worker process of its own: `minimal` is bench/minimal_sanic.py's app, any
other value a checkout whose `create_app` is served (cwd = that checkout, so it imports its own
`nubo_backend`; the stores of the current NUBO_* settings, as `nubo serve` would open them; for
`/posts` the database seeded by bench_http.py). A worker starts the app as `create_server` does
(`_startup`, the before/after_server_start listeners) on a port nobody connects to: it makes
`--connections` protocol objects (NuboProtocol, or Sanic's for the minimal app) on fake
transports, and keeps one keep-alive request in flight on each, the next sent when the answer
has been written, as wrk does. It reports `time.process_time()` per request over `--requests`
requests: the whole Python/uvloop path of a request (parse, route, handler, middleware,
response, access line) less the kernel's work on the client's socket, which is the same for
every side (a route's own store round trips, real ones, are counted). Rounds alternate the
order of the sides, so the drift of a shared machine falls on all alike; the figures are
medians and minimums over rounds. Each worker keeps at most 3 PostgreSQL connections.

`--callgrind DIR` counts instructions per request instead, with valgrind's callgrind
(`apt-get install valgrind`; instrumented only while the measured requests run, the dumps go
to DIR). Slow (a minute or two per side to start) but repeatable within 0.1 %, whatever else
the machine does: a change of 1 % shows, where the CPU times above drift by tens of per cent.
Time runs some 50 times slower under valgrind, so what happens once every so many seconds
happens 50 times as often per request: for signed-in requests, set NUBO_SESSION_MEMO_TTL=600
(the memo's 5 s is then about what it is at full speed).

A side `DIR+FILE` is an experiment: FILE defines `patch(app)`, called on the app before the
server starts (it may return a protocol class to serve with instead).

A side `DIR@tracing` serves with OpenTelemetry tracing on (observability/tracing.py): its
OTEL_EXPORTER_OTLP_ENDPOINT points at an OTLP/HTTP sink that this process runs (it answers
every export with 200 and keeps nothing), so the worker pays for its spans, their batching and
their export, as it would against a real collector, and the sink's own work is not counted.

`--signed-in` sends signed-in requests: before the workers start, this process seeds the
configured stores as bench_http.py does (`--users` users with live sessions and access tokens,
a ring of follows, 2,000 posts), and connection n sends user n's token (`n % --users`), so
each side pays for the token check, the session memo and the viewer's part of the page. A
`{post}` in `--path` (`--path '/posts/{post}'`) is replaced, per connection, by one of the 50
newest seeded posts (seeded then, signed in or not).

`--profile FILE` (with one side) writes a cProfile of one round instead (pstats format);
`--stderr FILE` keeps the workers' stderr (the access lines) instead of discarding it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

BENCH = Path(__file__).resolve().parent
WORKER_PG_POOL = 3


class FakeTransport(asyncio.Transport):
    """What Sanic's protocol asks of a socket transport; writes are counted, not sent."""

    def __init__(self, driver: Driver, n: int) -> None:
        super().__init__()
        self.driver = driver
        self.peer = ("127.0.0.1", 40000 + n)
        self.protocol: asyncio.Protocol | None = None
        self.closing = False

    def get_extra_info(self, name: str, default: object = None) -> object:
        return {"peername": self.peer, "sockname": ("127.0.0.1", 8080)}.get(name, default)

    def write(self, data: bytes) -> None:
        self.driver.written(self, data)

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True
        print(f"the server closed connection {self.peer[1] - 40000}: the run cannot finish", file=sys.stderr,
              flush=True)

    def abort(self) -> None:
        self.close()

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0

    def can_write_eof(self) -> bool:
        return False


_LENGTH = re.compile(rb"\r\ncontent-length: (\d+)", re.IGNORECASE)


class Driver:
    """One request in flight per connection; the next is received a loop iteration after the
    answer's last byte was written (as a socket read would be)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, requests: list[bytes]) -> None:
        self.loop = loop
        self.requests = requests  # connection n sends requests[n % len(requests)]
        self.request_of: dict[FakeTransport, bytes] = {}
        self.left = 0
        self.done: asyncio.Future[None] | None = None
        self.expect: dict[FakeTransport, int] = {}
        self.statuses: dict[bytes, int] = {}

    def written(self, transport: FakeTransport, data: bytes) -> None:
        left = self.expect.get(transport, 0)
        if left == 0:  # a new answer: its head (Sanic writes `content-length: N`), then N bytes
            data = bytes(data)
            end = data.find(b"\r\n\r\n") + 4
            status = data[9:12]
            self.statuses[status] = self.statuses.get(status, 0) + 1
            match = _LENGTH.search(data, 0, end)
            left = (int(match.group(1)) if match else 0) - (len(data) - end)
        else:
            left -= len(data)
        self.expect[transport] = left
        if left <= 0:
            self.expect[transport] = 0
            self.answered(transport)

    def answered(self, transport: FakeTransport) -> None:
        self.left -= 1
        if self.left >= 0:
            self.loop.call_soon(transport.protocol.data_received, self.request_of[transport])
        if self.left <= -self.connections and self.done is not None and not self.done.done():
            self.done.set_result(None)

    async def run(self, transports: list[FakeTransport], requests: int) -> None:
        """`requests` answers, counting from now, with every connection kept busy."""
        self.connections = len(transports)
        self.left = requests - len(transports)
        self.done = self.loop.create_future()
        for n, t in enumerate(transports):
            self.request_of[t] = self.requests[n % len(self.requests)]
            t.protocol.data_received(self.request_of[t])
        await self.done


def request_lines(path: str, headers: list[str]) -> bytes:
    return ("\r\n".join([f"GET {path} HTTP/1.1", "Host: 127.0.0.1:8080", *headers]) + "\r\n\r\n").encode()


async def serve(side: str, requests: list[bytes], connections: int) -> None:
    side, _, patch = side.partition("+")
    if side == "minimal":
        sys.path.insert(0, str(BENCH))
        import minimal_sanic

        app = minimal_sanic.app
        protocol = None
    else:
        sys.path.insert(0, str(Path.cwd()))
        import nubo_backend.app
        from nubo_backend.serving.http_protocol import NuboProtocol
        from nubo_backend.settings import load_settings

        # A few PostgreSQL connections per worker, not the server's 20: several sides run at once
        # against a PostgreSQL that others share, and a cached read queries nothing.
        open_stores = nubo_backend.app.open_stores
        nubo_backend.app.open_stores = lambda settings: open_stores(settings, pool_size=WORKER_PG_POOL)
        app = nubo_backend.app.create_app(load_settings())
        protocol = NuboProtocol
    # A side waits while the others are measured, minutes under callgrind: its idle keep-alive
    # connections must not be closed meanwhile (Sanic's default is 120 s).
    app.config.KEEP_ALIVE_TIMEOUT = 24 * 3600
    if patch:  # an experiment: a file defining patch(app), run before the server starts
        scope: dict = {}
        exec(compile(Path(patch).read_text(), patch, "exec"), scope)  # noqa: ASYNC240 - start-up
        protocol = scope["patch"](app) or protocol
    # Listens on a port of its own choosing (nobody connects): create_server binds when awaited.
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = await app.create_server(sock=sock, return_asyncio_server=True,
                                     **({"protocol": protocol} if protocol else {}))
    await server.startup()
    from sanic.application.constants import ServerStage
    from sanic.application.state import ApplicationServerInfo

    # Serving, as a worker's serve() records it (listeners may then name their tasks).
    app.state.server_info.append(ApplicationServerInfo(settings={}, stage=ServerStage.SERVING, server=server))
    await server.before_start()
    await server.after_start()
    from sanic.models.server_types import Signal
    from sanic.server.protocols.http_protocol import HttpProtocol
    from sanic.server.protocols.websocket_protocol import WebSocketProtocol
    from sanic.server.runners import _build_protocol_kwargs

    # create_server's default when the protocol is not given
    factory = protocol or (WebSocketProtocol if app.websocket_enabled else HttpProtocol)
    kwargs = _build_protocol_kwargs(factory, app.config)
    loop = asyncio.get_running_loop()
    driver = Driver(loop, requests)
    transports = []
    for n in range(connections):
        proto = factory(loop=loop, app=app, connections=set(), signal=Signal(),
                        state={"requests_count": 0}, unix=None, **kwargs)
        t = FakeTransport(driver, n)
        t.protocol = proto
        proto.connection_made(t)
        transports.append(t)
    await driver.run(transports, 2000)  # warm up (caches, the first page in Redis)
    print("ready", flush=True)
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        command = line.split()
        requests = int(command[1])
        if command[0] == "profile":
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
            await driver.run(transports, requests)
            profiler.disable()
            profiler.dump_stats(command[2])
            print("0 0", flush=True)
            continue
        driver.statuses.clear()
        cpu, wall = time.process_time(), time.perf_counter()
        await driver.run(transports, requests)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        bad = sum(n for status, n in driver.statuses.items() if not status.startswith(b"2"))
        if bad:
            print(f"non-2xx answers: {driver.statuses}", file=sys.stderr, flush=True)
        print(f"{cpu / requests * 1e6} {wall / requests * 1e6}", flush=True)


def instructions(worker: subprocess.Popen, requests: int, folder: str) -> float:
    """Thousands of instructions per request, counted by callgrind over one run (deterministic,
    whatever else the machine does: for changes of a few per cent)."""
    pid = str(worker.pid)

    def control(*options: str) -> None:
        subprocess.run(["callgrind_control", *options, pid], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)

    before = set(Path(folder).glob(f"callgrind.{pid}.out*"))
    control("-i", "on")
    worker.stdin.write(f"run {requests}\n")
    worker.stdin.flush()
    worker.stdout.readline()
    control("-d")
    control("-i", "off")
    for _ in range(100):
        dumps = set(Path(folder).glob(f"callgrind.{pid}.out*")) - before
        if dumps and "totals:" in (text := max(dumps, key=lambda p: p.stat().st_mtime).read_text()):
            return int(text.split("totals:")[1].split()[0]) / requests / 1000
        time.sleep(0.1)
    raise RuntimeError("callgrind wrote no dump")


async def seeded(users: int) -> tuple[list[str], list[int]]:
    """bench_http.py's users (with sessions and tokens), follows and posts, in the configured
    stores (this checkout's code): the tokens, and the 50 newest posts."""
    sys.path.insert(0, str(BENCH))
    from bench_http import seed

    from nubo_backend.settings import load_settings
    from nubo_backend.stores import open_stores

    stores = await open_stores(load_settings(), pool_size=2)
    try:
        return await seed(stores, users, 2000, 10)
    finally:
        await stores.close()


def requests_per_connection(args: argparse.Namespace) -> list[bytes]:
    """What each connection sends: the same request, or with --signed-in / `{post}` one per
    connection (its user's token, one of the hot posts)."""
    if not args.signed_in and "{post}" not in args.path:
        return [request_lines(args.path, args.header)]
    tokens, posts = asyncio.run(seeded(args.users))
    requests = []
    for n in range(args.connections):
        auth = [f"Authorization: Bearer {tokens[n % len(tokens)]}"] if args.signed_in else []
        requests.append(request_lines(args.path.replace("{post}", str(posts[n % len(posts)])),
                                      [*args.header, *auth]))
    return requests


TRACING = "@tracing"


def otlp_sink() -> ThreadingHTTPServer:
    """An OTLP/HTTP endpoint that accepts every export and keeps nothing, in a thread of this process."""

    class Accept(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Accept)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def compare(args: argparse.Namespace) -> None:
    # Here, not at the top: a worker must import its own checkout's nubo_backend, not this one.
    from nubo_backend.serving.children import spawn  # the workers die with this process, even on -9

    stderr = open(args.stderr, "a") if args.stderr else subprocess.DEVNULL  # noqa: SIM115
    spec = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)  # noqa: SIM115
    with spec:
        json.dump([r.decode() for r in requests_per_connection(args)], spec)
    workers = {}
    sink = otlp_sink() if any(side.endswith(TRACING) for side in args.side) else None
    for side in args.side:
        served, traced = (side[:-len(TRACING)], True) if side.endswith(TRACING) else (side, False)
        command = [sys.executable, str(Path(__file__).resolve()), "--worker", served, "--requests-file", spec.name,
                   "--connections", str(args.connections)]
        checkout, _, patch = served.partition("+")
        cwd = BENCH.parent if checkout == "minimal" else checkout
        if patch:
            command[command.index(served)] = f"{checkout}+{Path(patch).resolve()}"
        if args.callgrind:  # instrumented only when told (sys.executable must be the interpreter, not a wrapper script)
            command = ["valgrind", "--tool=callgrind", "--instr-atstart=no",
                       f"--callgrind-out-file={args.callgrind}/callgrind.%p.out",
                       *command]
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
        if traced:
            env["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://127.0.0.1:{sink.server_port}"
        workers[side] = spawn(command, cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=stderr, text=True, env=env)
    try:
        for side, proc in workers.items():
            if proc.stdout.readline().strip() != "ready":
                sys.exit(f"worker {side} did not start (run it with --stderr FILE to see why)")
        if args.profile:
            side = args.side[0]
            workers[side].stdin.write(f"profile {args.requests} {Path(args.profile).resolve()}\n")
            workers[side].stdin.flush()
            workers[side].stdout.readline()
            print(f"profile of {args.requests} requests to {side}: {args.profile}")
            return
        costs: dict[str, list[float]] = {side: [] for side in workers}
        for n in range(args.rounds):
            order = list(workers) if n % 2 == 0 else list(reversed(workers))
            for side in order:
                if args.callgrind:
                    costs[side].append(instructions(workers[side], args.requests, args.callgrind))
                    continue
                workers[side].stdin.write(f"run {args.requests}\n")
                workers[side].stdin.flush()
                costs[side].append(float(workers[side].stdout.readline().split()[0]))
            if args.verbose:
                print(f"round {n + 1}: " + ", ".join(f"{s} {costs[s][-1]:.1f}" for s in workers), file=sys.stderr)
    finally:
        for proc in workers.values():
            proc.stdin.close()
        for proc in workers.values():
            proc.wait()
        os.unlink(spec.name)
        if sink is not None:
            sink.shutdown()
    base = args.side[0]
    unit = "thousands of instructions (callgrind)" if args.callgrind else "CPU µs"
    signed = f", signed in ({args.users} users)" if args.signed_in else ""
    print(f"GET {args.path}{signed}: {args.rounds} rounds of {args.requests:,} requests on {args.connections} "
          f"connections per side, order alternating; {unit} per request\n")
    print(f"| side | median | min | vs {base} (median) |")
    print("|---|---:|---:|---:|")
    for side in workers:
        med = statistics.median(costs[side])
        ratio = med / statistics.median(costs[base])
        print(f"| {side} | {med:.1f} | {min(costs[side]):.1f} | {100 * ratio:.0f} % |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--side", action="append", default=[], help="'minimal' or a checkout (repeatable)")
    parser.add_argument("--path", default="/ping")
    parser.add_argument("--header", action="append", default=[], help="an extra request header line")
    parser.add_argument("--signed-in", action="store_true",
                        help="seeded users' access tokens, one user per connection (see above)")
    parser.add_argument("--users", type=int, default=64, help="with --signed-in: how many users to seed")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--requests", type=int, default=20000, help="requests per side and round")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--profile", help="cProfile one round of the first side into this file")
    parser.add_argument("--stderr", help="append the workers' stderr here (default: discarded)")
    parser.add_argument("--callgrind", metavar="DIR",
                        help="count instructions under valgrind's callgrind instead (dumps in DIR; slow)")
    parser.add_argument("--verbose", action="store_true", help="print every round")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--requests-file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        import uvloop

        requests = [r.encode() for r in json.loads(Path(args.requests_file).read_text())]
        uvloop.run(serve(args.worker, requests, args.connections))
    elif not args.side:
        parser.error("at least one --side")
    else:
        compare(args)


if __name__ == "__main__":
    main()
