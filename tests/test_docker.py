"""No Docker engine runs here, so the compose file and Dockerfile are checked as data."""

from dataclasses import fields

import yaml

from nubo_backend.settings import Settings
from tests.support import ROOT

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def test_stack_has_api_the_three_stores_and_a_mail_catcher() -> None:
    assert set(SERVICES) == {"api", "postgres", "redis", "mongo", "mailcatcher"}
    assert SERVICES["postgres"]["image"] == "postgres:16"
    assert SERVICES["redis"]["image"] == "redis:7"
    assert SERVICES["mongo"]["image"] == "mongo:7"


def test_every_service_has_a_healthcheck() -> None:
    for name, service in SERVICES.items():
        assert "test" in service.get("healthcheck", {}), name


def test_api_mails_to_the_catcher_whose_page_is_published_on_loopback_only() -> None:
    # A NUBO_SMTP_URL in .env or the shell wins (Compose interpolates it).
    assert SERVICES["api"]["environment"]["NUBO_SMTP_URL"] == "${NUBO_SMTP_URL:-smtp://mailcatcher:1025}"
    assert SERVICES["mailcatcher"]["image"].startswith("axllent/mailpit:")
    assert SERVICES["mailcatcher"]["ports"] == ["127.0.0.1:8025:8025"]  # its mails hold sign-in links


def test_api_waits_for_healthy_stores() -> None:
    depends = SERVICES["api"]["depends_on"]
    assert depends == {s: {"condition": "service_healthy"} for s in ("postgres", "redis", "mongo")}


def test_stores_keep_data_in_named_volumes() -> None:
    for name in ("postgres", "redis", "mongo"):
        volume = SERVICES[name]["volumes"][0].split(":")[0]
        assert volume in COMPOSE["volumes"], name


def test_api_runs_without_env_file_and_publishes_8080() -> None:
    assert SERVICES["api"]["env_file"] == [{"path": ".env", "required": False}]
    assert "8080:8080" in SERVICES["api"]["ports"]


def test_api_keeps_a_generated_secret_in_a_named_volume() -> None:
    api = SERVICES["api"]
    secret_file = api["environment"]["NUBO_JWT_SECRET_FILE"]
    volume, mount = api["volumes"][0].split(":")
    assert volume in COMPOSE["volumes"] and secret_file.startswith(mount + "/")
    assert "NUBO_JWT_SECRET" not in api["environment"]  # a supplied one (.env, shell) wins


def test_env_example_documents_every_setting_and_sets_none() -> None:
    lines = (ROOT / ".env.example").read_text().splitlines()
    assert not [line for line in lines if line and not line.startswith("#")]
    documented = {line[2:].split("=")[0] for line in lines if line.startswith("# NUBO_") and "=" in line}
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


def test_the_development_stack_runs_the_image_in_development_mode() -> None:
    # The image defaults to production (no demo page, JSON logs); `docker compose up` is the
    # README's development experience. (docker-compose.prod.yml sets production: test_compose_prod.)
    assert SERVICES["api"]["environment"]["NUBO_ENV"] == "${NUBO_ENV:-development}"
    assert "NUBO_ENV=production" in (ROOT / "Dockerfile").read_text()


def test_the_api_and_backup_images_give_nubo_the_same_pinned_ids() -> None:
    # The backup container reads the API's 0600 signing secret from the shared volume.
    for dockerfile in ("Dockerfile", "deploy/backup.Dockerfile"):
        text = (ROOT / dockerfile).read_text()
        assert "groupadd --system --gid 10001 nubo" in text, dockerfile
        assert "useradd --system --uid 10001 --gid nubo" in text, dockerfile
