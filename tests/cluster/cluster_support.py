"""A real local Redis Cluster: three masters from the installed redis-server, on private ports
in a private temporary directory, stopped by the pids we started."""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from tests.support import wait_for_port

MASTERS = 3


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _cluster_ports(count: int) -> list[int]:
    """Ports whose cluster-bus port (+10000) is free as well."""
    ports: list[int] = []
    for _ in range(200):
        port = random.randrange(21000, 29000)
        if port not in ports and _free(port) and _free(port + 10000):
            ports.append(port)
            if len(ports) == count:
                return ports
    raise RuntimeError("no free ports for a Redis Cluster")


class PrivateRedisCluster:
    def __init__(self, masters: int = MASTERS) -> None:
        self.ports = _cluster_ports(masters)
        self.dir = Path(tempfile.mkdtemp(prefix="nubo-cluster-"))
        self.procs: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in self.ports)

    def start(self) -> PrivateRedisCluster:
        for port in self.ports:
            node_dir = self.dir / str(port)
            node_dir.mkdir()
            self.procs.append(subprocess.Popen(
                ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                 "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--dir", str(node_dir)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            ))
        for port, proc in zip(self.ports, self.procs, strict=True):
            wait_for_port(port, proc=proc)
        subprocess.run(
            ["redis-cli", "--cluster", "create", *(f"127.0.0.1:{p}" for p in self.ports),
             "--cluster-replicas", "0", "--cluster-yes"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, timeout=60,
        )
        self._wait_ok()
        return self

    def _wait_ok(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            states = [self.cli(port, "cluster", "info") for port in self.ports]
            if all("cluster_state:ok" in s for s in states):
                return
            time.sleep(0.1)
        raise TimeoutError("Redis Cluster not ok after 30 s")

    def cli(self, port: int, *args: str) -> str:
        return subprocess.run(["redis-cli", "-p", str(port), *args], check=True, capture_output=True,
                              text=True, timeout=10).stdout

    def keys(self, pattern: str) -> list[str]:
        return [key for port in self.ports for key in self.cli(port, "--scan", "--pattern", pattern).split()]

    def flush(self) -> None:
        for port in self.ports:  # our own cluster: nobody else's keys are here
            self.cli(port, "flushall")

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()  # only the pids we started
                proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)
