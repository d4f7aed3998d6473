"""One Settings object, loaded once: NUBO_* environment > .env file > config/<env>.toml > config/default.toml."""

from __future__ import annotations

import dataclasses
import os
import secrets
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from dotenv import dotenv_values

from nubo_backend.edge.client_ip import TrustedProxies, TrustedProxiesError

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
SECRET_FIELDS = {"jwt_secret", "media_s3_secret_key", "backup_s3_secret_key", "backup_signing_key",
                 "push_vapid_private_key"}
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
    # Delivery for any audience (issue #24; nubo_backend/outbox/).
    relay_lanes: int = 4  # personal lanes (and as many audience lanes); change with an empty outbox
    relay_batch_deliveries: int = 2000  # journal documents and publishes per relay batch, at most
    relay_batch_timeout: float = 10.0  # a batch that takes longer fails and is retried smaller
    group_max_members: int = 1000  # members of one group conversation, owner included
    media_backend: str = "disk"
    media_disk_path: str = "var/media"
    media_s3_bucket: str = ""
    media_s3_endpoint: str = ""
    media_s3_region: str = "us-east-1"
    media_s3_access_key: str = ""
    media_s3_secret_key: str = ""
    media_max_upload_bytes: int = 10485760
    media_max_pixels: int = 40000000  # JPEG (decoded at reduced scale)
    media_max_pixels_decoded: int = 16000000  # PNG, WebP, GIF (decoded whole: 64 MB as RGBA)
    media_uploads_per_hour: int = 60
    media_original_side: int = 2048
    media_thumbnail_side: int = 400
    media_workers: int = 1
    media_worker_memory: int = 536870912  # address space per image worker process, bytes (0: none)
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
    # HMAC key of the backup manifests, kept outside the bucket: a restore from a bucket trusts
    # a set only when its manifest is signed with it (backup/signing.py).
    backup_signing_key: str = ""
    demo_page: str = "auto"  # GET /demo: auto (on unless production), on, off
    # Issue #28, accounts people can get back into (docs/accounts.md): mail, verification,
    # password reset, e-mail change, two-factor sign-in.
    smtp_url: str = ""  # smtp:// (STARTTLS when offered), smtp+starttls:// (required), smtps://; empty: mail waits
    mail_from: str = "Nubo <no-reply@nubo.localhost>"
    public_url: str = "http://127.0.0.1:8080"  # the base of links in mails
    mail_timeout: float = 20.0  # seconds one delivery may take (connect, TLS, DATA)
    mail_retry_base: float = 5.0  # the first retry's delay; doubled at every failure
    mail_retry_max: float = 3600.0
    mail_max_attempts: int = 12  # then the mail is dropped (logged): about 3.5 hours of retries
    email_verification: str = "optional"  # required: unverified accounts may not post or message
    verify_token_ttl: int = 172800  # e-mail verification and e-mail change links: 2 days
    reset_token_ttl: int = 1800  # password reset links: 30 minutes
    mfa_token_ttl: int = 300  # between the password and the second factor at login
    rate_limit_mail: int = 3  # mails asked per e-mail address and per account per hour
    rate_limit_mail_ip: int = 20  # mail-sending requests per client address per hour
    rate_limit_2fa: int = 5  # second-factor codes per account (and per address) per rate_limit_window
    # Push notifications (issue 29; nubo_backend/push/, docs/push.md).
    push_vapid_private_key: str = ""  # PEM (or base64url of the raw P-256 scalar); wins over the file
    push_vapid_key_file: str = "var/vapid_private.pem"  # made there on first start when no key is given
    push_vapid_subject: str = "mailto:push@nubo.invalid"  # RFC 8292 `sub`: how a push service reaches us
    push_allow_private_endpoints: bool = False  # tests and development: http:// and loopback endpoints
    push_grace: float = 0.5  # seconds a live socket has to take an event before a push is considered
    push_preview: bool = True  # a short preview of the text in the payload (off: kind and ids only)
    push_ttl: int = 86400  # seconds a push may wait (offline phone, retries) before it is dropped
    push_timeout: float = 10.0  # one request to a push service
    push_concurrency: int = 64  # requests in flight per instance
    push_origin_concurrency: int = 16  # of which to any one push service (a slow one holds only these)
    push_retry_base: float = 1.0  # first retry delay; doubles per attempt (Retry-After wins when longer)
    push_retry_max: float = 300.0
    push_apns_url: str = "https://api.push.apple.com"
    push_apns_key_file: str = ""  # the .p8 signing key; APNs is off without it
    push_apns_key_id: str = ""
    push_apns_team_id: str = ""
    push_apns_topic: str = ""  # the app's bundle id
    push_fcm_url: str = "https://fcm.googleapis.com"
    push_fcm_service_account_file: str = ""  # the service account JSON; FCM is off without it
    # Issue #31: link preview cards (nubo_backend/previews/, docs/security.md).
    link_preview_allow_private: bool = False  # tests and development only: fetch from 127.0.0.1 and the like
    link_preview_timeout: float = 5.0  # seconds for a whole fetch, redirects included
    link_preview_max_bytes: int = 1048576  # of a page read; the head is what a card needs
    link_preview_max_redirects: int = 3
    link_preview_cache_ttl: int = 86400  # seconds a URL's card (or failure) is reused
    # Issue #25 (faults that do not announce themselves): every store call bounded, even on a
    # connection gone silent mid-transaction (docs/reliability.md), and what /ready watches.
    postgres_command_timeout: float = 5.0  # seconds one statement may take, ROLLBACK included
    postgres_idle_in_transaction_timeout: float = 10.0  # server ends a transaction left idle this long
    redis_command_timeout: float = 2.0  # seconds for one Redis reply; a stall is then a 503
    redis_pool_timeout: float = 2.0  # seconds a request waits for a free pooled connection (a burst)
    redis_health_check_interval: float = 5.0  # an idle pooled connection is PINGed before reuse
    bus_ping_interval: float = 2.0  # the Pub/Sub subscriber PINGs this often when nothing arrives
    bus_ping_timeout: float = 3.0  # no answer this long after a PING: the subscriber reconnects
    ready_bus_silence: float = 10.0  # /ready fails once the bus has been away this long
    ready_outbox_age: float = 30.0  # /ready fails once the oldest outbox row is this old
    redis_eviction: str = "refuse"  # an allkeys-* maxmemory-policy at start-up: refuse | warn
    # Observability (issue 30): Prometheus metrics on their own port (0: off; with --instances N,
    # instance i serves them on metrics_port + i - 1), and how often state gauges are sampled.
    # Tracing follows the standard OTEL_* variables instead (observability/tracing.py).
    metrics_port: int = 0
    metrics_sample_interval: float = 5.0

    @property
    def demo_enabled(self) -> bool:
        return self.demo_page == "on" or (self.demo_page == "auto" and not self.is_production)

    @property
    def push_configured(self) -> bool:
        """Whether this instance pushes through any service (push/sender.py runs then)."""
        return bool(self.push_vapid_private_key or self.push_apns_key_file or self.push_fcm_service_account_file)

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
        if self.email_verification not in ("optional", "required"):
            raise SettingsError(f"NUBO_EMAIL_VERIFICATION must be optional or required, "
                                f"not {self.email_verification!r}")
        if not self.public_url.startswith(("http://", "https://")):
            raise SettingsError(f"NUBO_PUBLIC_URL must be an http(s) URL (the base of links in mails), "
                                f"not {self.public_url!r}")
        if self.smtp_url and urlsplit(self.smtp_url).scheme not in ("smtp", "smtps", "smtp+starttls"):
            raise SettingsError("NUBO_SMTP_URL must start with smtp://, smtp+starttls:// or smtps://")
        if self.is_production and self.link_preview_allow_private:
            raise SettingsError("NUBO_LINK_PREVIEW_ALLOW_PRIVATE lets users make the server fetch private "
                                "addresses: never in production")
        if self.redis_eviction not in ("refuse", "warn"):
            raise SettingsError(f"NUBO_REDIS_EVICTION must be refuse or warn, not {self.redis_eviction!r}")
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
        if self.backup_signing_key and len(self.backup_signing_key) < MIN_SECRET_LENGTH:
            raise SettingsError(f"NUBO_BACKUP_SIGNING_KEY must be at least {MIN_SECRET_LENGTH} characters, "
                                "e.g. `openssl rand -hex 32`")
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
        if not 1 <= self.relay_lanes <= 256:
            raise SettingsError(f"NUBO_RELAY_LANES must be 1 to 256, not {self.relay_lanes}")
        if self.relay_batch_deliveries < 1 or self.group_max_members < 2:
            raise SettingsError("NUBO_RELAY_BATCH_DELIVERIES must be at least 1 and NUBO_GROUP_MAX_MEMBERS at least 2")
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
        if kind in (bool, "bool"):
            if isinstance(raw, bool):
                return raw
            if str(raw).lower() in ("1", "true", "yes", "on"):
                return True
            if str(raw).lower() in ("0", "false", "no", "off", ""):
                return False
            raise ValueError(raw)
            return {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}[str(raw).lower()]
        return str(raw)
    except (TypeError, ValueError, KeyError):
        raise SettingsError(f"NUBO_{name.upper()} must be a {kind}, got {raw!r}") from None


