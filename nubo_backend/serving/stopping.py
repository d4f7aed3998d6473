"""A stop signal is never lost, and a stop never outlasts its bound.

Sanic hands SIGINT/SIGTERM to the event loop (`loop.add_signal_handler`). uvloop (0.23) only
notices a signal while its loop runs: one that arrives between two runs (Sanic logs "Worker
ready" after its start-up run and before `run_forever`, and the window is milliseconds wide
on a loaded machine) is kept in a set that nothing reads until the *next* signal. The server
then serves on, and a supervisor that stopped it right after start-up waits forever.

So once the server has started, the stop signals are ours: a plain Python handler, which
Python runs at the next instruction whether or not the loop is running, asks the loop to stop
with `call_soon_threadsafe`, which the loop runs as soon as it runs. And every stop is
bounded: a watchdog thread, started by the first stop, ends the process if the shutdown
(drain, listeners, closing the stores) is still going `STOP_MARGIN_SECONDS` after the grace,
logging where it was stuck first.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import threading
import traceback
from functools import partial
from types import FrameType

from sanic import Sanic

log = logging.getLogger("nubo.app")

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# Beyond the grace: Sanic's own listeners, closing the stores and the relay. A clean stop
# takes well under a second of it.
STOP_MARGIN_SECONDS = 5.0
# Exit status of a stop that outlasted its bound (EX_SOFTWARE from sysexits.h).
EXIT_STOP_OVERRAN = 70


class StopWatchdog:
    """Ends the process `bound` seconds after the first stop unless it has exited by then."""

    def __init__(self, bound: float) -> None:
        self.bound = bound
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()
        self._main = threading.main_thread().ident

    def start(self) -> None:
        with self._lock:
            if self._timer is None:
                self._timer = threading.Timer(self.bound, self._overran)
                self._timer.daemon = True  # (never what keeps a finished process alive)
                self._timer.start()

    def _overran(self) -> None:
        frame = sys._current_frames().get(self._main or 0)
        stack = "".join(traceback.format_stack(frame)) if frame is not None else "(main thread gone)"
        log.error(
            "shutdown still running %gs after the stop; exiting now", self.bound,
            extra={"stuck_at": stack.strip().splitlines()[-2:] if frame is not None else [], "stack": stack},
        )
        for handler in logging.getLogger().handlers:
            handler.flush()
        os._exit(EXIT_STOP_OVERRAN)


def install_stop_handling(app: Sanic, grace_seconds: float) -> None:
    watchdog = StopWatchdog(grace_seconds + STOP_MARGIN_SECONDS)
    stopping: list[int] = []

    # First of the after_server_start listeners: Sanic has just installed its handlers (a
    # signal before this point reaches a running loop, and app.py's stop sentinel keeps it).
    @app.listener("after_server_start", priority=1_000_000)
    async def own_the_stop_signals(app: Sanic) -> None:
        loop = asyncio.get_running_loop()

        def on_signal(signum: int, _frame: FrameType | None) -> None:
            watchdog.start()
            if stopping:  # a second Ctrl-C: the stop under way is bounded already
                log.info("already stopping (at most %gs)", watchdog.bound)
                return
            stopping.append(signum)
            loop.call_soon_threadsafe(partial(app.stop, terminate=False))

        for sig in STOP_SIGNALS:
            loop.remove_signal_handler(sig)
            signal.signal(sig, on_signal)

    # Whichever way the stop came (a signal before the handlers above, app.stop()), its
    # shutdown is bounded too. (Shutdown listeners run lowest priority first.)
    @app.listener("before_server_stop", priority=-1_000_000)
    async def bound_the_shutdown(app: Sanic) -> None:
        watchdog.start()
