"""The Python half of ./scripts/dev: check the stores, start what is missing, migrate, serve.

Every setting comes from where the server reads it (NUBO_* > .env > config/), so what this
prints (URLs, token) is what the server accepts.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
from dotenv import dotenv_values
from mailcatcher import DevMailCatcher  # scripts/mailcatcher.py, beside this file
from pymongo import AsyncMongoClient
from redis.asyncio import Redis

from nubo_backend.serving.binding import BindError, bind_listener
from nubo_backend.serving.children import spawn
from nubo_backend.serving.preflight import EXIT_CANNOT_START
from nubo_backend.settings import SettingsError, load_settings, mask_url

ROOT = Path(__file__).resolve().parent.parent
READY_WAIT_SECONDS = 60


def say(line: str) -> None:
    print(line, flush=True)


def give_up(line: str, code: int = 1) -> None:
    print(f"error: {line}", file=sys.stderr, flush=True)
    raise SystemExit(code)


def check_ports_free(host: str, ports: list[int]) -> None:
    """Before anything starts: a port someone else holds would answer our readiness checks."""
    for port in ports:
        try:
            bind_listener(host, port).close()
        except BindError as exc:
            give_up(f"{exc}; nothing was started", EXIT_CANNOT_START)


async def ensure_database(dsn: str) -> None:
    """Connect; create the database when the server answers that it does not exist."""
    try:
        conn = await asyncpg.connect(dsn, timeout=5)
    except asyncpg.InvalidCatalogNameError:
        parts = urlsplit(dsn)
        name = parts.path.lstrip("/")
        admin = await asyncpg.connect(urlunsplit(parts._replace(path="/postgres")), timeout=5)
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        say(f"PostgreSQL: created database {name}")
        return
    except (OSError, asyncpg.CannotConnectNowError) as exc:
        give_up(
            f"PostgreSQL is not answering at {mask_url(dsn)} ({exc}): start it "
            "(`sudo service postgresql start`, or `docker run -d -p 5432:5432 -e POSTGRES_HOST_AUTH_METHOD=trust "
            "postgres:16`) or set NUBO_POSTGRES_DSN"
        )
    except asyncpg.PostgresError as exc:
        give_up(f"PostgreSQL at {mask_url(dsn)} refused us ({exc}): fix NUBO_POSTGRES_DSN")
    await conn.close()
    say(f"PostgreSQL: {mask_url(dsn)}")


async def check_redis(url: str) -> None:
    client = Redis.from_url(url, socket_connect_timeout=2)
    try:
        await client.ping()
    except Exception as exc:  # noqa: BLE001 - any failure: say what to start
        give_up(
            f"Redis is not answering at {mask_url(url)} ({exc}): start it (`sudo service redis-server start`, "
            "or `docker run -d -p 6379:6379 redis:7`) or set NUBO_REDIS_URL"
        )
    finally:
        await client.aclose()
    say(f"Redis: {mask_url(url)}")


async def mongo_version(url: str) -> str | None:
    """What answers at url: its buildInfo version (an emulator names itself there), or None."""
    client = AsyncMongoClient(url, serverSelectionTimeoutMS=1500)
    try:
        info = await client.admin.command("buildInfo")
        return str(info.get("version", "unknown version"))
    except Exception:  # noqa: BLE001 - no MongoDB there: the stand-in is started instead
        return None
    finally:
        await client.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_mongo_standin() -> tuple[subprocess.Popen[bytes], str]:
    binary = os.environ.get("NUBO_JONGODB_BIN", "")
    if not (binary and os.access(binary, os.X_OK)):
        give_up(
            "no MongoDB answers and its stand-in is not installed: start MongoDB, or unset NUBO_MONGO_URL "
            "so that ./scripts/dev installs the stand-in (needs npm)"
        )
    port = free_port()
    proc = spawn([binary, f"--port={port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            give_up(f"the MongoDB stand-in exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, f"mongodb://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.1)
    proc.kill()
    give_up("the MongoDB stand-in did not start within 30 s")
    raise AssertionError  # unreachable


def wait_ready(ports: list[int], serve: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + READY_WAIT_SECONDS
    for port in ports:
        while True:
            if serve.poll() is not None:
                give_up(f"the server exited with {serve.returncode} (its error is above)")
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/ready", timeout=10)
                if answer.status_code == 200:
                    pid = answer.json().get("instance", {}).get("pid")
                    if not _descends_from(pid, serve.pid):
                        give_up(f"port {port} is answered by another process (pid {pid}), not the server started here")
                    break
            except (httpx.TransportError, ValueError):
                pass
            if time.monotonic() > deadline:
                give_up(f"port {port} not ready after {READY_WAIT_SECONDS}s")
            time.sleep(0.2)


def _descends_from(pid: object, ancestor: int) -> bool:
    """Whether process `pid` is `ancestor` or one of its descendants (Linux's /proc; elsewhere
    taken on trust)."""
    if not Path("/proc/self/stat").exists():
        return True
    if not isinstance(pid, int):
        return False
    for _ in range(64):  # (a chain of parents is short; bounded all the same)
        if pid == ancestor:
            return True
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False
        pid = int(stat.rsplit(")", 1)[1].split()[1])  # the field after the state: the parent's pid
        if pid <= 1:
            return False
    return False


def set_in_environment_or_dotenv(var: str) -> bool:
    if os.environ.get(var):
        return True
    dotenv = Path(os.environ.get("NUBO_ENV_FILE", ".env"))
    return dotenv.is_file() and bool(dotenv_values(dotenv).get(var))


def own_names(env: dict[str, str]) -> list[str]:
    """On a machine others use too, the defaults (no Redis namespace, Mongo database `nubo`) would
    be shared with their servers and tests: unless set, this run's are named after the user."""
    user = re.sub(r"[^a-z0-9_]", "_", getpass.getuser().lower()) or "dev"
    chosen = []
    if not set_in_environment_or_dotenv("NUBO_REDIS_NAMESPACE"):
        env["NUBO_REDIS_NAMESPACE"] = f"dev-{user}:"
        chosen.append(f"Redis namespace {env['NUBO_REDIS_NAMESPACE']!r}")
    if not set_in_environment_or_dotenv("NUBO_MONGO_DB"):
        env["NUBO_MONGO_DB"] = f"nubo_dev_{user}"
        chosen.append(f"Mongo database {env['NUBO_MONGO_DB']!r}")
    return chosen


