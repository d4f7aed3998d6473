import os
import random
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from nubo_backend.auth.sessions import revoke_session, session_user
from nubo_backend.auth.tokens import decode_access_token
from nubo_backend.stores import Stores
from tests.factories import make_user
from tests.support import ROOT, free_port, start_process, wait_for_ping, wait_for_port


def nubo(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


async def test_token_for_a_username_is_accepted_by_the_server_verifier(test_env, stores: Stores) -> None:
    user = await make_user(stores, "user123")
    result = nubo(test_env, "token", "user123", "--ttl", "120")
    assert result.returncode == 0, result.stderr
    claims = decode_access_token(stores.settings.jwt_secret, result.stdout.strip())
    assert claims.user_id == user.id
    assert claims.expires_at - claims.issued_at == 120
    # Backed by a real session, so it is revocable like a login token.
    assert await session_user(stores.redis, stores.keys, claims.session_id) == user.id
    await revoke_session(stores.redis, stores.keys, user.id, claims.session_id)
    assert await session_user(stores.redis, stores.keys, claims.session_id) is None


async def test_token_accepts_a_numeric_id(test_env, stores: Stores) -> None:
    user = await make_user(stores)
    result = nubo(test_env, "token", str(user.id))
    assert result.returncode == 0, result.stderr
    assert decode_access_token(stores.settings.jwt_secret, result.stdout.strip()).user_id == user.id


async def test_token_refuses_a_user_that_does_not_exist(test_env, stores: Stores) -> None:
    result = nubo(test_env, "token", "ghost")
    assert result.returncode == 1
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1
    assert "no user 'ghost'" in result.stderr and "--create" in result.stderr


async def test_token_create_makes_a_test_account_that_can_log_in(test_env, stores: Stores, api) -> None:
    result = nubo(test_env, "token", "tester", "--create")
    assert result.returncode == 0, result.stderr
    password = result.stderr.split("password ", 1)[1].split()[0]
    login = await api.post("/login", json={"username": "tester", "password": password})
    assert login.status_code == 200, login.text


async def test_token_with_redis_down_says_so_in_one_line_and_creates_nothing(test_env, stores: Stores) -> None:
    env = {**test_env, "NUBO_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    result = nubo(env, "token", "nobody_yet", "--create")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Redis unreachable" in result.stderr and "NUBO_REDIS_URL" in result.stderr
    assert await stores.pg.fetchval("SELECT count(*) FROM users") == 0


async def test_token_in_production_lives_no_longer_than_a_logins_and_nothing_is_created(
        test_env, stores: Stores) -> None:
    # Issue #26, item 10: ten years worked.
    user = await make_user(stores)
    production = {**test_env, "NUBO_ENV": "production", "NUBO_JWT_SECRET": "p" * 40,
                  "NUBO_ACCESS_TOKEN_TTL": "900"}
    sessions = await stores.redis.scard(stores.keys("user_sessions", user.id))
    for ttl in ("315360000", "901"):
        refused = nubo(production, "token", str(user.id), "--ttl", ttl)
        assert (refused.returncode, refused.stdout) == (1, "")
        assert refused.stderr.strip() == (f"error: --ttl {ttl} refused in production: at most "
                                          "NUBO_ACCESS_TOKEN_TTL (900 s), as a login's token")
    created = nubo(production, "token", "newcomer", "--create", "--ttl", "999999")
    assert created.returncode == 1 and "refused in production" in created.stderr
    assert await stores.redis.scard(stores.keys("user_sessions", user.id)) == sessions
    assert await stores.pg.fetchval("SELECT count(*) FROM users") == 1
    allowed = nubo(production, "token", str(user.id), "--ttl", "900")
    assert allowed.returncode == 0, allowed.stderr
    claims = decode_access_token("p" * 40, allowed.stdout.strip())
    assert claims.expires_at - claims.issued_at == 900


def test_config_masks_the_secret(test_env) -> None:
    result = nubo({**test_env, "NUBO_JWT_SECRET": "a-very-secret-value"}, "config")
    assert result.returncode == 0
    assert "a-very-secret-value" not in result.stdout
    assert "jwt_secret" in result.stdout and "****" in result.stdout


def test_serve_refuses_production_without_secret(test_env) -> None:
    env = {**test_env, "NUBO_ENV": "production", "NUBO_JWT_SECRET": ""}
    result = nubo(env, "serve", "--port", str(free_port()))
    assert result.returncode != 0
    assert "NUBO_JWT_SECRET" in result.stderr


def test_serve_names_unreachable_store_and_exits(test_env) -> None:
    dead = free_port()
    env = {
        **test_env,
        "NUBO_POSTGRES_DSN": f"postgresql://nubo:pw@127.0.0.1:{dead}/nubo",
        "NUBO_STARTUP_TIMEOUT": "4",
    }
    result = nubo(env, "serve", "--port", str(free_port()))
    assert result.returncode == 1
    # Waited for (it may be starting), said once: not a line per attempt.
    waiting = [line for line in result.stderr.splitlines() if "not answering" in line]
    assert len(waiting) == 1 and "NUBO_STARTUP_TIMEOUT" in waiting[0], result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert "PostgreSQL unreachable" in last
    assert f"127.0.0.1:{dead}" in last
    assert "pw" not in last.replace("PostgreSQL", "")  # password masked


async def test_migrate_reports_and_creates_mongo_ttl_indexes(test_env, stores: Stores) -> None:
    result = nubo(test_env, "migrate")
    assert result.returncode == 0, result.stderr
    assert "PostgreSQL: up to date" in result.stdout
    for name in ("broadcasts", "events", "notifications"):
        info = await stores.mongo[name].index_information()
        assert info["ttl_created_at"]["expireAfterSeconds"] == 30 * 86400
    status = nubo(test_env, "migrate", "--status")
    assert "0001_users.sql" in status.stdout and "applied" in status.stdout


def _free_port_pair() -> int:
    """Two consecutive free ports, below the ephemeral range: the suite's many client sockets
    take their local ports from that range and could hold `port + 1` (EADDRINUSE)."""
    for port in random.sample(range(20000, 32000, 2), 200):
        try:
            with socket.socket() as first, socket.socket() as second:
                first.bind(("127.0.0.1", port))
                second.bind(("127.0.0.1", port + 1))
            return port
        except OSError:
            continue
    raise RuntimeError("no two consecutive free ports")


def test_serve_instances_starts_each_on_its_port_and_stops_all(test_env, session_stores, tmp_path) -> None:
    port = _free_port_pair()
    logs = tmp_path / "instances.log"  # the instances' own logs, shown when the stop overran
    with logs.open("w") as log_file:
        proc = start_process(
            [sys.executable, "-m", "cli", "serve", "--port", str(port), "--instances", "2"],
            cwd=ROOT,
            env={**os.environ, **test_env},
            stdout=subprocess.PIPE,
            stderr=log_file,
            text=True,
        )
    try:
        for p in (port, port + 1):
            wait_for_port(p, timeout=20, proc=proc)
            wait_for_ping(p)
        proc.send_signal(signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=25)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the instances did not stop in 25 s; their logs:\n{logs.read_text()[-6000:]}")
        assert proc.returncode == 0, logs.read_text()[-6000:]
        assert f":{port}" in out and f":{port + 1}" in out
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{port + 1}/ping")
    finally:
        if proc.poll() is None:
            proc.kill()


def test_serve_stops_on_ctrl_c_sent_as_soon_as_it_answers(test_env, session_stores) -> None:
    # The server answers while its start-up listeners still run; Sanic alone would lose a
    # stop asked for then and run on (NuboSanic.stop in serving/http_protocol.py).
    port = free_port()
    proc = start_process(
        [sys.executable, "-m", "cli", "serve", "--port", str(port)],
        cwd=ROOT,
        env={**os.environ, **test_env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None and time.monotonic() < deadline
            try:
                if httpx.get(f"http://127.0.0.1:{port}/ping", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
