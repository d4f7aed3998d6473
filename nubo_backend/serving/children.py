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
import os
import signal
import subprocess
import sys
from typing import Any

_PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int | None = None, sig: int = signal.SIGTERM) -> None:
    """Have the kernel send this process `sig` (SIGTERM) when its parent dies (Linux; elsewhere a no-op).

    Also for worker processes a server starts itself (the image pool): a server killed with
    -9 runs no clean-up, and its workers would otherwise live on, orphaned, holding whatever
    the server had handed them (its stdout, a pipe a supervisor reads). Given parent_pid, a
    parent that died before this call is noticed too."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, sig)
    if parent_pid is not None and os.getppid() != parent_pid:
        os._exit(0)


def spawn(command: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen(command, process_group=0, preexec_fn=die_with_parent, **kwargs)
