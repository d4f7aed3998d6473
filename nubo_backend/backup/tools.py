"""PostgreSQL's and MongoDB's own dump and restore tools, run as subprocesses.

Passwords never go on a command line, which `ps` shows to every user of the machine:
PostgreSQL's travels in the environment (PGPASSWORD), MongoDB's URI in a `--config` file only
the current user can read, deleted when the tool exits. Long runs report progress every few
seconds through a callback.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

Progress = Callable[[str], None]
PROGRESS_EVERY = 2.0  # seconds between progress lines


class ToolError(Exception):
    """A tool is missing or failed; the message says what to do."""


def which(tool: str) -> str | None:
    return shutil.which(tool)


def _require(tool: str, package: str) -> str:
    path = which(tool)
    if path is None:
        raise ToolError(f"{tool} not found: install {package} (the Docker image deploy/backup.Dockerfile has it)")
    return path


def libpq_target(dsn: str) -> tuple[str, dict[str, str]]:
    """The DSN without its password, and the environment that carries the password."""
    parts = urlsplit(dsn)
    env = dict(os.environ)
    if parts.password is not None:
        env["PGPASSWORD"] = unquote(parts.password)
        netloc = parts.netloc.replace(f":{parts.password}@", "@", 1)
        dsn = urlunsplit(parts._replace(netloc=netloc))
    return dsn, env


def _mb(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"


def _run_watching_file(cmd: list[str], env: dict[str, str], out: Path, label: str, progress: Progress) -> None:
    """Run cmd, which writes out; report the file's growth until it exits."""
    started = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    while True:
        try:
            proc.wait(timeout=PROGRESS_EVERY)
            break
        except subprocess.TimeoutExpired:
            size = out.stat().st_size if out.exists() else 0
            progress(f"{label}: {_mb(size)} written ({time.monotonic() - started:.0f} s)")
    errors = proc.stderr.read() if proc.stderr else ""
    if proc.returncode != 0:
        raise ToolError(f"{cmd[0].rsplit('/', 1)[-1]} failed (exit {proc.returncode}): {_last_line(errors)}")


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "(no message)"


def pg_version(tool: str) -> str:
    out = subprocess.run([_require(tool, "postgresql-client"), "--version"], capture_output=True, text=True)
    return out.stdout.strip()


def pg_dump(dsn: str, out: Path, progress: Progress) -> None:
    """The whole database in pg_dump's custom format (compressed; pg_restore picks from it)."""
    tool = _require("pg_dump", "postgresql-client (the server's major version or newer)")
    target, env = libpq_target(dsn)
    _run_watching_file(
        [tool, "--format=custom", "--no-password", f"--file={out}", f"--dbname={target}"],
        env, out, "postgres", progress,
    )


def table_data_entries(dump: Path) -> int:
    """How many tables' data the dump holds (the restore's progress denominator)."""
    tool = _require("pg_restore", "postgresql-client")
    listing = subprocess.run([tool, "--list", str(dump)], capture_output=True, text=True)
    if listing.returncode != 0:
        raise ToolError(f"{dump} is not a pg_dump custom-format file: {_last_line(listing.stderr)}")
    return sum(1 for line in listing.stdout.splitlines() if " TABLE DATA " in line and not line.startswith(";"))


def pg_restore(dsn: str, dump: Path, clean: bool, progress: Progress) -> None:
    """Restore into dsn's database in one transaction: all of it, or nothing on any error."""
    tool = _require("pg_restore", "postgresql-client (the server's major version or newer)")
    total = table_data_entries(dump)
    target, env = libpq_target(dsn)
    cmd = [tool, "--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction", "--verbose",
           "--no-password", f"--dbname={target}"]
    if clean:
        cmd += ["--clean", "--if-exists"]
    proc = subprocess.Popen([*cmd, str(dump)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    state = {"done": 0, "table": "", "tail": ""}
    started = time.monotonic()
    finished = threading.Event()

    def tick() -> None:  # pg_restore speaks once per table: say it still runs in between
        while not finished.wait(PROGRESS_EVERY * 2.5):
            table = f", {state['table']}" if state["table"] else ""
            progress(f"postgres: still restoring ({time.monotonic() - started:.0f} s{table})")

    ticker = threading.Thread(target=tick, daemon=True)
    ticker.start()
    assert proc.stderr is not None
    try:
        for line in proc.stderr:
            state["tail"] = line if line.strip() else state["tail"]
            if "processing data for table" in line:
                state["done"] += 1
                state["table"] = line.rsplit("table", 1)[-1].strip().strip('"')
                progress(f"postgres: restoring table {state['done']}/{total} ({state['table']})")
    finally:
        finished.set()
    if proc.wait() != 0:
        raise ToolError(f"pg_restore failed (exit {proc.returncode}), nothing was restored: {state['tail'].strip()}")


@contextmanager
def mongo_uri_config(url: str) -> Iterator[str]:
    """`--config=<file>` for mongodump and mongorestore: a YAML file holding `uri`, in a folder
    of the current user's own (mode 0700, the file 0600), removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="nubo-mongo-"))
    try:
        path = folder / "uri.yaml"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(f"uri: {json.dumps(url)}\n")  # a JSON string is a YAML string
        yield f"--config={path}"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def mongodump(url: str, database: str, out: Path, progress: Progress) -> None:
    tool = _require("mongodump", "mongodb-database-tools")
    with mongo_uri_config(url) as config:
        _run_watching_file([tool, config, f"--db={database}", f"--archive={out}", "--gzip", "--quiet"],
                           dict(os.environ), out, "mongo", progress)


def mongorestore(url: str, source_db: str, database: str, archive: Path) -> None:
    tool = _require("mongorestore", "mongodb-database-tools")
    with mongo_uri_config(url) as config:
        cmd = [tool, config, f"--archive={archive}", "--gzip", "--drop", "--quiet",
               f"--nsFrom={source_db}.*", f"--nsTo={database}.*"]
        done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise ToolError(f"mongorestore failed (exit {done.returncode}): {_last_line(done.stderr)}")
