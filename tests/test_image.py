"""The Docker image without a Docker engine: the package built from exactly the files the
Dockerfile copies, installed into a fresh virtualenv, and the image's command run from a
directory holding only what the image holds. It catches a file the image forgot."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import RUN_ID
from tests.databases import drop_database, empty_database, private_name
from tests.image_support import read_dockerfile
from tests.support import ROOT, free_port, start_process

STAGES = read_dockerfile(ROOT / "Dockerfile")
BUILD, RUNTIME = STAGES[0], STAGES[-1]


def _copy_into(root: Path, workdir: str, copies: list[tuple[list[str], str]]) -> None:
    for sources, dest in copies:
        for source in sources:
            target = root / Path(workdir).relative_to("/") / dest
            if dest.endswith("/") or len(sources) > 1:
                target = target / Path(source).name
            target.parent.mkdir(parents=True, exist_ok=True)
            if (ROOT / source).is_dir():
                shutil.copytree(ROOT / source, target, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(ROOT / source, target)


@pytest.fixture(scope="module")
def image(tmp_path_factory) -> Path:
    """A root directory laid out like the image's filesystem, with /opt/venv installed."""
    root = tmp_path_factory.mktemp("image")
    _copy_into(root, BUILD.workdir, BUILD.copies)
    venv = root / "opt/venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    src = root / Path(BUILD.workdir).relative_to("/")
    subprocess.run(
        [str(venv / "bin/pip"), "install", "--quiet", "--no-cache-dir", str(src)],
        check=True, capture_output=True, timeout=300,
    )
    _copy_into(root, RUNTIME.workdir, RUNTIME.copies)
    return root


@pytest.fixture
async def image_database():
    name = private_name("image")
    yield await empty_database(name)
    await drop_database(name)


def test_image_command_migrates_and_serves_ready_with_json_logs(image, image_database, test_env) -> None:
    app_dir = image / Path(RUNTIME.workdir).relative_to("/")
    # The image's ENV, its paths moved under the temporary root; stores from the test run.
    env = {
        key: value.replace("/opt/venv", str(image / "opt/venv")).replace("$PATH", "/usr/bin:/bin")
        for key, value in RUNTIME.env.items()
    }
    env["NUBO_ROOT"] = str(app_dir)
    secret_dir = image / "var/lib/nubo"
    secret_dir.mkdir(parents=True, exist_ok=True)  # the Dockerfile's mkdir + chown
    env["NUBO_JWT_SECRET_FILE"] = str(secret_dir / "jwt_secret")
    port = free_port()
    env.update(
        HOME=str(app_dir),
        NUBO_HOST="127.0.0.1",  # the image binds 0.0.0.0; tests stay on loopback
        NUBO_PORT=str(port),
        NUBO_POSTGRES_DSN=image_database,
        NUBO_REDIS_URL=test_env["NUBO_REDIS_URL"],
        NUBO_REDIS_NAMESPACE=f"image{RUN_ID}",
        NUBO_MONGO_URL=test_env["NUBO_MONGO_URL"],
        NUBO_MONGO_DB=f"nubo_test_{RUN_ID}_image",
        NUBO_ENV_FILE="/nonexistent/.env",
    )
    assert env["NUBO_ENV"] == "production"
    log_path = image / "container.log"
    with log_path.open("w") as log:
        proc = start_process(RUNTIME.cmd, cwd=app_dir, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        ready = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/ready", timeout=2)
                if ready.status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        output = log_path.read_text()
        assert ready is not None and ready.status_code == 200, output
        assert ready.json()["checks"]["schema"] == "ok"
        assert (secret_dir / "jwt_secret").read_text().strip()  # generated on first start
    finally:
        proc.terminate()
        # The server bounds its own stop (grace + margin, serving/stopping.py); on a loaded
        # 2-core machine its migrate-then-serve start alone takes tens of seconds.
        try:
            proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    output = log_path.read_text()
    served = output.split("MongoDB index ready")[-1].split("\n", 1)[1]  # after migrate's own lines
    entries = [json.loads(line) for line in served.splitlines() if line.strip()]
    assert any("nubo listening on" in e["msg"] for e in entries)
    assert proc.returncode == 0, output
    assert "Traceback" not in output
    assert not os.path.exists(app_dir / "tests")  # only what the image holds
