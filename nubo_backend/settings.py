"""One Settings object, loaded once: NUBO_* environment > .env file > config/<env>.toml > config/default.toml."""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from dotenv import dotenv_values

ROOT = Path(os.environ.get("NUBO_ROOT", Path(__file__).resolve().parent.parent))
ENVIRONMENTS = ("development", "test", "production")
DEV_SECRETS = {
    "",
    "dev-insecure-secret-never-use-in-production",
    "replace-me-with-openssl-rand-hex-32",  # .env.example
    "change-me",
    "secret",
    "ta-cle-secrete",  # the seed's
}
MIN_SECRET_LENGTH = 32
SECRET_FIELDS = {"jwt_secret", "media_s3_secret_key"}
MEDIA_BACKENDS = ("disk", "s3")


class SettingsError(Exception):
    """The configuration cannot be used; the message says what to set."""


@dataclass(frozen=True)
class Settings:
    env: str = "development"
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    postgres_dsn: str = "postgresql://postgres@127.0.0.1:5432/nubo"
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_namespace: str = ""
    mongo_url: str = "mongodb://127.0.0.1:27017"
    mongo_db: str = "nubo"
    mongo_ttl_days: int = 30
    jwt_secret: str = ""
    access_token_ttl: int = 900
    refresh_token_ttl: int = 2592000
    cors_origins: str = ""
    log_level: str = "INFO"
    log_format: str = "text"
    max_body_bytes: int = 1048576
    startup_timeout: float = 30.0
    argon2_time_cost: int = 3
    argon2_memory_cost: int = 65536
    argon2_parallelism: int = 1
    rate_limit_login: int = 10
    rate_limit_signup: int = 5
    rate_limit_refresh: int = 30
    rate_limit_window: int = 60
    post_max_length: int = 5000
    comment_max_length: int = 2000
    message_max_length: int = 4000
    cache_ttl: int = 300
    session_memo_ttl: float = 5.0
    ws_heartbeat_interval: float = 20.0
    ws_idle_timeout: float = 60.0
    ws_send_queue: int = 256
    ws_rate_limit: int = 20
    media_backend: str = "disk"
    media_disk_path: str = "var/media"
    media_s3_bucket: str = ""
    media_s3_endpoint: str = ""
    media_s3_region: str = "us-east-1"
    media_s3_access_key: str = ""
    media_s3_secret_key: str = ""
    media_max_upload_bytes: int = 10485760
    media_max_pixels: int = 40000000
    media_uploads_per_hour: int = 60
    media_original_side: int = 2048
    media_thumbnail_side: int = 400
    media_workers: int = 1
    media_unattached_ttl: int = 86400
    media_sweep_interval: float = 600.0

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    def check(self) -> None:
        """Refuse settings that are unsafe or unusable; raise SettingsError saying what to set."""
        if self.env not in ENVIRONMENTS:
            raise SettingsError(f"NUBO_ENV must be one of {', '.join(ENVIRONMENTS)}, not {self.env!r}")
        if self.is_production and (
            self.jwt_secret in DEV_SECRETS or len(self.jwt_secret) < MIN_SECRET_LENGTH
        ):
            raise SettingsError(
                "NUBO_JWT_SECRET is missing or insecure: in production set it to a random value "
                f"of at least {MIN_SECRET_LENGTH} characters, e.g. `openssl rand -hex 32`"
            )
        if not self.jwt_secret:
            raise SettingsError("NUBO_JWT_SECRET is empty: set it in the environment or in .env")
        if self.media_backend not in MEDIA_BACKENDS:
            raise SettingsError(f"NUBO_MEDIA_BACKEND must be one of {', '.join(MEDIA_BACKENDS)}, "
                                f"not {self.media_backend!r}")
        if self.media_backend == "s3" and not self.media_s3_bucket:
            raise SettingsError("NUBO_MEDIA_S3_BUCKET is empty: the s3 media backend needs a bucket")

    def masked(self) -> dict[str, Any]:
        """Effective settings for display, secrets and URL passwords hidden."""
        shown: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in SECRET_FIELDS:
                value = "****" if value else "(unset)"
            elif isinstance(value, str) and "://" in value:
                value = mask_url(value)
            shown[f.name] = value
        return shown

    @property
    def cors_origin_list(self) -> list[str]:
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]


def mask_url(url: str) -> str:
    """Hide the password of a service URL, keep everything else readable."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":****@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _coerce(name: str, raw: Any, kind: Any) -> Any:
    if isinstance(raw, str):
        raw = raw.strip()
    try:
        if kind in (int, "int"):
            return int(raw)
        if kind in (float, "float"):
            return float(raw)
        return str(raw)
    except (TypeError, ValueError):
        raise SettingsError(f"NUBO_{name.upper()} must be a {kind}, got {raw!r}") from None


def _read_toml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    with path.open("rb") as fh:
        return tomllib.load(fh)


def load_settings(
    environ: dict[str, str] | None = None,
    env_file: str | Path | None = None,
    config_dir: str | Path | None = None,
) -> Settings:
    """Build Settings from the layers, highest first: environ, .env, config/<env>.toml, config/default.toml."""
    environ = dict(os.environ if environ is None else environ)
    env_path = Path(env_file or environ.get("NUBO_ENV_FILE", ".env"))
    dotenv = {k: v for k, v in dotenv_values(env_path).items() if v is not None} if env_path.is_file() else {}
    config_path = Path(config_dir or environ.get("NUBO_CONFIG_DIR", ROOT / "config"))

    def layered(key: str) -> str | None:
        var = f"NUBO_{key.upper()}"
        return environ.get(var, dotenv.get(var))

    env = layered("env") or "development"
    values: dict[str, Any] = {}
    values.update(_read_toml(config_path / "default.toml"))
    values.update(_read_toml(config_path / f"{env}.toml"))
    known = {f.name: f for f in fields(Settings)}
    unknown = set(values) - set(known)
    if unknown:
        raise SettingsError(f"unknown keys in {config_path}: {', '.join(sorted(unknown))}")
    for name in known:
        if (raw := layered(name)) is not None:
            values[name] = raw
    values["env"] = env
    typed = {name: _coerce(name, raw, known[name].type) for name, raw in values.items()}
    return Settings(**typed)
