from pathlib import Path

import pytest

from nubo_backend.settings import SettingsError, load_settings, mask_url


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_defaults_come_from_config_directory(tmp_path: Path) -> None:
    settings = load_settings(environ={}, env_file=tmp_path / "none")
    assert settings.env == "development"
    assert settings.port == 8080
    assert settings.jwt_secret == "dev-insecure-secret-never-use-in-production"


def test_environment_beats_dotenv_beats_config(tmp_path: Path) -> None:
    env_file = write(tmp_path / ".env", "NUBO_PORT=9000\nNUBO_LOG_LEVEL=DEBUG\n")
    settings = load_settings(environ={"NUBO_PORT": "9100"}, env_file=env_file)
    assert settings.port == 9100  # process environment wins
    assert settings.log_level == "DEBUG"  # .env beats config/
    assert settings.access_token_ttl == 900  # config/default.toml


def test_env_mode_selects_its_config_file(tmp_path: Path) -> None:
    settings = load_settings(environ={"NUBO_ENV": "production"}, env_file=tmp_path / "none")
    assert settings.log_format == "json"
    assert settings.host == "0.0.0.0"


def test_production_refuses_missing_secret(tmp_path: Path) -> None:
    settings = load_settings(environ={"NUBO_ENV": "production"}, env_file=tmp_path / "none")
    with pytest.raises(SettingsError, match="NUBO_JWT_SECRET"):
        settings.check()


def test_production_refuses_development_secret(tmp_path: Path) -> None:
    settings = load_settings(
        environ={"NUBO_ENV": "production", "NUBO_JWT_SECRET": "dev-insecure-secret-never-use-in-production"},
        env_file=tmp_path / "none",
    )
    with pytest.raises(SettingsError, match="openssl rand"):
        settings.check()


def test_production_accepts_a_long_random_secret(tmp_path: Path) -> None:
    settings = load_settings(
        environ={"NUBO_ENV": "production", "NUBO_JWT_SECRET": "x7" * 32},
        env_file=tmp_path / "none",
    )
    settings.check()


def test_bad_number_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="NUBO_PORT"):
        load_settings(environ={"NUBO_PORT": "eighty"}, env_file=tmp_path / "none")


def test_masked_hides_secret_and_url_passwords(tmp_path: Path) -> None:
    settings = load_settings(
        environ={
            "NUBO_JWT_SECRET": "supersecret",
            "NUBO_POSTGRES_DSN": "postgresql://nubo:hunter2@db:5432/nubo",
        },
        env_file=tmp_path / "none",
    )
    shown = settings.masked()
    assert shown["jwt_secret"] == "****"
    assert shown["postgres_dsn"] == "postgresql://nubo:****@db:5432/nubo"
    assert "hunter2" not in str(shown)


def test_mask_url_leaves_passwordless_urls_alone() -> None:
    assert mask_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"


def test_a_copied_env_example_changes_no_setting(tmp_path: Path) -> None:
    from tests.support import ROOT

    copied = load_settings(environ={}, env_file=ROOT / ".env.example")
    assert copied == load_settings(environ={}, env_file=tmp_path / "none")


def test_production_refuses_the_old_env_example_placeholder(tmp_path: Path) -> None:
    settings = load_settings(
        environ={"NUBO_ENV": "production", "NUBO_JWT_SECRET": "replace-me-with-openssl-rand-hex-32"},
        env_file=tmp_path / "none",
    )
    with pytest.raises(SettingsError, match="NUBO_JWT_SECRET"):
        settings.check()


def test_secret_file_is_generated_once_and_kept(tmp_path: Path) -> None:
    env = {"NUBO_ENV": "production", "NUBO_JWT_SECRET_FILE": str(tmp_path / "jwt_secret")}
    first = load_settings(environ=env, env_file=tmp_path / "none")
    first.check()  # strong enough for production
    assert (tmp_path / "jwt_secret").stat().st_mode & 0o777 == 0o600
    assert load_settings(environ=env, env_file=tmp_path / "none").jwt_secret == first.jwt_secret


def test_a_supplied_secret_wins_over_the_secret_file(tmp_path: Path) -> None:
    env = {"NUBO_ENV": "production", "NUBO_JWT_SECRET": "s3" * 20, "NUBO_JWT_SECRET_FILE": str(tmp_path / "f")}
    assert load_settings(environ=env, env_file=tmp_path / "none").jwt_secret == "s3" * 20
    assert not (tmp_path / "f").exists()


def test_a_weak_secret_in_the_secret_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("change-me\n")
    env = {"NUBO_ENV": "production", "NUBO_JWT_SECRET_FILE": str(tmp_path / "f")}
    with pytest.raises(SettingsError, match="NUBO_JWT_SECRET"):
        load_settings(environ=env, env_file=tmp_path / "none").check()


def test_link_preview_allow_private_reads_true_and_false_and_refuses_other_words(tmp_path: Path) -> None:
    none = tmp_path / "none"
    assert load_settings(environ={"NUBO_LINK_PREVIEW_ALLOW_PRIVATE": "true"}, env_file=none).link_preview_allow_private
    assert not load_settings(environ={"NUBO_LINK_PREVIEW_ALLOW_PRIVATE": "0"}, env_file=none).link_preview_allow_private
    with pytest.raises(SettingsError, match="NUBO_LINK_PREVIEW_ALLOW_PRIVATE"):
        load_settings(environ={"NUBO_LINK_PREVIEW_ALLOW_PRIVATE": "maybe"}, env_file=none)


def test_production_refuses_link_previews_from_private_addresses(tmp_path: Path) -> None:
    settings = load_settings(environ={"NUBO_ENV": "production", "NUBO_JWT_SECRET": "x" * 40,
                                      "NUBO_LINK_PREVIEW_ALLOW_PRIVATE": "true"}, env_file=tmp_path / "none")
    with pytest.raises(SettingsError, match="never in production"):
        settings.check()
