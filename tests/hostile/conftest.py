"""Hostile clients against the real server: each test asserts the exact answer and that the
server logged no traceback while it ran."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import ServerProcess


def cpu_seconds(pid: int) -> float:
    """user + system CPU time a process has used so far, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return ticks / os.sysconf("SC_CLK_TCK")


class ServerLog:
    """What the shared server logs from the moment the test starts."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.start = len(server.output())

    def text(self) -> str:
        return self.server.output()[self.start:]

    def assert_no_traceback(self) -> None:
        text = self.text()
        assert "Traceback" not in text, text[-4000:]
        assert "Task exception was never retrieved" not in text, text[-4000:]


@pytest.fixture
def server_log(server: ServerProcess) -> Iterator[ServerLog]:
    log = ServerLog(server)
    yield log
    log.assert_no_traceback()
