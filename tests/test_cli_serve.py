"""`nubo serve` and `nubo migrate` at start-up: one line naming what is wrong, never a traceback."""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest

from tests.conftest import _dsn_for
from tests.databases import drop_database, empty_database, private_name
from tests.support import ROOT, ServerProcess, free_port, start_process, wait_for_ping, wait_for_port
from tests.test_cli import _free_port_pair, nubo


@pytest.fixture
async def never_migrated() -> AsyncIterator[str]:
    """A database of its own that no migration ever touched."""
    name = private_name("empty")
    yield await empty_database(name)
    await drop_database(name)



def _one_line(result: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_serve_out_of_range_port_is_one_line_naming_it(test_env, session_stores) -> None:
    result = nubo(test_env, "serve", "--port", "99999")
    assert result.returncode != 0
    assert "port 99999 is out of range" in _one_line(result)
    assert "listening" not in result.stderr


def test_serve_on_a_port_in_use_names_the_port_without_traceback(test_env, session_stores) -> None:
    holder = ServerProcess(test_env).start()
    try:
        result = nubo(test_env, "serve", "--port", str(holder.port))
        line = _one_line(result)
        assert f"port {holder.port} on 127.0.0.1 is already in use" in line
        assert "listening" not in result.stderr
    finally:
        holder.stop()


def test_serve_port_0_prints_the_port_it_bound(test_env, session_stores) -> None:
    proc = start_process(
        [sys.executable, "-m", "cli", "serve", "--port", "0"],
        cwd=ROOT, env={**os.environ, **test_env}, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
    )
    try:
        line = ""
        for _ in range(50):  # bounded: the line comes among the first of the start-up
            line = proc.stderr.readline()
            if "nubo listening on" in line:
                break
        assert "nubo listening on http://127.0.0.1:" in line, line
        port = int(line.split("127.0.0.1:")[1].split()[0])
        assert port != 0
        wait_for_port(port, proc=proc)
        assert httpx.get(f"http://127.0.0.1:{port}/ping", timeout=5).status_code == 200
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)


def test_serve_fails_at_once_naming_the_fix_when_the_database_does_not_exist(test_env) -> None:
    env = {**test_env, "NUBO_POSTGRES_DSN": _dsn_for("nubo_no_such_database"), "NUBO_STARTUP_TIMEOUT": "30"}
    started = time.monotonic()
    result = nubo(env, "serve", "--port", str(free_port()))
    assert time.monotonic() - started < 10  # not 30 s of retries of a permanent error
    line = _one_line(result)
    assert 'database "nubo_no_such_database" does not exist' in line
    assert "createdb" in line and "NUBO_POSTGRES_DSN" in line


def test_serve_fails_at_once_when_postgres_refuses_the_user(test_env) -> None:
    env = {**test_env, "NUBO_POSTGRES_DSN": "postgresql://no_such_role@127.0.0.1:5432/postgres"}
    started = time.monotonic()
    result = nubo(env, "serve", "--port", str(free_port()))
    assert time.monotonic() - started < 10
    assert "check the user and password in NUBO_POSTGRES_DSN" in _one_line(result)


def test_unreachable_mongodb_is_one_short_line(test_env) -> None:
    env = {**test_env, "NUBO_MONGO_URL": f"mongodb://127.0.0.1:{free_port()}", "NUBO_STARTUP_TIMEOUT": "1"}
    result = nubo(env, "serve", "--port", str(free_port()))
    line = _one_line(result)
    assert line.startswith("error: MongoDB unreachable")
    assert "Topology" not in result.stderr
    assert all(len(text) < 300 for text in result.stderr.splitlines())


async def test_serve_refuses_a_database_that_was_never_migrated(test_env, never_migrated) -> None:
    result = nubo({**test_env, "NUBO_POSTGRES_DSN": never_migrated}, "serve", "--port", str(free_port()))
    assert result.returncode != 0
    assert _one_line(result) == "error: database not migrated: run `nubo migrate`"


async def test_migrate_changes_nothing_while_mongodb_is_down(test_env, never_migrated) -> None:
    env = {
        **test_env,
        "NUBO_POSTGRES_DSN": never_migrated,
        "NUBO_MONGO_URL": f"mongodb://127.0.0.1:{free_port()}",
        "NUBO_STARTUP_TIMEOUT": "1",
    }
    result = nubo(env, "migrate")
    assert result.returncode == 1
    assert "MongoDB unreachable" in _one_line(result)
    conn = await asyncpg.connect(never_migrated)
    try:
        assert await conn.fetchval("SELECT to_regclass('schema_migrations')") is None
    finally:
        await conn.close()


async def test_ready_reports_a_schema_the_code_does_not_know(start_server, stores) -> None:
    server = start_server()
    await stores.pg.execute(
        "INSERT INTO schema_migrations (version, name, checksum) VALUES (9999, 'from_the_future', 'x')"
    )
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=5) as client:
            response = await client.get("/ready")
        assert response.status_code == 503
        assert "9999" in response.json()["checks"]["schema"]
    finally:
        await stores.pg.execute("DELETE FROM schema_migrations WHERE version = 9999")


