"""A whole private stack to break on purpose: PostgreSQL, Redis, the MongoDB stand-in and two
instances, every process started here and faulted only by the pid started here."""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from tests.cluster.cluster_support import PrivateRedisCluster
from tests.faults.proxy import FaultProxy
from tests.support import MongoEmulator, PrivateRedis, ServerProcess, free_port, wait_for_port


def _pg_bin(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))), None)
    if found is None:
        raise RuntimeError(f"{name} not found: install PostgreSQL's server binaries")
    return found


class PrivatePostgres:
    """A PostgreSQL cluster of our own (initdb), on a free port, run as a non-root user."""

    def __init__(self) -> None:
        self.port = free_port()
        self.base = Path(tempfile.mkdtemp(prefix="nubo-faults-pg-"))
        self.data = self.base / "data"
        self.log = self.base / "server.log"
        self.as_user: list[str] = []
        if os.geteuid() == 0:  # initdb and postgres refuse to run as root
            self.as_user = ["runuser", "-u", "postgres", "--"]
            shutil.chown(self.base, "postgres")
        self.base.chmod(0o755)

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def dsn_for(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def init(self) -> PrivatePostgres:
        subprocess.run(
            [*self.as_user, _pg_bin("initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust",
             "--no-sync", "--no-instructions"],
            check=True, capture_output=True,
        )
        return self

    def start(self) -> PrivatePostgres:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.base} -c fsync=off -c max_connections=200"
        subprocess.run(
            [*self.as_user, _pg_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options,
             "-w", "-t", "30", "start"],
            check=True, capture_output=True,
        )
        wait_for_port(self.port)
        return self

    @property
    def pid(self) -> int:
        return int((self.data / "postmaster.pid").read_text().split()[0])

    def processes(self) -> list[int]:
        """The postmaster and its children (backends, writers): every process of this cluster."""
        pid = self.pid
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        return [pid, *map(int, children)]

    def freeze(self) -> list[int]:
        """Stall the whole cluster (SIGSTOP): connections stay open, nothing answers."""
        frozen = self.processes()
        for pid in frozen:
            os.kill(pid, signal.SIGSTOP)
        return frozen

    @staticmethod
    def thaw(frozen: list[int]) -> None:
        for pid in frozen:
            os.kill(pid, signal.SIGCONT)

    def stop(self) -> None:
        """Down at once, as a crash would leave it (its pid file says which process is ours)."""
        if (self.data / "postmaster.pid").exists():
            subprocess.run(
                [*self.as_user, _pg_bin("pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"],
                check=False, capture_output=True,
            )

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)


@dataclass
class Stack:
    """The private services and the instances running on them."""

    pg: PrivatePostgres
    mongo: MongoEmulator
    env: dict[str, str]
    redis: PrivateRedis | None = None  # one Redis, or
    cluster: PrivateRedisCluster | None = None  # a Redis Cluster
    direct_env: dict[str, str] = field(default_factory=dict)  # env, reaching the stores without proxies
    redis_proxy: FaultProxy | None = None  # between the instances and Redis (proxied_stack)
    pg_proxy: FaultProxy | None = None  # between the instances and PostgreSQL (proxied_stack)
    servers: list[ServerProcess] = field(default_factory=list)

    def start_server(self, **env: str) -> ServerProcess:
        server = ServerProcess({**self.env, **env}).start()
        self.servers.append(server)
        return server

    def freeze_mongo(self) -> None:
        assert self.mongo.proc is not None
        os.kill(self.mongo.proc.pid, signal.SIGSTOP)

    def thaw_mongo(self) -> None:
        assert self.mongo.proc is not None
        os.kill(self.mongo.proc.pid, signal.SIGCONT)

    def freeze_redis(self) -> None:
        assert self.redis is not None and self.redis.proc is not None
        os.kill(self.redis.proc.pid, signal.SIGSTOP)

    def thaw_redis(self) -> None:
        assert self.redis is not None and self.redis.proc is not None
        os.kill(self.redis.proc.pid, signal.SIGCONT)

    def stop(self) -> None:
        for server in self.servers:
            server.stop(timeout=5)
        if self.mongo.proc is not None and self.mongo.proc.poll() is None:
            os.kill(self.mongo.proc.pid, signal.SIGCONT)
        if self.redis is not None and self.redis.proc is not None and self.redis.proc.poll() is None:
            os.kill(self.redis.proc.pid, signal.SIGCONT)
        self.mongo.stop()
        if self.redis is not None:
            self.redis.stop()
        if self.cluster is not None:
            self.cluster.stop()