def public_url(host: str, port: int) -> str:
    """Where the links in mails lead: this run's first instance (unless NUBO_PUBLIC_URL says)."""
    return f"http://{'127.0.0.1' if host in ('0.0.0.0', '::', '') else host}:{port}"


def start_mail_catcher(settings_smtp_url: str, env: dict[str, str]) -> DevMailCatcher | None:
    """A catcher for the server's mails, unless NUBO_SMTP_URL already says where they go. It runs
    in this process (two threads), so it stops when this script stops, however it stops."""
    if settings_smtp_url:
        say(f"mail: sent to {mask_url(settings_smtp_url)} (NUBO_SMTP_URL)")
        return None
    catcher = DevMailCatcher(on_mail=lambda m: say(
        f"mail to {', '.join(m.to)}: {m.subject}  (read it: {catcher.http_url}/mails/{m.id})"))
    catcher.start()
    env["NUBO_SMTP_URL"] = catcher.smtp_url
    say(f"mail: caught at {catcher.smtp_url}, shown at {catcher.http_url} (set NUBO_SMTP_URL to send for real)")
    return catcher


def nubo(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cli", *args], cwd=ROOT, env=env, text=True, capture_output=True)


def main() -> int:
    parser = argparse.ArgumentParser(description="Run nubo locally without Docker.")
    parser.add_argument("--port", type=int, default=None, help="port of the first instance (default NUBO_PORT)")
    parser.add_argument("--instances", type=int, default=1, help="independent instances on consecutive ports")
    options = parser.parse_args()
    try:
        settings = load_settings()
        settings.check()
    except SettingsError as exc:
        give_up(str(exc))
    port = options.port or settings.port
    ports = [port + i for i in range(options.instances)]
    check_ports_free(settings.host, ports)
    env = dict(os.environ)
    chosen = own_names(env)

    asyncio.run(ensure_database(settings.postgres_dsn))
    asyncio.run(check_redis(settings.redis_url))
    if chosen:
        say(f"using {' and '.join(chosen)} (set NUBO_REDIS_NAMESPACE / NUBO_MONGO_DB to choose; "
            "`nubo token` needs the same)")
    standin = None
    version = asyncio.run(mongo_version(settings.mongo_url))
    if version is not None and "jongodb" in version:
        say(
            f"MongoDB: {mask_url(settings.mongo_url)} answers, but it is an emulator ({version}), not a real "
            "MongoDB: someone else's, most likely (the tests'); using it. Its data lives in its memory, it "
            "enforces no TTL expiry: set NUBO_MONGO_URL to a real MongoDB to keep events."
        )
    elif version is not None:
        say(f"MongoDB: {mask_url(settings.mongo_url)} (MongoDB {version})")
    else:
        standin, url = start_mongo_standin()
        env["NUBO_MONGO_URL"] = url
        say(
            f"MongoDB: none at {mask_url(settings.mongo_url)}; started the tests' stand-in (jongodb, a "
            f"wire-protocol emulator) at {url}. Its data lives in memory and is gone when this stops, "
            "it enforces no TTL expiry and slows down as it fills: set NUBO_MONGO_URL to a real MongoDB to keep events."
        )
    if not set_in_environment_or_dotenv("NUBO_PUBLIC_URL"):
        env["NUBO_PUBLIC_URL"] = public_url(settings.host, port)
    serve = None
    catcher = None
    try:
        catcher = start_mail_catcher(settings.smtp_url, env)
        migrated = nubo("migrate", env=env)
        if migrated.returncode != 0:
            give_up(migrated.stderr.strip().removeprefix("error: "))
        say(next(line for line in migrated.stdout.splitlines() if line.startswith("PostgreSQL:")))
        serve = spawn(
            [sys.executable, "-m", "cli", "serve", "--port", str(port), "--instances", str(options.instances)],
            cwd=ROOT,
            env=env,
        )
        signal.signal(signal.SIGTERM, lambda *_: serve.send_signal(signal.SIGTERM))
        wait_ready(ports, serve)
        minted = nubo("token", "user123", "--create", env=env)
        if minted.returncode != 0:
            give_up(minted.stderr.strip().removeprefix("error: "))
        token = minted.stdout.strip()
        if serve.poll() is not None:  # what answered was not ours
            give_up(f"the server exited with {serve.returncode} (its error is above)")
        say("")
        for p in ports:
            say(
                f"ready: http://{settings.host}:{p}  (docs http://{settings.host}:{p}/docs, "
                f"WebSocket ws://{settings.host}:{p}/ws)"
            )
        say(f"token for user123: {token}")
        say(f"export TOKEN={token}")
        say(f'try: curl -H "Authorization: Bearer $TOKEN" http://{settings.host}:{port}/me')
        if catcher is not None:
            say(f"mails sent (verification and reset links): {catcher.http_url}")
        say("stop: Ctrl-C")
        serve.wait()
        return serve.returncode
    except KeyboardInterrupt:
        if serve is not None:
            serve.send_signal(signal.SIGINT)
            serve.wait(timeout=settings.shutdown_grace + 15)
        return 0
    finally:
        try:
            if serve is not None and serve.poll() is None:
                serve.terminate()
                serve.wait(timeout=settings.shutdown_grace + 15)
            if standin is not None:
                standin.terminate()  # the pid started above, nothing else
                standin.wait(timeout=10)
        finally:
            if catcher is not None:  # last: the server may still deliver as it stops
                catcher.stop()


if __name__ == "__main__":
    raise SystemExit(main())
