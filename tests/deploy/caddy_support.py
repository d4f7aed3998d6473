"""A real Caddy on 127.0.0.1 running the production Caddyfile (deploy/Caddyfile) in plain
HTTP, in front of instances of our own: the same proxy rules the server gets, minus TLS."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.support import ROOT, free_port, start_process, wait_for_port

CADDYFILE = ROOT / "deploy" / "Caddyfile"


def caddy_binary() -> str:
    """Caddy, installed by scripts/test (ensure_caddy, Debian's package); else skip, saying so."""
    found = shutil.which("caddy")
    if found is None:
        pytest.skip("caddy is not installed: run ./scripts/test (it installs Debian's caddy) or apt-get install caddy")
    return found


def caddy_env(home: Path, **values: str) -> dict[str, str]:
    """What docker-compose.prod.yml gives Caddy, plus a private home for its state."""
    return {
        **os.environ,
        "HOME": str(home),
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_CONFIG_HOME": str(home / "config"),
        "NUBO_ACME_EMAIL": "ops@example.test",
        **values,
    }


class CaddyProxy:
    """`caddy run` on a free loopback port, proxying to the given upstream ports."""

    def __init__(self, upstream_ports: list[int]) -> None:
        self.port = free_port()
        self.admin_port = free_port()
        self.upstreams = " ".join(f"127.0.0.1:{p}" for p in upstream_ports)
        self.home = Path(tempfile.mkdtemp(prefix="nubo-caddy-"))
        self.log_path = self.home / "caddy.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> CaddyProxy:
        env = caddy_env(
            self.home,
            NUBO_DOMAIN=self.url,  # an http:// site address: no certificate, no TLS
            NUBO_UPSTREAMS=self.upstreams,
            NUBO_CADDY_ADMIN=f"127.0.0.1:{self.admin_port}",
        )
        with self.log_path.open("wb") as log:
            self.proc = start_process(
                [caddy_binary(), "run", "--config", str(CADDYFILE), "--adapter", "caddyfile"],
                env=env, stdout=log, stderr=subprocess.STDOUT,
            )
        wait_for_port(self.port, timeout=15, proc=self.proc)
        return self

    def output(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # only the pid we started
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.home, ignore_errors=True)
