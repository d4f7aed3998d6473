"""One Settings object, loaded once: NUBO_* environment > .env file > config/<env>.toml > config/default.toml."""

from __future__ import annotations

import dataclasses
import os
import secrets
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from dotenv import dotenv_values

from nubo_backend.client_ip import TrustedProxies, TrustedProxiesError

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
SECRET_FIELDS = {"jwt_secret", "media_s3_secret_key", "backup_s3_secret_key"}
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
    redis_max_connections: int = 256  # the pool of one Redis (a burst waits for a free connection)
    mongo_url: str = "mongodb://127.0.0.1:27017"
    mongo_db: str = "nubo"
    mongo_ttl_days: int = 30
    jwt_secret: str = ""
    jwt_secret_file: str = ""
    access_token_ttl: int = 900
    refresh_token_ttl: int = 2592000
    cors_origins: str = ""
    log_level: str = "INFO"
    log_format: str = "text"
    max_body_bytes: int = 1048576
    startup_timeout: float = 30.0
    shutdown_grace: float = 10.0
    argon2_time_cost: int = 3
    argon2_memory_cost: int = 65536
    argon2_parallelism: int = 1
    rate_limit_login: int = 10
    rate_limit_signup: int = 5
    rate_limit_refresh: int = 30
    rate_limit_window: int = 60
    # Issue #26 (docs/security.md, "Limits"): abuse costs the abuser.
    # wrong passwords per account per window, from addresses that never signed in to it
    rate_limit_login_account: int = 100
    broadcast_max_chars: int = 500  # a line of chat
    broadcast_per_user: int = 10  # lines per minute per sender
    broadcast_global: int = 120  # lines per minute for everyone together
    broadcast_senders: str = "auto"  # auto (moderators in production, everyone otherwise) | everyone | moderators
    write_budgets: str = ""  # overrides of auth/budgets.py's table: `post=5/60,search=0/60` (0: unlimited)
    post_max_length: int = 5000
    comment_max_length: int = 2000
    message_max_length: int = 4000
    cache_ttl: int = 300
    session_memo_ttl: float = 5.0
    ws_heartbeat_interval: float = 20.0
    ws_idle_timeout: float = 60.0
    ws_send_queue: int = 256
    ws_rate_limit: int = 20
    ws_user_rate_limit: int = 60  # frames per second across one user's sockets on an instance
    memory_trim_after_bytes: int = 33554432  # large WebSocket traffic before memory is trimmed; 0: never
    memory_trim_idle: float = 1.0  # seconds without large traffic before trimming
    ws_max_connections_per_user: int = 20  # sockets one user may hold across all instances
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
    media_worker_nice: int = 10  # image work yields the CPU to the event loop (0: same priority)
    media_unattached_ttl: int = 86400
    media_sweep_interval: float = 600.0
    trusted_proxies: str = ""  # CIDR list whose X-Forwarded-For is believed (client_ip.py)
    backup_target: str = "var/backups"  # a directory, or s3://bucket/prefix
    backup_keep: int = 7
    backup_interval: float = 86400.0
    backup_mongo: str = "auto"  # auto (when mongodump is installed) | yes | no
    backup_s3_endpoint: str = ""
    backup_s3_region: str = "us-east-1"
    backup_s3_access_key: str = ""
    backup_s3_secret_key: str = ""
    demo_page: str = "auto"  # GET /demo: auto (on unless production), on, off

    @property
    def demo_enabled(self) -> bool:
        return self.demo_page == "on" or (self.demo_page == "auto" and not self.is_production)

    @property
    def write_budget_overrides(self) -> dict[str, tuple[int, int]]:
        """NUBO_WRITE_BUDGETS as {name: (limit, window seconds)}."""
        overrides = {}
        for item in (part.strip() for part in self.write_budgets.split(",")):
            if not item:
                continue
            name, _, figures = item.partition("=")
            limit, _, window = figures.partition("/")
            if not (name.strip() and limit.strip().isdigit() and window.strip().isdigit() and int(window) > 0):
                raise SettingsError(f"NUBO_WRITE_BUDGETS: {item!r} is not name=limit/seconds, e.g. post=30/3600")
            overrides[name.strip()] = (int(limit), int(window))
        return overrides

    @property
    def broadcast_moderators_only(self) -> bool:
        return self.broadcast_senders == "moderators" or (self.broadcast_senders == "auto" and self.is_production)

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    def check(self) -> None:
        """Refuse settings that are unsafe or unusable; raise SettingsError saying what to set."""
        if self.env not in ENVIRONMENTS:
            raise SettingsError(f"NUBO_ENV must be one of {', '.join(ENVIRONMENTS)}, not {self.env!r}")
        self.write_budget_overrides  # noqa: B018 - raises SettingsError when malformed
        if self.broadcast_senders not in ("auto", "everyone", "moderators"):
            raise SettingsError(f"NUBO_BROADCAST_SENDERS must be auto, everyone or moderators, "
                                f"not {self.broadcast_senders!r}")
        if self.demo_page not in ("auto", "on", "off"):
            raise SettingsError(f"NUBO_DEMO_PAGE must be auto, on or off, not {self.demo_page!r}")
        if self.is_production and (
            self.jwt_secret in DEV_SECRETS or len(self.jwt_secret) < MIN_SECRET_LENGTH
        ):
            raise SettingsError(
                "NUBO_JWT_SECRET is missing or insecure: in production set it to a random value "
                f"of at least {MIN_SECRET_LENGTH} characters, e.g. `openssl rand -hex 32`, or point "
                "NUBO_JWT_SECRET_FILE at a writable path to have one generated there"
            )
        if not self.jwt_secret:
            raise SettingsError("NUBO_JWT_SECRET is empty: set it in the environment or in .env")
        if self.media_backend not in MEDIA_BACKENDS:
            raise SettingsError(f"NUBO_MEDIA_BACKEND must be one of {', '.join(MEDIA_BACKENDS)}, "
                                f"not {self.media_backend!r}")
        if self.media_backend == "s3" and not self.media_s3_bucket:
            raise SettingsError("NUBO_MEDIA_S3_BUCKET is empty: the s3 media backend needs a bucket")
        if not 0 <= self.media_worker_nice <= 19:
            raise SettingsError(f"NUBO_MEDIA_WORKER_NICE must be 0 to 19 (how far image work yields the CPU "
                                f"to the event loop), not {self.media_worker_nice}")
        try:
            TrustedProxies.parse(self.trusted_proxies)
        except TrustedProxiesError as exc:
            raise SettingsError(str(exc)) from None

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


