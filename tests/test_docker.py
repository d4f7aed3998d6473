"""No Docker engine runs here, so the compose file and Dockerfile are checked as data."""

from dataclasses import fields

import yaml

from nubo_backend.settings import Settings
from tests.support import ROOT

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def test_stack_has_api_and_the_three_stores() -> None:
    assert set(SERVICES) == {"api", "postgres", "redis", "mongo"}
    assert SERVICES["postgres"]["image"] == "postgres:16"
    assert SERVICES["redis"]["image"] == "redis:7"
    assert SERVICES["mongo"]["image"] == "mongo:7"


def test_every_service_has_a_healthcheck() -> None:
    for name, service in SERVICES.items():
        assert "test" in service.get("healthcheck", {}), name


def test_api_waits_for_healthy_stores() -> None:
    depends = SERVICES["api"]["depends_on"]
    assert depends == {s: {"condition": "service_healthy"} for s in ("postgres", "redis", "mongo")}


def test_stores_keep_data_in_named_volumes() -> None:
    for name in ("postgres", "redis", "mongo"):
        volume = SERVICES[name]["volumes"][0].split(":")[0]
        assert volume in COMPOSE["volumes"], name


def test_api_reads_env_file_and_publishes_8080() -> None:
    assert SERVICES["api"]["env_file"] == [".env"]
    assert "8080:8080" in SERVICES["api"]["ports"]


def test_env_example_documents_every_setting() -> None:
    documented = {
        line.split("=")[0]
        for line in (ROOT / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    }
    expected = {f"NUBO_{f.name.upper()}" for f in fields(Settings)}
    assert expected <= documented


def test_dockerfile_is_multi_stage_slim_and_non_root() -> None:
    text = (ROOT / "Dockerfile").read_text()
    stages = [line for line in text.splitlines() if line.startswith("FROM ")]
    assert len(stages) >= 2
    assert "slim" in stages[-1]
    runtime = text.split(stages[-1], 1)[1]
    assert "build-essential" not in runtime
    assert "\nUSER nubo" in runtime
    assert "nubo migrate" in runtime  # migrations before the API serves