def read_or_create_secret(
    path: Path, make: Callable[[], str] = lambda: secrets.token_hex(32), setting: str = "NUBO_JWT_SECRET"
) -> str:
    """The signing secret kept in path, generated there on first use (0600, never replaced):
    `docker compose up` on a fresh clone needs no secret pasted, and restarts keep tokens valid.
    Written aside, then linked into place: a process starting beside this one (another
    replica on the same volume) reads a whole secret or none, never a half-written file."""
    if path.is_file():
        return path.read_text().strip()
    value = make()
    aside = path.with_name(f".{path.name}.{os.getpid()}")
    try:
        fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(value.strip() + "\n")
        os.link(aside, path)
    except FileExistsError:
        return path.read_text().strip()  # another process linked its secret first
    except OSError as exc:
        raise SettingsError(
            f"cannot create {setting}_FILE {path}: {exc.strerror}; make its directory writable "
            f"or set {setting}"
        ) from None
    finally:
        aside.unlink(missing_ok=True)
    return value.strip()  # as it reads back


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
    if not typed.get("push_vapid_private_key") and (vapid_file := typed.get("push_vapid_key_file")):
        from nubo_backend.push.vapid import new_private_key_pem  # (cryptography: only when used)

        path = Path(vapid_file)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError:
            pass  # read_or_create_secret says what to set
        typed["push_vapid_private_key"] = read_or_create_secret(path, new_private_key_pem, "NUBO_PUSH_VAPID_KEY")
    return Settings(**typed)
