"""./scripts/dev on a fresh checkout, as CI runs it: its own virtualenv, the database created,
the MongoDB stand-in started, then a server that is ready, signs up and speaks WebSocket."""

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
from websockets.asyncio.client import connect

from tests.conftest import RUN_ID, _dsn_for
from tests.databases import drop_database, private_name
from tests.support import ROOT, free_port, jongodb_binary, start_process

SETUP_WAIT_SECONDS = 600  # a fresh virtualenv installs the project first: over 300 s on a loaded 2-core machine


def _fresh_checkout(target: Path) -> None:
    """The files git would check out (tracked, plus new ones not ignored): no .venv, no .cache."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT, capture_output=True, check=True,
    ).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


async def test_dev_script_on_a_fresh_checkout_serves_signup_and_websocket(tmp_path, test_env) -> None:
    checkout = tmp_path / "nubo-backend"
    _fresh_checkout(checkout)
    database = private_name("dev")
    await drop_database(database)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NUBO_", "VIRTUAL_ENV", "PYTHON"))}
    env.update(
        NUBO_POSTGRES_DSN=_dsn_for(database),  # does not exist yet: the script creates it
        NUBO_REDIS_URL=test_env["NUBO_REDIS_URL"],
        NUBO_REDIS_NAMESPACE=f"dev{RUN_ID}",
        NUBO_MONGO_URL=f"mongodb://127.0.0.1:{free_port()}",  # nothing there: the stand-in starts
        NUBO_JONGODB_BIN=str(jongodb_binary()),  # already installed: no npm download per test run
    )
    log_path = tmp_path / "dev.log"
    with log_path.open("w") as log:
        proc = start_process(  # noqa: ASYNC220 - a long-lived child, polled, never waited on here
            ["./scripts/dev", "--port", str(port)], cwd=checkout, env=env,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        deadline = time.monotonic() + SETUP_WAIT_SECONDS
        while "token for user123: " not in log_path.read_text():
            assert proc.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            await asyncio.sleep(0.5)
        output = log_path.read_text()
        assert (checkout / ".venv/bin/nubo").exists()
        assert f"PostgreSQL: created database {database}" in output
        assert "started the tests' stand-in" in output
        token = output.split("token for user123: ")[1].split()[0]
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            assert (await client.get("/ready")).status_code == 200
            signup = await client.post(
                "/signup", json={"username": "newcomer", "email": "new@example.test", "password": "password123"}
            )
            assert signup.status_code == 201, signup.text
            me = await client.get("/me", headers={"Authorization": f"Bearer {token}"})
            assert me.json()["username"] == "user123"
        new_token = signup.json()["access_token"]
        async with connect(
            f"ws://127.0.0.1:{port}/ws", additional_headers={"Authorization": f"Bearer {new_token}"}
        ) as ws:
            assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "ready"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C, as in the terminal
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # anything of ours still alive in the group
        except ProcessLookupError:
            pass
        await drop_database(database)


def test_dev_script_refuses_a_taken_port_before_starting_anything(test_env) -> None:
    # A stranger's server on the port would answer the script's readiness checks.
    with socket.socket() as stranger:
        stranger.bind(("127.0.0.1", 0))
        stranger.listen()
        port = stranger.getsockname()[1]
        env = {**os.environ, **test_env, "NUBO_HOST": "127.0.0.1"}
        result = subprocess.run(
            ["./scripts/dev", "--port", str(port)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
        )
    assert result.returncode == 78, result.stderr
    assert f"error: port {port} on 127.0.0.1 is already in use" in result.stderr
    assert "nothing was started" in result.stderr
    assert "ready" not in result.stdout and "token" not in result.stdout
    assert "MongoDB" not in result.stdout  # no stand-in started either
