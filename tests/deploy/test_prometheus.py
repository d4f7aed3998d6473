"""deploy/prometheus/ and deploy/grafana/: the alert rules checked and unit-tested by promtool,
every query naming metrics nubo defines, and a real Prometheus (Debian's) scraping two real
instances while the relay's journal is held down, with the backlog alert firing and resolving."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client import REGISTRY

import nubo_backend.observability.metrics  # noqa: F401 - registers every metric
from nubo_backend.stores import Stores, open_stores
from tests.factories import announce_event, make_user
from tests.support import ROOT, MongoEmulator, free_port, jongodb_binary, start_process, wait_for_port

PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
DASHBOARD = ROOT / "deploy" / "grafana" / "nubo.json"


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} not installed: run ./scripts/test (it installs Debian's prometheus)")
    return path


def test_alert_rules_pass_promtool_check_and_their_unit_tests() -> None:
    promtool = _tool("promtool")
    for args in (["check", "rules", "alerts.yml"], ["test", "rules", "alerts_test.yml"]):
        done = subprocess.run([promtool, *args], cwd=PROMETHEUS_DIR, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr


def _defined_metrics() -> set[str]:
    names = set()
    for collector in list(REGISTRY._collector_to_names):  # every registered family and its samples
        for family in collector.describe() if hasattr(collector, "describe") else ():
            names.add(family.name)
            names.update(s.name for s in family.samples)
    for family in REGISTRY.collect():
        names.add(family.name)
        names.update(s.name for s in family.samples)
    return names


def _queried_metrics(expressions: list[str]) -> set[str]:
    return {name for expr in expressions for name in re.findall(r"\b(nubo_[a-z_]+|process_[a-z_]+)\b", expr)}


def test_every_alert_and_panel_queries_metrics_that_exist() -> None:
    defined = _defined_metrics() | {f"{n}_{suffix}" for n in _defined_metrics() for suffix in ("total", "bucket")}
    alerts = yaml.safe_load((PROMETHEUS_DIR / "alerts.yml").read_text())
    rules = [rule["expr"] for group in alerts["groups"] for rule in group["rules"]]
    dashboard = json.loads(DASHBOARD.read_text())
    panels = [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]
    assert len(rules) >= 7 and len(panels) >= 25
    assert _queried_metrics(rules + panels) - defined == set()
    assert {"NuboDeliveryBacklogOld", "NuboRelayStalled", "NuboEventsSetAside", "NuboHigh5xxRate",
            "NuboStoreDown", "NuboSocketsClosingAbnormally", "NuboInstanceDown"} <= {
        rule["alert"] for group in alerts["groups"] for rule in group["rules"]}


class Prometheus:
    """Debian's prometheus on a free port, with a config and rules of the test's own."""

    def __init__(self, workdir: Path, targets: list[str], rules: dict[str, Any]) -> None:
        self.port = free_port()
        (workdir / "alerts.yml").write_text(yaml.safe_dump(rules))
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(workdir / "alerts.yml")],
            "scrape_configs": [{"job_name": "nubo", "static_configs": [{"targets": targets}]}],
        }
        (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.command = [_tool("prometheus"), f"--config.file={workdir / 'prometheus.yml'}",
                        f"--storage.tsdb.path={workdir / 'data'}", f"--web.listen-address=127.0.0.1:{self.port}"]
        self.log = workdir / "prometheus.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Prometheus:
        with self.log.open("wb") as log:
            self.proc = start_process(self.command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_for_port(self.port, timeout=30, proc=self.proc)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def api(self, path: str, **params: str) -> Any:
        reply = httpx.get(f"http://127.0.0.1:{self.port}/api/v1/{path}", params=params, timeout=10).json()
        assert reply["status"] == "success", reply
        return reply["data"]

    def query(self, expr: str) -> float | None:
        result = self.api("query", query=expr)["result"]
        return float(result[0]["value"][1]) if result else None

    def alert_state(self, name: str) -> str:
        states = [a["state"] for a in self.api("alerts")["alerts"] if a["labels"]["alertname"] == name]
        return states[0] if states else "inactive"

    def wait(self, what: str, check: Any, within: float = 40.0) -> None:
        deadline = time.monotonic() + within
        while not check():
            assert time.monotonic() < deadline, f"{what}: not within {within}s\n{self.log.read_text()[-2000:]}"
            time.sleep(0.2)


def _quick(rules: dict[str, Any]) -> dict[str, Any]:
    """The rules as shipped, but the backlog alert at 1 s of age held for 1 s (not 30 s for 1 min)."""
    for group in rules["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") == "NuboDeliveryBacklogOld":
                assert rule["expr"].rstrip().endswith("> 30")
                rule["expr"] = rule["expr"].rstrip()[:-len("30")] + "1"
                rule["for"] = "1s"
    return rules


@pytest.fixture
def private_mongo() -> Iterator[MongoEmulator]:
    binary = jongodb_binary()
    if binary is None:
        pytest.skip("needs the MongoDB emulator (a private one to freeze)")
    mongo = MongoEmulator(binary).start()
    yield mongo
    os.kill(mongo.proc.pid, signal.SIGCONT)
    mongo.stop()


async def test_prometheus_scrapes_two_instances_and_the_backlog_alert_fires_while_the_journal_is_down(
    tmp_path: Path, own_database, stores: Stores, start_patiently, private_mongo: MongoEmulator,
) -> None:
    metrics_ports = [free_port(), free_port()]
    env = {"NUBO_POSTGRES_DSN": own_database.postgres_dsn, "NUBO_MONGO_URL": private_mongo.url,
           "NUBO_MONGO_DB": own_database.mongo_db, "NUBO_METRICS_SAMPLE_INTERVAL": "0.2"}
    for port in metrics_ports:
        start_patiently({**env, "NUBO_METRICS_PORT": str(port)})
    rules = _quick(yaml.safe_load((PROMETHEUS_DIR / "alerts.yml").read_text()))
    prometheus = Prometheus(tmp_path, [f"127.0.0.1:{p}" for p in metrics_ports], rules).start()
    own_stores = await open_stores(own_database.replace(redis_namespace=stores.settings.redis_namespace),
                                   pool_size=2)
    try:
        prometheus.wait("both instances scraped", lambda: prometheus.query('sum(up{job="nubo"})') == 2)
        prometheus.wait("every store up on both", lambda: prometheus.query("sum(nubo_store_up)") == 6)
        groups = prometheus.api("rules")["groups"]
        assert sum(len(g["rules"]) for g in groups) == 7
        assert all(rule["health"] == "ok" for g in groups for rule in g["rules"])
        assert prometheus.alert_state("NuboDeliveryBacklogOld") == "inactive"

        user = await make_user(own_stores)
        os.kill(private_mongo.proc.pid, signal.SIGSTOP)
        try:
            await announce_event(own_stores, [user.id], "post.created", {"post_id": 1})
            prometheus.wait("backlog alert firing",
                            lambda: prometheus.alert_state("NuboDeliveryBacklogOld") == "firing")
            assert prometheus.query("max(nubo_outbox_backlog_events)") == 1
        finally:
            os.kill(private_mongo.proc.pid, signal.SIGCONT)
        prometheus.wait("backlog drained", lambda: prometheus.query("max(nubo_outbox_backlog_events)") == 0)
        prometheus.wait("backlog alert resolved",
                        lambda: prometheus.alert_state("NuboDeliveryBacklogOld") == "inactive")
    finally:
        await own_stores.close()
        prometheus.stop()
