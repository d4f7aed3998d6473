"""Child processes that get exactly one stop signal, from their parent, and die with it.

In a terminal, Ctrl-C reaches the whole foreground process group. A server that gets it
from the terminal and again from its supervisor stops draining halfway (Sanic restores the
default SIGINT handler once it begins its shutdown). So children run in a process group of
their own, hear stop signals only from their parent, and are sent SIGTERM by the kernel if
that parent dies first (Linux PR_SET_PDEATHSIG), so none outlives it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import signal
import subprocess
import sys
from typing import Any

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def spawn(command: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen(command, process_group=0, preexec_fn=_die_with_parent, **kwargs)
