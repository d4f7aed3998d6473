"""Nothing a test starts outlives the test run, however the run ends (kill -9 included)."""

import os
import subprocess
import sys
import textwrap
import time

import pytest

from tests.support import ROOT, jongodb_binary, start_process

INNER_TEST = textwrap.dedent('''
    import os, time
    from tests.support import MongoEmulator, PrivateRedis, jongodb_binary

    def test_starts_processes_then_hangs():
        started = [PrivateRedis().start().proc.pid, MongoEmulator(jongodb_binary()).start().proc.pid]
        with open(os.environ["PIDS_FILE"], "w") as f:
            f.write(" ".join(map(str, started)))
        time.sleep(120)  # killed long before
''')


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"  # (a zombie is dead, unreaped)
    except FileNotFoundError:
        return False


@pytest.mark.skipif(jongodb_binary() is None, reason="needs the MongoDB emulator (./scripts/test installs it)")
def test_processes_a_test_started_die_when_pytest_is_killed(tmp_path) -> None:
    (tmp_path / "test_inner.py").write_text(INNER_TEST)
    pids_file = tmp_path / "pids"
    pids: list[int] = []
    inner = start_process(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path / "test_inner.py")],
        cwd=ROOT, env={**os.environ, "PIDS_FILE": str(pids_file), "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not (pids_file.exists() and pids_file.read_text()):
            assert inner.poll() is None and time.monotonic() < deadline, "the inner run never started its processes"
            time.sleep(0.1)
        pids = [int(p) for p in pids_file.read_text().split()]
        assert all(_alive(p) for p in pids)
        inner.kill()  # as a CI timeout does: no teardown runs
        inner.wait()
        deadline = time.monotonic() + 10
        while any(_alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [p for p in pids if _alive(p)], "a process of the killed run lives on"
    finally:
        if inner.poll() is None:
            inner.kill()
            inner.wait()
        for pid in pids:  # (only when the assertion above failed: the pids the inner run started)
            if _alive(pid):
                os.kill(pid, 9)
