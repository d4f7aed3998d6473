"""HTTP benchmark of the REST reads and writes against /ping, in one run, with wrk.

    python bench/bench_http.py [--url http://127.0.0.1:8080] [--duration 10] [--concurrency 64]

Without --url it migrates the configured database and starts one `nubo serve` instance
(settings from NUBO_* / .env / config, as usual); with --url the instance must use the same
settings (database, Redis namespace, JWT secret) as this process, since users and their
tokens are created directly in the stores. It then seeds users, follows and posts, warms the
cache, and runs wrk (keep-alive, `--concurrency` connections) on each endpoint in turn:
GET /ping (the baseline), GET /posts (first page, anonymous and authenticated), GET /feed,
GET /posts/{id} (anonymous and authenticated), search and tag pages, then POST /posts. Prints a markdown table
with requests/s, each as % of /ping, and p50/p99 latency. `--only "signed in"` runs a subset
(always with the /ping baseline).

`--redis` adds what each request cost Redis, from `INFO` read before and after each endpoint
(read-only, so a shared Redis may be used; a plain Redis, not a cluster): Redis's CPU per
request, and the time its commands ran per request, with the costliest command by name (a Lua
script's own run is in its EVALSHA). Other traffic on that Redis during the run counts too.

`--minimal` adds bench/minimal_sanic.py's /ping to every round (the issue's baseline);
`--compare DIR` also starts `nubo serve` from another checkout DIR (same settings and stores,
port NUBO_BENCH_COMPARE_PORT, default 18085) and runs every GET endpoint against it too, in
the same rounds: an A/B of two versions of the code side by side. Rounds alternate the order
of the endpoints (forward, then backward), so the drift of a shared machine falls on each alike.

Every process the bench starts (the servers, wrk) dies with it, even when the bench is killed
with -9 (`serving/children.spawn`: the kernel sends them SIGTERM when the bench goes).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from nubo_backend.auth.sessions import create_session  # noqa: E402
from nubo_backend.auth.tokens import mint_access_token  # noqa: E402
from nubo_backend.posts.service import feed_key, profile_key, public_page_key, recent_key  # noqa: E402
from nubo_backend.serving.children import spawn  # noqa: E402
from nubo_backend.settings import Settings, load_settings  # noqa: E402
from nubo_backend.stores import Stores, open_stores  # noqa: E402
from nubo_backend.stores.cache import invalidate  # noqa: E402
from nubo_backend.stores.migrations import migrate  # noqa: E402

LUA = """
local spec = {spec}
local requests, n = {{}}, 0
function init(args)
  for i = 1, #spec.paths * math.max(#spec.tokens, 1) do
    local headers = {{}}
    if #spec.tokens > 0 then headers["Authorization"] = "Bearer " .. spec.tokens[(i % #spec.tokens) + 1] end
    if spec.body then headers["Content-Type"] = "application/json" end
    requests[i] = wrk.format(spec.method, spec.paths[(i % #spec.paths) + 1], headers, spec.body)
  end
end
function request()
  n = n + 1
  return requests[(n % #requests) + 1]
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d %d %d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), e.status, e.connect + e.read + e.write + e.timeout))
end
"""


@dataclass
class Case:
    name: str
    paths: list[str]
    tokens: list[str] = field(default_factory=list)
    method: str = "GET"
    body: str | None = None
    url: str | None = None  # another server than the one under test (minimal Sanic, a --compare checkout)
    pid: int | None = None  # that server's process, for its CPU column


@dataclass
class Result:
    case: Case
    rps: float
    p50_ms: float
    p99_ms: float
    bad_status: int
    socket_errors: int
    cpu_us: float | None = None  # server CPU time per request (user + system)
    redis: RedisCost | None = None


@dataclass
class RedisCost:
    """What one request cost Redis: its CPU, and the time its commands ran (µs per request)."""

    cpu_us: float
    command_us: float
    top: str  # the command that took the most of that time, with its µs per call


class RedisMeter:
    """Deltas of Redis's `INFO cpu` and `INFO commandstats` around a phase (read-only)."""

    def __init__(self, url: str) -> None:
        import redis

        self.client = redis.Redis.from_url(url)

    def snapshot(self) -> tuple[float, dict[str, tuple[int, int]]]:
        cpu = self.client.info("cpu")
        stats = self.client.info("commandstats")
        return (cpu["used_cpu_user"] + cpu["used_cpu_sys"],
                {name.removeprefix("cmdstat_"): (v["calls"], v["usec"]) for name, v in stats.items()})

    @staticmethod
    def cost(before: tuple[float, dict[str, tuple[int, int]]], after: tuple[float, dict[str, tuple[int, int]]],
             requests: int) -> RedisCost:
        spent = {}
        for name, (calls, usec) in after[1].items():
            was_calls, was_usec = before[1].get(name, (0, 0))
            if calls > was_calls:
                spent[name] = (calls - was_calls, usec - was_usec)
        spent.pop("info", None)  # our own snapshots
        top = max(spent.items(), key=lambda kv: kv[1][1], default=None)
        label = f"{top[0].upper()} {top[1][1] / top[1][0]:.1f} µs x{top[1][0] / requests:.1f}" if top else "-"
        return RedisCost(1e6 * (after[0] - before[0]) / requests,
                         sum(usec for _, usec in spent.values()) / requests, label)


def process_cpu_seconds(pid: int) -> float:
    """user + system CPU time of a process, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


MINIMAL = "minimal Sanic GET /ping (baseline)"


def start_minimal(port: int) -> subprocess.Popen:
    """bench/minimal_sanic.py: one handler, no middleware, no access log (the issue's baseline)."""
    proc = spawn([sys.executable, str(ROOT / "bench" / "minimal_sanic.py"), str(port)],
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=1).read()
            return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("the minimal Sanic app did not answer /ping within 20s")


def _lua_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _lua_spec(case: Case) -> str:
    paths = ", ".join(_lua_string(p) for p in case.paths)
    tokens = ", ".join(_lua_string(t) for t in case.tokens)
    body = _lua_string(case.body) if case.body else "nil"
    return f"{{method = {_lua_string(case.method)}, paths = {{{paths}}}, tokens = {{{tokens}}}, body = {body}}}"


def run_wrk(url: str, case: Case, args: argparse.Namespace, server_pid: int | None = None,
            meter: RedisMeter | None = None) -> Result:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(LUA.format(spec=_lua_spec(case)))
    server_pid = case.pid or server_pid
    cpu_before = process_cpu_seconds(server_pid) if server_pid else None
    redis_before = meter.snapshot() if meter else None
    try:
        wrk = spawn(["wrk", f"-t{args.threads}", f"-c{args.concurrency}", f"-d{args.duration}s", "-s", script.name,
                     case.url or url], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out, err = wrk.communicate()
        if wrk.returncode != 0:
            raise RuntimeError(f"wrk failed for {case.name} ({wrk.returncode}):\n{err}")
    finally:
        os.unlink(script.name)
    match = re.search(r"RESULT (\d+) (\d+) (\d+) (\d+) (\d+) (\d+)", out)
    if match is None:
        raise RuntimeError(f"wrk printed no result for {case.name}:\n{out}")
    requests, duration_us, p50, p99, bad, errors = map(int, match.groups())
    redis_cost = RedisMeter.cost(redis_before, meter.snapshot(), requests) if meter and requests else None
    cpu_us = None
    if server_pid and cpu_before is not None and requests:
        cpu_us = (process_cpu_seconds(server_pid) - cpu_before) / requests * 1e6
    return Result(case, requests / (duration_us / 1e6), p50 / 1000, p99 / 1000, bad, errors, cpu_us, redis_cost)


async def seed(stores: Stores, users: int, posts: int, follows: int) -> tuple[list[str], list[int]]:
    """Users with live sessions (tokens), a ring of follows, and posts spread over the users."""
    prefix = f"b{os.getpid() % 100000}_{int(time.time()) % 100000}_"
    ids = [r["id"] for r in await stores.pg.fetch(
        "INSERT INTO users (username, email, password_hash) "
        "SELECT $1 || n, $1 || n || '@bench.test', 'x' FROM generate_series(1, $2::int) n RETURNING id",
        prefix, users)]
    tokens = []
    for uid in ids:
        session = await create_session(stores.redis, stores.keys, uid, stores.settings.refresh_token_ttl,
                                       user_agent="bench")
        tokens.append(mint_access_token(stores.settings.jwt_secret, uid, session.session_id, 3600)[0])
    pairs = [(a, ids[(n + k) % len(ids)]) for n, a in enumerate(ids) for k in range(1, min(follows, users - 1) + 1)]
    await stores.pg.executemany("INSERT INTO follows (follower_id, followed_id) VALUES ($1, $2)", pairs)
    post_ids = [r["id"] for r in await stores.pg.fetch(
        "INSERT INTO posts (author_id, body) "
        "SELECT ($1::bigint[])[1 + n % cardinality($1::bigint[])], 'seeded post ' || n "
        "FROM generate_series(1, $2::int) n RETURNING id", ids, posts)]
    # A quarter of the posts tagged #bench (GET /tags/bench/posts, /tags/trending).
    await stores.pg.execute("INSERT INTO post_tags (tag, post_id, position) SELECT 'bench', id, 1 "
                            "FROM unnest($1::bigint[]) id WHERE id % 4 = 0", post_ids)
    await stores.pg.execute(
        """UPDATE users u SET
             posts_count = (SELECT count(*) FROM posts WHERE author_id = u.id),
             followers_count = (SELECT count(*) FROM follows WHERE followed_id = u.id),
             following_count = (SELECT count(*) FROM follows WHERE follower_id = u.id)
           WHERE u.id = ANY($1::bigint[])""", ids)
    # Rows written behind the service's back: drop what the cache may hold about them.
    await invalidate(stores, recent_key(stores), public_page_key(stores), *(feed_key(stores, u) for u in ids),
                     *(profile_key(stores, u) for u in ids))
    return tokens, post_ids[-50:]


def warm(url: str, cases: list[Case]) -> None:
    for case in cases:
        if case.method != "GET":
            continue
        for n, path in enumerate(case.paths):
            headers = {"Authorization": f"Bearer {case.tokens[n % len(case.tokens)]}"} if case.tokens else {}
            for _ in range(2):
                urllib.request.urlopen(urllib.request.Request(url + path, headers=headers), timeout=10).read()
        for token in case.tokens:  # every user's own feed page
            urllib.request.urlopen(urllib.request.Request(url + case.paths[0], headers={
                "Authorization": f"Bearer {token}"}), timeout=10).read()


def start_server(settings: Settings, checkout: Path = ROOT,
                 port_variable: str = "NUBO_BENCH_PORT", default_port: int = 18080) -> tuple[subprocess.Popen, str]:
    port = int(os.environ.get(port_variable, str(default_port)))
    # Measures what a request costs, many per account: the per-account budgets (#26) off.
    env = {**os.environ, "NUBO_WRITE_BUDGETS": "post=0/60,search=0/60"}
    proc = spawn([sys.executable, "-m", "cli", "serve", "--port", str(port)], cwd=checkout, env=env,
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url + "/ping", timeout=1).read()
            return proc, url
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError("the server exited; check the NUBO_* settings") from None
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("the server did not answer /ping within 30s")


def table(groups: list[list[list[Result]]], args: argparse.Namespace) -> str:
    """One row per endpoint: medians over the rounds, each % of /ping taken within its round.
    `groups`: the rounds of the reads, then those of the writes (each round starts with /ping)."""
    lines = [
        f"{args.concurrency} connections, {args.duration}s per endpoint and round, {args.rounds} round(s), "
        f"wrk -t{args.threads}, {os.cpu_count()} CPUs, one server process.",
        "",
        "| endpoint | req/s | % of /ping | % of minimal Sanic /ping | p50 ms | p99 ms | server CPU µs/req "
        "| non-2xx | socket errors |" + (" Redis CPU µs/req | Redis commands µs/req | costliest command |"
                                       if args.redis else ""),
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|" + ("---:|---:|---|" if args.redis else ""),
    ]

    def of_minimal(r: Result, results: list[Result]) -> float | None:
        base = next((x for x in results if x.case.name == MINIMAL), None)
        return None if base is None else 100 * r.rps / base.rps

    rows = [(rounds, n) for g, rounds in enumerate(groups) for n in range(len(rounds[0])) if g == 0 or n > 0]
    for rounds, n in rows:
        first = rounds[0][n]
        runs = [results[n] for results in rounds]
        share = statistics.median(100 * r.rps / results[0].rps for r, results in zip(runs, rounds, strict=True))
        cpus = [r.cpu_us for r in runs if r.cpu_us is not None]
        cpu = f"{statistics.median(cpus):.0f}" if cpus else "-"
        minimal = [m for r, results in zip(runs, rounds, strict=True) if (m := of_minimal(r, results)) is not None]
        vs_minimal = f"{statistics.median(minimal):.0f} %" if minimal else "-"
        lines.append(
            f"| {first.case.name} | {statistics.median(r.rps for r in runs):,.0f} | {share:.0f} % | {vs_minimal} "
            f"| {statistics.median(r.p50_ms for r in runs):.2f} | {statistics.median(r.p99_ms for r in runs):.2f} "
            f"| {cpu} | {sum(r.bad_status for r in runs)} | {sum(r.socket_errors for r in runs)} |"
            + (_redis_cells([r.redis for r in runs]) if args.redis else "")
        )
    return "\n".join(lines)


def _redis_cells(costs: list[RedisCost | None]) -> str:
    known = [c for c in costs if c is not None]
    if not known:
        return " - | - | - |"  # another server's phase (minimal Sanic) or no request
    mid = sorted(known, key=lambda c: c.command_us)[len(known) // 2]
    return (f" {statistics.median(c.cpu_us for c in known):.1f} | {statistics.median(c.command_us for c in known):.1f} "
            f"| {mid.top} |")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="a running instance (default: start one)")
    parser.add_argument("--duration", type=int, default=10, help="seconds per endpoint")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=1,
                        help="run every endpoint this many times in turn; report medians (for a noisy machine)")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (the server needs the other core)")
    parser.add_argument("--users", type=int, default=64)
    parser.add_argument("--posts", type=int, default=2000)
    parser.add_argument("--follows", type=int, default=10, help="accounts each seeded user follows")
    parser.add_argument("--pid", type=int, help="with --url: the server's process id, to report its CPU per request")
    parser.add_argument("--minimal", action="store_true",
                        help="also measure bench/minimal_sanic.py's /ping in every round (column: %% of it)")
    parser.add_argument("--compare", metavar="DIR", type=Path,
                        help="also serve another checkout and run every GET endpoint against it in each round")
    parser.add_argument("--only", action="append", default=[], metavar="TEXT",
                        help="run only the endpoints whose name contains TEXT (repeatable; /ping always runs)")
    parser.add_argument("--redis", action="store_true",
                        help="also report what each request cost Redis (INFO deltas; a plain Redis, not a cluster)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk not found: apt-get install -y wrk")

    settings = load_settings()
    proc = None
    if args.url is None:
        await migrate(settings.postgres_dsn)
        proc, url = start_server(settings)
    else:
        url = args.url.rstrip("/")
    stores = await open_stores(settings, pool_size=2)
    meter = RedisMeter(settings.redis_url) if args.redis else None
    minimal = other = None
    try:
        tokens, hot_posts = await seed(stores, args.users, args.posts, args.follows)
        post_paths = [f"/posts/{i}" for i in hot_posts]
        cases = [
            Case("GET /ping", ["/ping"]),
            Case("GET /posts (first page, anonymous)", ["/posts"]),
            Case("GET /posts (first page, signed in)", ["/posts"], tokens),
            Case("GET /feed (first page)", ["/feed"], tokens),
            Case("GET /posts/{id} (anonymous)", post_paths),
            Case("GET /posts/{id} (signed in)", post_paths, tokens),
            Case("GET /search/posts?q=seeded 1999 (anonymous)", ["/search/posts?q=seeded%201999"]),
            Case("GET /search/posts?q=seeded 1999 (signed in)", ["/search/posts?q=seeded%201999"], tokens),
            Case("GET /search/posts?q=post (every seeded post matches)", ["/search/posts?q=post"]),
            Case("GET /search/users?q=b1", ["/search/users?q=b1"]),
            Case("GET /tags/bench/posts (first page)", ["/tags/bench/posts"]),
            Case("GET /tags/trending (cached)", ["/tags/trending"]),
            Case("POST /posts", ["/posts"], tokens, "POST", '{"body": "benchmark post"}'),
        ]
        if args.only:
            cases = [c for n, c in enumerate(cases) if n == 0 or any(t in c.name for t in args.only)]
        if args.compare:
            other, other_url = start_server(settings, args.compare.resolve(), "NUBO_BENCH_COMPARE_PORT", 18085)
            label = f" [{args.compare}]"
            cases = [cases[0], Case(cases[0].name + label, cases[0].paths, url=other_url, pid=other.pid),
                     *(x for c in cases[1:] for x in (
                         (c, Case(c.name + label, c.paths, c.tokens, c.method, c.body, other_url, other.pid))
                         if c.method == "GET" else (c,)))]
        if args.minimal:
            port = int(os.environ.get("NUBO_BENCH_MINIMAL_PORT", "18090"))
            minimal = start_minimal(port)
            cases.insert(1, Case(MINIMAL, ["/ping"], url=f"http://127.0.0.1:{port}", pid=minimal.pid))
        warm(url, [c for c in cases if c.url is None])
        if other is not None:
            warm(other_url, [c for c in cases if c.url == other_url])
        # Reads first, then writes, each round opening with its own /ping: a write's fan-out
        # runs on in the background after its phase and would otherwise slow the next reads.
        ping, rest = cases[0], cases[1:]
        groups = []
        for group in ([ping, *(c for c in rest if c.method == "GET")], [ping, *(c for c in rest if c.method != "GET")]):
            if len(group) == 1:
                continue
            rounds = []
            for n in range(args.rounds):
                results = {}
                for case in group if n % 2 == 0 else group[::-1]:
                    results[case.name] = run_wrk(url, case, args, args.pid or (proc.pid if proc else None),
                                                 None if case.name == MINIMAL else meter)
                    print(f"  round {n + 1}: {case.name}: {results[case.name].rps:,.0f} req/s", file=sys.stderr)
                rounds.append([results[case.name] for case in group])
            groups.append(rounds)
        print(table(groups, args))
    finally:
        await stores.close()
        if minimal is not None:
            minimal.terminate()
            minimal.wait(timeout=10)
        for server in (other, proc):
            if server is None:
                continue
            server.terminate()  # it drains the writes' fan-out first, slow on the MongoDB emulator
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                server.kill()


if __name__ == "__main__":
    asyncio.run(main())