def test_a_stop_logs_no_cancelled_task_warning(test_env, session_stores) -> None:
    server = ServerProcess(test_env).start()
    server.stop(signal.SIGTERM)
    assert "was cancelled" not in server.output()


def test_instances_restart_a_killed_instance_while_the_other_keeps_serving(test_env, session_stores) -> None:
    port = _free_port_pair()
    proc = start_process(
        [sys.executable, "-m", "cli", "serve", "--port", str(port), "--instances", "2"],
        cwd=ROOT, env={**os.environ, **test_env}, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        pids = {}
        for _ in range(2):
            line = proc.stdout.readline()  # "instance 1/2: http://127.0.0.1:PORT (pid N)"
            pids[int(line.split(":")[-1].split()[0])] = int(line.split("pid ")[1].rstrip(")\n"))
        for p in (port, port + 1):  # both fully started: the image worker too
            wait_for_port(p, timeout=20, proc=proc)
            wait_for_ping(p)
        os.kill(pids[port + 1], signal.SIGKILL)
        # The other instance serves throughout, and the killed one comes back on its port.
        deadline = time.monotonic() + 20
        back = False
        while time.monotonic() < deadline and not back:
            assert httpx.get(f"http://127.0.0.1:{port}/ping", timeout=10).status_code == 200
            try:
                back = httpx.get(f"http://127.0.0.1:{port + 1}/ping", timeout=0.5).status_code == 200
            except httpx.TransportError:
                time.sleep(0.1)
        assert back and proc.poll() is None
        proc.send_signal(signal.SIGINT)
        # communicate() waits for every holder of stdout: the killed instance's image worker
        # too, had it outlived its server (it dies with it: serving/children.die_with_parent).
        out, _ = proc.communicate(timeout=30)
        assert "exited with status -9; restarting" in out
        assert proc.returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()


def test_an_instance_whose_port_is_taken_is_not_restarted_and_the_other_serves(test_env, session_stores) -> None:
    port = _free_port_pair()
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port + 1))
        squatter.listen()
        proc = start_process(
            [sys.executable, "-m", "cli", "serve", "--port", str(port), "--instances", "2"],
            cwd=ROOT, env={**os.environ, **test_env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        try:
            wait_for_port(port, timeout=20, proc=proc)
            wait_for_ping(port)
            time.sleep(1)  # the supervisor sees the other one exit
            assert proc.poll() is None
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert f"instance 2 (port {port + 1}) cannot start" in out
    assert f"port {port + 1} on 127.0.0.1 is already in use" in err
    assert "Traceback" not in err


def test_ctrl_c_to_the_terminal_group_drains_every_instance_once(test_env, session_stores) -> None:
    # The terminal sends SIGINT to the whole group; instances hear it once, from the supervisor.
    port = _free_port_pair()
    proc = start_process(
        [sys.executable, "-m", "cli", "serve", "--port", str(port), "--instances", "2"],
        cwd=ROOT, env={**os.environ, **test_env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )
    try:
        for p in (port, port + 1):  # both serving (a stop during start-up has nothing to drain)
            wait_for_port(p, timeout=20, proc=proc)
            wait_for_ping(p)
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert err.count("Worker complete") == 2, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err


def _group_gone(pgid: int, within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while True:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)


# Each moment a supervisor may stop a server that it has just started, by the line that marks
# it on stderr: before Sanic's worker manager exists, while it waits for its workers to be
# ready, and once they serve.
STOP_MOMENTS = {
    "before-the-manager": "nubo listening on",
    "while-workers-start": "Starting worker",
    "serving": "Worker ready",
}


@pytest.mark.parametrize("moment", list(STOP_MOMENTS), ids=list(STOP_MOMENTS))
def test_a_multi_worker_server_stopped_at_any_moment_of_start_up_exits_and_leaves_nothing(
    moment: str, test_env, session_stores
) -> None:
    port = _free_port_pair()
    proc = start_process(
        [sys.executable, "-m", "cli", "serve", "--port", str(port), "--workers", "2"],
        cwd=ROOT, env={**os.environ, **test_env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )
    try:
        for line in proc.stderr:
            if STOP_MOMENTS[moment] in line:
                break
        proc.send_signal(signal.SIGTERM)
        proc.stderr.close()  # (a server that logs on must not block on a full pipe)
        proc.wait(timeout=30)
        # The manager's own helper processes (multiprocessing's manager and resource tracker)
        # and every worker are gone with it.
        assert _group_gone(proc.pid)
    finally:
        if proc.poll() is None or not _group_gone(proc.pid, within=0):
            os.killpg(proc.pid, signal.SIGKILL)
