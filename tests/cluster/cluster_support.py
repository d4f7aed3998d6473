"""A real local Redis Cluster: three masters from the installed redis-server (and, for failover
tests, a replica each), on private ports in a private temporary directory, stopped and killed
by the pids we started."""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tests.support import start_process, wait_for_port

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


@dataclass
class ClusterNode:
    port: int
    flags: set[str]  # master or slave, myself, fail, fail?...
    slots: list[tuple[int, int]]

    def serves(self, slot: int) -> bool:
        healthy = "master" in self.flags and not {"fail", "fail?"} & self.flags
        return healthy and any(first <= slot <= last for first, last in self.slots)


class PrivateRedisCluster:
    def __init__(self, masters: int = MASTERS, replicas: int = 0, node_timeout_ms: int | None = None) -> None:
        self.replicas = replicas
        self.ports = _cluster_ports(masters * (1 + replicas))
        # How long a master may be silent before its replica takes over (Redis: 15 s by default).
        self.node_timeout_ms = node_timeout_ms
        self.dir = Path(tempfile.mkdtemp(prefix="nubo-cluster-"))
        self.procs: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in self.ports)

    def start(self) -> PrivateRedisCluster:
        timeout = ["--cluster-node-timeout", str(self.node_timeout_ms)] if self.node_timeout_ms else []
        for port in self.ports:
            node_dir = self.dir / str(port)
            node_dir.mkdir()
            self.procs.append(start_process(
                ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                 "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--dir", str(node_dir),
                 *timeout],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            ))
        for port, proc in zip(self.ports, self.procs, strict=True):
            wait_for_port(port, proc=proc)
        subprocess.run(
            ["redis-cli", "--cluster", "create", *(f"127.0.0.1:{p}" for p in self.ports),
             "--cluster-replicas", str(self.replicas), "--cluster-yes"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, timeout=60,
        )
        self._wait_ok()
        return self

    def live_ports(self) -> list[int]:
        return [port for port, proc in zip(self.ports, self.procs, strict=True) if proc.poll() is None]

    def _wait_ok(self, timeout: float = 30.0, replicas: bool = True) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ports = self.live_ports()
            states = [self.cli(port, "cluster", "info") for port in ports]
            if all("cluster_state:ok" in s for s in states) and (not replicas or self._replicas_in_sync(ports)):
                return
            time.sleep(0.1)
        raise TimeoutError(f"Redis Cluster not ok after {timeout:.0f} s")

    def _replicas_in_sync(self, ports: list[int]) -> bool:
        """Every master has its replicas online (a replica still syncing could not take over)."""
        for port in ports:
            info = self.cli(port, "info", "replication")
            if "role:master" in info and info.count("state=online") < min(self.replicas, 1):
                return False
        return True

    def nodes(self, via: int | None = None) -> list[ClusterNode]:
        """`CLUSTER NODES`, as one node sees the cluster."""
        found = []
        for line in self.cli(via or self.live_ports()[0], "cluster", "nodes").splitlines():
            # <id> <ip:port@bus> <flags> <master> <ping> <pong> <epoch> <link> <slot ranges...>
            fields = line.split()
            ranges = []
            for part in fields[8:]:
                if not part.startswith("["):  # (a slot being migrated)
                    first, _, last = part.partition("-")
                    ranges.append((int(first), int(last or first)))
            found.append(ClusterNode(port=int(fields[1].split("@")[0].rsplit(":", 1)[1]),
                                     flags=set(fields[2].split(",")), slots=ranges))
        return found

    def master_of(self, key: str) -> int:
        """The port of the master serving key's slot now."""
        slot = int(self.cli(self.live_ports()[0], "cluster", "keyslot", key))
        for node in self.nodes():
            if node.serves(slot):
                return node.port
        raise LookupError(f"no master serves slot {slot}")

    def kill(self, port: int) -> None:
        """kill -9 the node on port (a process we started), as a crash would."""
        proc = self.procs[self.ports.index(port)]
        proc.kill()
        proc.wait()

    def wait_promoted(self, dead: int, key: str, timeout: float = 30.0) -> int:
        """Wait until a replica serves key's slot in place of the dead master and the cluster is
        ok again; returns the new master's port."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                port = self.master_of(key)
                if port != dead:
                    self._wait_ok(max(deadline - time.monotonic(), 0.1), replicas=False)  # (the new one has none)
                    return port
            except (LookupError, subprocess.SubprocessError):
                pass
            time.sleep(0.1)
        raise TimeoutError(f"no replica took over from 127.0.0.1:{dead} in {timeout:.0f} s")

    def cli(self, port: int, *args: str) -> str:
        return subprocess.run(["redis-cli", "-p", str(port), *args], check=True, capture_output=True,
                              text=True, timeout=10).stdout

    def keys(self, pattern: str) -> list[str]:
        return [key for port in self.live_ports() if "role:master" in self.cli(port, "info", "replication")
                for key in self.cli(port, "--scan", "--pattern", pattern).split()]

    def shard_channels(self) -> dict[str, int]:
        """Every shard channel subscribed on a live master, and how many subscribers it has."""
        found: dict[str, int] = {}
        for port in self.live_ports():
            for channel in self.cli(port, "pubsub", "shardchannels").split():
                counts = self.cli(port, "pubsub", "shardnumsub", channel).split()
                found[channel] = int(counts[1])
        return found

    def flush(self) -> None:
        for port in self.live_ports():  # our own cluster: nobody else's keys are here
            if "role:master" in self.cli(port, "info", "replication"):  # a replica refuses writes
                self.cli(port, "flushall")

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()  # only the pids we started
                proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)
