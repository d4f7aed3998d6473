"""scripts/ws.py, the README's hand-held WebSocket client: Ctrl-C ends it at once on a
terminal, and a refusal is one line, not a traceback."""

from __future__ import annotations

import os
import pty
import signal
import subprocess
import sys
import time

import pytest

from nubo_backend.stores import Stores
from tests.factories import make_user
from tests.support import ROOT, ServerProcess, free_port, start_process


def _on_a_terminal(server: ServerProcess, token: str) -> tuple[subprocess.Popen, int]:
    """scripts/ws.py with a pseudo-terminal for its stdin and stdout, as a person runs it."""
    main, child = pty.openpty()
    proc = start_process([sys.executable, "scripts/ws.py", server.ws_url, token], cwd=ROOT,
                         stdin=child, stdout=child, stderr=child)
    os.close(child)
    return proc, main


def _read_until(fd: int, text: bytes, within: float = 10.0) -> bytes:
    seen = b""
    deadline = time.monotonic() + within
    while text not in seen:
        assert time.monotonic() < deadline, seen
        os.set_blocking(fd, False)
        try:
            seen += os.read(fd, 4096)
        except BlockingIOError:
            time.sleep(0.05)
    return seen


@pytest.fixture(params=["clean", "polluted"])
def test_process_signals(request):
    """This pytest process's SIGINT as a long run may leave it (ignored and blocked, both of which
    survive exec): start_process gives its children the shell's defaults whatever this one has."""
    if request.param == "clean":
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        signal.signal(signal.SIGINT, previous)


async def test_ctrl_c_ends_it_at_once_while_it_waits_for_typed_lines(server: ServerProcess, stores: Stores,
                                                                      test_process_signals) -> None:
    user = await make_user(stores)
    proc, terminal = _on_a_terminal(server, user.token)
    try:
        _read_until(terminal, b'"type":"ready"')
        began = time.monotonic()
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=10)  # (before: until Enter was pressed)
        assert time.monotonic() - began < 5  # at most its 1 s close handshake, and its exit
        os.set_blocking(terminal, False)
        try:
            rest = os.read(terminal, 65536)
        except OSError:  # (the other end closed: nothing more was written)
            rest = b""
        assert b"Traceback" not in rest and b"Fatal" not in rest, rest
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(terminal)


def test_a_refused_token_is_one_line_that_says_what_to_do(server: ServerProcess) -> None:
    result = subprocess.run([sys.executable, "scripts/ws.py", server.ws_url, "not-a-token"], cwd=ROOT,
                            capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "refused: HTTP 401 (the token is missing, invalid or expired: `nubo token <username>` mints one)"]


def test_nothing_listening_is_one_line() -> None:
    url = f"ws://127.0.0.1:{free_port()}/ws"
    result = subprocess.run([sys.executable, "scripts/ws.py", url, "t"], cwd=ROOT, capture_output=True,
                            text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith(f"cannot connect to {url}")
