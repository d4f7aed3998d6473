"""A stop at any moment of start-up ends the server within its shutdown grace."""

import fcntl
import os
import signal
import subprocess
import sys
import threading
import time

from tests.support import ROOT, ServerProcess, free_port, start_process

F_SETPIPE_SZ = 1031
GRACE_SECONDS = 10  # the default NUBO_SHUTDOWN_GRACE


def _fill(pipe_write_end: int) -> None:
    """Fill the pipe, through a file description of our own: the server's stays blocking."""
    filler = os.open(f"/proc/self/fd/{pipe_write_end}", os.O_WRONLY | os.O_NONBLOCK)
    try:
        for chunk in (b".\n" * 256, b"\n"):  # (a write that does not fit is refused whole)
            try:
                while True:
                    os.write(filler, chunk)
            except BlockingIOError:
                pass
    finally:
        os.close(filler)


def test_a_stop_as_start_up_ends_stops_the_server_within_the_grace(test_env, session_stores) -> None:
    # A stop that comes as start-up ends: Sanic logs "Worker ready" after its start-up run and
    # before its serving loop runs (uvloop lost a signal that came inside that loop's start,
    # before it listened for signals again: serving/stopping.py). A full stderr pipe holds the
    # server in that log write, so the stop comes at that point every time, however loaded the
    # machine.
    read_end, write_end = os.pipe()
    fcntl.fcntl(write_end, F_SETPIPE_SZ, 4096)
    proc = start_process(
        [sys.executable, "-m", "cli", "serve", "--port", str(free_port())],
        cwd=ROOT, env={**os.environ, **test_env, "NUBO_LOG_LEVEL": "INFO"},
        stdout=subprocess.DEVNULL, stderr=write_end, start_new_session=True,
    )
    reader = os.fdopen(read_end, "rb")
    output: list[bytes] = []
    try:
        for line in reader:
            output.append(line)
            if b"stores open" in line:  # start-up's last line before "Worker ready"
                break
        _fill(write_end)
        os.close(write_end)
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)  # (the signal is in before the server writes on)
        stopped_at = time.monotonic()
        drain = threading.Thread(target=lambda: output.extend(reader), daemon=True)
        drain.start()
        try:
            proc.wait(timeout=GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            raise AssertionError("the server did not stop within its grace") from None
        took = time.monotonic() - stopped_at
        drain.join(timeout=5)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        reader.close()
    log = b"".join(output).decode(errors="replace")
    assert "Worker ready" in log and "Worker complete" in log, log[-3000:]
    assert proc.returncode == 0 and took < GRACE_SECONDS, log[-3000:]


def test_ctrl_c_in_a_terminal_stops_the_server_without_a_traceback(test_env, session_stores) -> None:
    # A terminal's Ctrl-C reaches the whole process group: the server and its image workers.
    server = ServerProcess({**test_env, "NUBO_LOG_LEVEL": "INFO"}).start()
    deadline = time.monotonic() + 30
    while "Worker ready" not in server.output() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert server.stop(signal.SIGINT, timeout=GRACE_SECONDS) == 0, server.output()
    output = server.output()
    assert "Worker complete" in output, output
    assert "Traceback" not in output and "KeyboardInterrupt" not in output, output
