"""./scripts/dev on a fresh checkout, as CI runs it: its own virtualenv, the database created,
the MongoDB stand-in started, a mail catcher started, then a server that is ready, signs up
(the verification mail readable at the catcher's URL) and speaks WebSocket."""

import asyncio
import json
import os
import re
import shutil
import signal
import smtplib
import socket
import subprocess
import time
from email.message import EmailMessage
from pathlib import Path

import httpx
from websockets.asyncio.client import connect

from scripts.mailcatcher import DevMailCatcher
from tests.conftest import RUN_ID, _dsn_for
from tests.databases import drop_database, private_name
from tests.support import ROOT, free_port, jongodb_binary, start_process

SETUP_WAIT_SECONDS = 600  # a fresh virtualenv installs the project first: over 300 s on a loaded 2-core machine


def _refuses_connections(url: str) -> bool:
    host, port = url.rsplit("/", 1)[-1].rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=2).close()
    except OSError:
        return True
    return False


async def _caught_mail(mails_url: str, recipient: str, within: float = 30) -> dict:
    """The first mail to recipient the catcher shows over HTTP, waiting for the sender to deliver it."""
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(timeout=5) as client:
        while True:
            mails = (await client.get(f"{mails_url}/mails.json")).json()
            if found := [m for m in mails if recipient in m["to"]]:
                return found[-1]
            assert time.monotonic() < deadline, mails
            await asyncio.sleep(0.2)


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

        # The verification mail of that signup, read where the script said mails are shown.
        mails_url = re.search(r"mails sent \(verification and reset links\): (\S+)", output)[1]
        smtp_url = re.search(r"mail: caught at (\S+),", output)[1]
        mail = await _caught_mail(mails_url, "new@example.test")
        assert mail["subject"] == "Confirm your e-mail address"
        link = re.search(r"(\S+/email/verify)\?token=([\w-]+)", mail["text"])
        assert link[1] == f"http://127.0.0.1:{port}/email/verify"  # NUBO_PUBLIC_URL: this run's server
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            assert (await client.post("/email/verify", json={"token": link[2]})).status_code == 200
            me = await client.get("/me", headers={"Authorization": f"Bearer {new_token}"})
            assert me.json()["email_verified"] is True
            page = await client.get(f"{mails_url}/mails/{mail['id']}")
            assert page.status_code == 200 and "/email/verify?token=" in page.text
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
    assert _refuses_connections(smtp_url) and _refuses_connections(mails_url)  # the catcher stopped with it


def test_the_dev_mail_catcher_shows_what_it_received_over_http_and_frees_its_ports_when_stopped() -> None:
    caught = []
    catcher = DevMailCatcher(smtp_port=free_port(), http_port=free_port(), on_mail=caught.append).start()
    try:
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = "nubo@example.test", "ann@example.test", "Hello"
        message.set_content("plain words")
        message.add_alternative("<p>html <b>words</b></p>", subtype="html")
        with smtplib.SMTP("127.0.0.1", catcher.smtp_port, timeout=10) as smtp:
            smtp.send_message(message)
        [mail] = httpx.get(f"{catcher.http_url}/mails.json", timeout=5).json()
        assert (mail["to"], mail["subject"], mail["text"].strip()) == (["ann@example.test"], "Hello", "plain words")
        assert [m.id for m in caught] == [mail["id"]]
        html = httpx.get(f"{catcher.http_url}/mails/{mail['id']}", timeout=5)
        assert "<b>words</b>" in html.text and "sandbox" in html.headers["content-security-policy"]
        assert httpx.get(f"{catcher.http_url}/mails/{mail['id']}.txt", timeout=5).text.strip() == "plain words"
        assert "Hello" in httpx.get(catcher.http_url, timeout=5).text
        assert httpx.get(f"{catcher.http_url}/mails/99", timeout=5).status_code == 404
    finally:
        catcher.stop()
    assert _refuses_connections(catcher.smtp_url) and _refuses_connections(catcher.http_url)


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


def test_the_dev_script_knows_its_own_processes_from_others(monkeypatch) -> None:
    # Its "ready" line needs /ready to name a process it started (or one of theirs).
    import importlib.util

    monkeypatch.syspath_prepend(str(ROOT / "scripts"))  # (it imports its sibling mailcatcher.py)
    spec = importlib.util.spec_from_file_location("devstack", ROOT / "scripts/devstack.py")
    devstack = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(devstack)
    with subprocess.Popen(["sleep", "5"]) as child:
        try:
            assert devstack._descends_from(child.pid, os.getpid())
            assert not devstack._descends_from(os.getpid(), child.pid)
            assert not devstack._descends_from(None, os.getpid())
        finally:
            child.kill()
