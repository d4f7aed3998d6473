"""`nubo serve --instances N`: N servers on consecutive ports, each its own failure domain.

A crashed instance is restarted alone, with a backoff, while the others keep serving; an
instance that refused to start (EXIT_CANNOT_START: port taken, schema, configuration) is
not, because it would refuse again. Ctrl-C or SIGTERM stops them all, each gracefully.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass

from nubo_backend.serving.children import spawn
from nubo_backend.serving.preflight import EXIT_CANNOT_START

FIRST_RESTART_DELAY = 0.5
MAX_RESTART_DELAY = 30.0
# An instance up this long before crashing is restarted after the first delay again.
STABLE_AFTER_SECONDS = 30.0
POLL_SECONDS = 0.2


@dataclass
class Instance:
    number: int
    port: int
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    crashes: int = 0
    restart_at: float | None = None
    given_up: bool = False

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def supervise(
    command: Callable[[int], list[str]],
    host: str,
    ports: list[int],
    stop_grace: float,
    echo: Callable[[str], None],
    metrics_ports: dict[int, int] | None = None,
) -> int:
    """Run until stopped; the exit status is 0 unless an instance had to be killed or none could start.
    `metrics_ports`: each instance's /metrics port by its HTTP port (0: none), said with it at start."""
    instances = [Instance(i + 1, port) for i, port in enumerate(ports)]
    stopping: list[int] = []

    def start(inst: Instance) -> None:
        inst.proc = spawn(command(inst.port))
        inst.started_at = time.monotonic()
        inst.restart_at = None
        metrics = (metrics_ports or {}).get(inst.port)
        shown = f" metrics http://{host}:{metrics}/metrics" if metrics else ""
        echo(f"instance {inst.number}/{len(instances)}: http://{host}:{inst.port} (pid {inst.proc.pid}){shown}")

    def stop(signum: int, _frame: object) -> None:
        if not stopping:
            stopping.append(signum)
            for inst in instances:
                if inst.alive:
                    inst.proc.send_signal(signum)  # type: ignore[union-attr]

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        for inst in instances:
            start(inst)
        while not stopping:
            now = time.monotonic()
            for inst in instances:
                _tend(inst, now, start, echo)
            if all(inst.given_up for inst in instances):
                echo("no instance could start")
                return 1
            time.sleep(POLL_SECONDS)
        return _wait_all(instances, stop_grace, echo)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _tend(inst: Instance, now: float, start: Callable[[Instance], None], echo: Callable[[str], None]) -> None:
    if inst.given_up or inst.proc is None:
        return
    if inst.restart_at is not None:
        if now >= inst.restart_at:
            start(inst)
        return
    code = inst.proc.poll()
    if code is None:
        return
    if code == EXIT_CANNOT_START:
        inst.given_up = True
        echo(f"instance {inst.number} (port {inst.port}) cannot start (its error is above); not restarted")
        return
    inst.crashes = 1 if now - inst.started_at > STABLE_AFTER_SECONDS else inst.crashes + 1
    delay = min(FIRST_RESTART_DELAY * 2 ** (inst.crashes - 1), MAX_RESTART_DELAY)
    inst.restart_at = now + delay
    echo(f"instance {inst.number} (port {inst.port}) exited with status {code}; restarting in {delay:g}s")


def _wait_all(instances: list[Instance], stop_grace: float, echo: Callable[[str], None]) -> int:
    deadline = time.monotonic() + stop_grace
    status = 0
    for inst in instances:
        if inst.proc is None:
            continue
        try:
            inst.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            echo(f"instance {inst.number} (pid {inst.proc.pid}) did not stop within {stop_grace:g}s; killed")
            inst.proc.kill()
            inst.proc.wait()
            status = 1
    return status
