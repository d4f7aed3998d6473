"""A stop signal is never lost, and a stop never outlasts its bound.

Sanic hands SIGINT/SIGTERM to the event loop (`loop.add_signal_handler`): uvloop's Python-level
handler only notes the signal, and the loop acts on it when the byte Python writes to its
wake-up socket is read. Two ways that loses a stop, both seen when a supervisor stops an
instance right after it first answers:
- between two runs of the loop (after its start-up run, Sanic logs "Worker ready" before
  `run_forever`; a few milliseconds on a loaded machine) the wake-up socket is closed: the
  byte is never written, and the signal waits in a set that nothing reads until the next one;
- a signal noted by uvloop just before its handler is replaced is dropped when its byte is
  read: the loop finds no handler for it any more.

So once the server has started, the stop signals are ours at both levels, and neither is
ever left without a handler: the Python-level one, which Python runs in the main thread at
its next instruction whether or not the loop runs, and the loop's, which takes a signal noted
before. Both ask the loop to stop the server with `call_soon_threadsafe`; the first asks,
later ones only say a stop is under way. And every stop is bounded: a watchdog thread,
started by the first stop, ends the process if the shutdown (drain, listeners, closing the
stores) is still going `STOP_MARGIN_SECONDS` after the grace, logging where it was stuck and
what each task was waiting for.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable
from functools import partial
from types import FrameType
from typing import Any

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

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._lock:
            if self._timer is None:
                self._timer = threading.Timer(self.bound, self._overran, args=(loop,))
                self._timer.daemon = True  # (never what keeps a finished process alive)
                self._timer.start()

    def _overran(self, loop: asyncio.AbstractEventLoop) -> None:
        frame = sys._current_frames().get(self._main or 0)
        stack = "".join(traceback.format_stack(frame)) if frame is not None else "(main thread gone)"
        log.error(
            "shutdown still running %gs after the stop; exiting now", self.bound,
            extra={
                "stuck_at": stack.strip().splitlines()[-2:] if frame is not None else [],
                "stack": stack,
                # The main thread shows only the loop, waiting: what for is in its tasks.
                "tasks": _awaiting(loop),
            },
        )
        for handler in logging.getLogger().handlers:
            handler.flush()
        os._exit(EXIT_STOP_OVERRAN)


def _awaiting(loop: asyncio.AbstractEventLoop) -> list[str]:
    """Each unfinished task of `loop` and where it waits, innermost await last. Read from the
    watchdog's thread while the loop may still run: a set changed meanwhile is read again."""
    for _attempt in range(3):
        try:
            tasks = list(asyncio.all_tasks(loop))
            break
        except RuntimeError:  # (the set changed size while it was read)
            continue
    else:
        return []
    found = []
    for task in tasks:
        places = []
        coro: Any = task.get_coro()
        while coro is not None:
            frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
            if frame is not None:
                where = frame.f_code.co_filename.rsplit("/", 2)[-2:]
                places.append(f"{frame.f_code.co_name} ({'/'.join(where)}:{frame.f_lineno})")
            coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
        found.append(f"{task.get_name()}: {' > '.join(places) or repr(task)}")
    return found


def install_stop_handling(app: Sanic, grace_seconds: float) -> None:
    watchdog = StopWatchdog(grace_seconds + STOP_MARGIN_SECONDS)
    stopping: list[int] = []

    def python_level(loop: asyncio.AbstractEventLoop) -> Callable[[int, FrameType | None], None]:
        def on_signal(signum: int, _frame: FrameType | None) -> None:
            if stopping:  # a second Ctrl-C: the stop under way is bounded already
                log.info("already stopping (at most %gs)", watchdog.bound)
                return
            ask_to_stop(loop, signum)

        return on_signal

    def ask_to_stop(loop: asyncio.AbstractEventLoop, signum: int) -> None:
        # (From a signal handler, in the main thread, perhaps between two runs of the loop.)
        watchdog.start(loop)
        if not stopping:
            stopping.append(signum)
            loop.call_soon_threadsafe(partial(app.stop, terminate=False))

    # First of the after_server_start listeners: Sanic has just installed its handlers (a
    # signal before this point reaches Sanic's, and NuboSanic.stop keeps it until serving).
    @app.listener("after_server_start", priority=1_000_000)
    async def own_the_stop_signals(app: Sanic) -> None:
        loop = asyncio.get_running_loop()
        for sig in STOP_SIGNALS:
            # The loop's handler replaced, not removed (the set noted above is read on), then
            # the Python-level one. The same signal may reach both: one stop is asked.
            loop.add_signal_handler(sig, ask_to_stop, loop, sig)
            signal.signal(sig, python_level(loop))

    # Whichever way the stop came (a signal before the handlers above, app.stop()), its
    # shutdown is bounded too. (Shutdown listeners run lowest priority first.) And Sanic has
    # just removed the loop's signal handlers, which puts the defaults back: a second SIGTERM
    # would end the process at once, a second Ctrl-C raise KeyboardInterrupt mid-drain.
    @app.listener("before_server_stop", priority=-1_000_000)
    async def bound_the_shutdown(app: Sanic) -> None:
        loop = asyncio.get_running_loop()
        watchdog.start(loop)
        for sig in STOP_SIGNALS:
            signal.signal(sig, python_level(loop))
