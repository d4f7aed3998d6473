"""Our one adapter to Sanic's worker manager (`nubo serve --workers N`, N > 1).

Sanic 25.12's manager loses a stop signal that comes while it starts the workers
(sanic-org/sanic#2997; the fix, PR #3063, is not released):
- before the manager exists, SIGINT and SIGTERM still have their default action: the main
  process dies and leaves the multiprocessing manager it had already started running;
- while it waits for every worker to say it is ready, the stop it was sent goes round its
  monitor pipe forever (it reads the message and sends it back) and the workers it stopped
  never say they are ready: the main process spins and never exits.

A supervisor (systemd, Docker, `docker compose up` followed by Ctrl-C) that stops a server
soon after starting it would hang on it. So, until Sanic fixes it: a stop that comes early is
remembered and handed to the manager as soon as it exists, and a manager that is stopping
waits for no worker to be ready. It relies on `sanic.mixins.startup.WorkerManager` (the name
`Sanic.serve` builds its manager from), `WorkerManager.shutdown_signal`, `start`,
`processes`, `_all_workers_ack` and `_shutting_down`; tests/test_cli_serve.py stops servers
at every moment of start-up.
"""

from __future__ import annotations

import signal
from typing import Any, ClassVar

from sanic import Sanic
from sanic.mixins import startup
from sanic.worker.loader import AppLoader
from sanic.worker.manager import WorkerManager

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopAwareWorkerManager(WorkerManager):
    early_stops: ClassVar[list[int]] = []  # set per serve() call, below

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # installs Sanic's own signal handlers
        if self.early_stops:
            self.shutdown_signal(self.early_stops[0], None)

    def start(self) -> None:
        super().start()
        if self._shutting_down:  # stopped before its workers existed: stop them now
            for process in self.processes:
                process.terminate()

    def _all_workers_ack(self) -> bool:
        # A stopping manager has no worker left to wait for.
        return self._shutting_down or super()._all_workers_ack()


def serve(primary: Sanic, app_loader: AppLoader) -> None:
    """Sanic.serve, keeping a stop signal that comes during start-up."""
    early: list[int] = []
    for sig in STOP_SIGNALS:
        signal.signal(sig, lambda signum, _frame: early.append(signum))
    manager = type("NuboWorkerManager", (StopAwareWorkerManager,), {"early_stops": early})
    previous = startup.WorkerManager
    startup.WorkerManager = manager  # type: ignore[misc]
    try:
        Sanic.serve(primary=primary, app_loader=app_loader)
    finally:
        startup.WorkerManager = previous  # type: ignore[misc]
