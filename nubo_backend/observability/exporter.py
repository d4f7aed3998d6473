"""The /metrics endpoint: prometheus-client's HTTP server on its own port (NUBO_METRICS_PORT),
never the API's, so the public proxy cannot expose it.

One process (`nubo serve`): the exporter runs in a thread of the server process and shows its
registry, with the standard process, platform and GC collectors. Several workers (`--workers
N`): the workers write their values to files (prometheus-client's multiprocess mode) and the
exporter runs in their parent, which adds the files up; prometheus-client's process
collectors do not work in that mode, so there are none. `--instances N`: each instance is a
`nubo serve` of its own with its own metrics port (cli.py).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import ThreadingHTTPServer
from threading import Thread

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


class MetricsBindError(Exception):
    """The metrics port cannot be bound; the message says which and why."""


@contextmanager
def multiprocess_dir() -> Iterator[str]:
    """Switch prometheus-client to multiprocess mode for this process and those it starts, with
    a fresh directory removed at the end. Must come before prometheus_client is first imported
    (it picks its value class then). A directory already set in the environment is used as is."""
    given = os.environ.get(MULTIPROC_ENV)
    if given:
        yield given
        return
    path = tempfile.mkdtemp(prefix="nubo-metrics-")
    os.environ[MULTIPROC_ENV] = path
    try:
        yield path
    finally:
        os.environ.pop(MULTIPROC_ENV, None)
        shutil.rmtree(path, ignore_errors=True)


def start_exporter(host: str, port: int) -> tuple[ThreadingHTTPServer, int]:
    """Serve /metrics on host:port from a daemon thread; returns the server and its bound port."""
    from prometheus_client import REGISTRY, CollectorRegistry, start_http_server

    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    try:
        server, _thread = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        raise MetricsBindError(f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}; "
                               "choose another NUBO_METRICS_PORT (or --metrics-port)") from None
    return server, server.server_port


def stop_exporter(server: ThreadingHTTPServer) -> None:
    thread = Thread(target=server.shutdown, daemon=True)
    thread.start()
    thread.join(2)
    server.server_close()

