"""Real processes for tests: the nubo server, private Redis/PostgreSQL instances, the Mongo emulator."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

import httpx

from nubo_backend.serving.children import die_with_parent

ROOT = Path(__file__).resolve().parent.parent


def start_process(command: list[str], *, on_test_run_end: int = signal.SIGTERM, **kwargs: Any) -> subprocess.Popen:
    """Popen for a process a test starts: the kernel sends it `on_test_run_end` when the test
    run (this pytest process) ends in any way, a kill -9 or a CI timeout included, so that
    nothing a test starts outlives the run. It starts with the stop signals as a shell gives
    them (see _as_from_a_shell). (Call it from the main thread: the signal follows the thread
    that started the process.)"""
    return subprocess.Popen(command, preexec_fn=partial(_as_from_a_shell, os.getpid(), on_test_run_end), **kwargs)


def _as_from_a_shell(parent_pid: int, on_test_run_end: int) -> None:
    """In the child, before exec: SIGINT and SIGTERM at their defaults and unblocked. An ignored
    or blocked signal survives exec, and in a long run something in this pytest process (an
    in-process server, a pool blocking SIGINT while it forks) can leave one so: Ctrl-C sent to
    scripts/ws.py then did nothing at the end of a full run, and nothing alone."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)
    die_with_parent(parent_pid, on_test_run_end)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 15.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on port {port} after {timeout}s")


def wait_for_ping(port: int, within: float = 60.0) -> None:
    """Until the instance on port answers /ping. Its port accepts connections as soon as it is
    bound, before the worker behind it has imported everything: slow when the machine is busy."""
    deadline = time.monotonic() + within
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ping", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"port {port} never answered /ping"
        time.sleep(0.1)


class ServerProcess:
    """One real `nubo serve` process on its own port, with the test environment."""

    def __init__(self, env: dict[str, str], port: int | None = None, args: list[str] | None = None):
        self.port = port or free_port()
        self.env = {**os.environ, **env}
        self.args = args or []
        self.proc: subprocess.Popen[str] | None = None
        self.log_path = Path(tempfile.mkstemp(prefix=f"nubo-{self.port}-", suffix=".log")[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def start(self, wait: bool = True) -> ServerProcess:
        cmd = [sys.executable, "-m", "cli", "serve", "--port", str(self.port), *self.args]
        self._log = self.log_path.open("w")
        # A process group of its own, so that stop() reaches every process it spawned (workers),
        # as Ctrl-C does in a terminal.
        self.proc = start_process(
            cmd, cwd=ROOT, env=self.env, stdout=self._log, stderr=subprocess.STDOUT, text=True,
            start_new_session=True,
        )
        if wait:
            try:
                self.wait_ready()
            except BaseException:
                # The caller gets no handle to stop it with: a server that never became ready
                # must not outlive the test (it would hold its connections and CPU for good).
                self.stop()
                raise
        return self

    def wait_ready(self, timeout: float = 60.0) -> None:  # (a start takes 10-20 s on a loaded 2-core machine)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.output()}")
            try:
                if httpx.get(f"{self.url}/ping", timeout=0.5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"server on {self.port} not ready:\n{self.output()}")

    def output(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def stop(self, sig: int = signal.SIGINT, timeout: float = 10.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self._signal_group(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._signal_group(signal.SIGKILL)  # anything of ours still alive in the group
        self._log.close()
        return self.proc.returncode

    def _signal_group(self, sig: int) -> None:
        try:
            os.killpg(self.proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


class PrivateRedis:
    """A redis-server of our own on a free port, so a test may stop or restart it safely."""

    def __init__(self, aof_dir: Path | None = None, args: list[str] | None = None) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.aof_dir = aof_dir  # keep an append-only file there, so a restart keeps the data
        self.args = args or []  # more redis-server options (`--maxmemory`, ...)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> PrivateRedis:
        persistence = ["--appendonly", "no"]
        if self.aof_dir is not None:
            persistence = ["--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.aof_dir)]
        self.proc = start_process(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", *persistence, *self.args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port, proc=self.proc)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()  # only the pid we started
            self.proc.wait()


def jongodb_binary() -> Path | None:
    """The MongoDB wire-protocol emulator installed by scripts/test, if any."""
    explicit = os.environ.get("NUBO_JONGODB_BIN")
    candidates = [Path(explicit)] if explicit else []
    candidates.append(
        ROOT / ".cache/jongodb/node_modules/@jongodb/memory-server-bin-linux-x64-gnu/bin/jongodb"
    )
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return path
    found = shutil.which("jongodb")
    return Path(found) if found else None


class MongoEmulator:
    def __init__(self, binary: Path) -> None:
        self.binary = binary
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}"

    def start(self) -> MongoEmulator:
        # SIGKILL when the run ends: the emulator holds nothing worth a clean stop, and one left
        # running grows to gigabytes of memory and a busy core.
        self.proc = start_process(
            [str(self.binary), f"--port={self.port}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            on_test_run_end=signal.SIGKILL,
        )
        wait_for_port(self.port, proc=self.proc)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=5)