def read_or_create_secret(path: Path) -> str:
    """The signing secret kept in path, generated there on first use (0600, never replaced):
    `docker compose up` on a fresh clone needs no secret pasted, and restarts keep tokens valid.
    Written aside, then linked into place: a process starting beside this one (another
    replica on the same volume) reads a whole secret or none, never a half-written file."""
    if path.is_file():
        return path.read_text().strip()
    value = secrets.token_hex(32)
    aside = path.with_name(f".{path.name}.{os.getpid()}")
    try:
        fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(value + "\n")
        os.link(aside, path)
    except FileExistsError:
        return path.read_text().strip()  # another process linked its secret first
    except OSError as exc:
        raise SettingsError(
            f"cannot create NUBO_JWT_SECRET_FILE {path}: {exc.strerror}; make its directory writable "
            "or set NUBO_JWT_SECRET"
        ) from None
    finally:
        aside.unlink(missing_ok=True)
    return value


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
        # An empty value means "not set here": `NUBO_JWT_SECRET=` in a copied .env must not
        # hide the layer below (every setting whose default is empty stays empty anyway).
        var = f"NUBO_{key.upper()}"
        return environ.get(var) or dotenv.get(var) or None

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
    if not typed.get("jwt_secret") and typed.get("jwt_secret_file"):
        typed["jwt_secret"] = read_or_create_secret(Path(typed["jwt_secret_file"]))
    return Settings(**typed)
