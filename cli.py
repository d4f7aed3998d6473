"""`nubo`: run the server, migrate the stores, mint test tokens, set roles, back up and restore,
show the configuration."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import sys
import time
from functools import partial
from typing import Annotated, Any

import typer

from nubo_backend.settings import Settings, SettingsError, load_settings

app = typer.Typer(help="Nubo backend command line.", no_args_is_help=True, add_completion=False)


def _settings(**overrides: object) -> Settings:
    try:
        settings = load_settings()
        changes = {k: v for k, v in overrides.items() if v is not None}
        settings = settings.replace(**changes) if changes else settings
        settings.check()
        return settings
    except SettingsError as exc:
        _fail(str(exc))


def _fail(message: str, code: int = 1) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def _check_before_serving(settings: Settings) -> None:
    """One line naming what is wrong (a store, the schema), before Sanic starts."""
    from nubo_backend.serving.preflight import EXIT_CANNOT_START, NotMigrated, StartupError, check_before_serving

    try:
        asyncio.run(check_before_serving(settings))
    except StartupError as exc:
        if exc.permanent:
            _fail(str(exc), EXIT_CANNOT_START)
        # Still down after the whole window, but it may come back: a supervisor may retry.
        _fail(f"{exc}; start it or set {exc.setting} (gave up after {settings.startup_timeout:g}s)")
    except NotMigrated as exc:
        _fail(str(exc), EXIT_CANNOT_START)


@app.command()
def serve(
    host: str = typer.Option(None, help="Interface to bind (default from NUBO_HOST)."),
    port: int = typer.Option(None, help="Port of the first instance (default from NUBO_PORT; 0: any free port)."),
    workers: int = typer.Option(None, help="Worker processes sharing one port."),
    instances: int = typer.Option(
        1,
        min=1,
        help="Independent instances on consecutive ports, as if on separate machines: "
        "one that crashes is restarted alone while the others keep serving.",
    ),
    metrics_port: int = typer.Option(
        None, help="Port of the Prometheus /metrics endpoint (default from NUBO_METRICS_PORT; unset or 0: off; "
        "with --instances N, instance i uses this + i - 1).",
    ),
) -> None:
    """Run the API and WebSocket server."""
    settings = _settings(host=host, port=port, workers=workers, metrics_port=metrics_port)
    if instances > 1:
        _serve_instances(settings, instances)
        return
    from nubo_backend.observability.exporter import multiprocess_dir
    from nubo_backend.serving.binding import BindError, bind_listener, bound_port
    from nubo_backend.serving.preflight import EXIT_CANNOT_START

    if settings.workers > 1 and settings.port == 0:
        _fail("--port 0 needs a single worker: workers share one known port", EXIT_CANNOT_START)
    _check_before_serving(settings)
    try:
        sock = bind_listener(settings.host, settings.port)
    except BindError as exc:
        _fail(str(exc), EXIT_CANNOT_START)
    # Workers write their metrics to files their parent serves (observability/exporter.py).
    shared_metrics = settings.metrics_port and settings.workers > 1
    with multiprocess_dir() if shared_metrics else contextlib.nullcontext():
        _run_sanic(settings, sock, bound_port(sock))


def _run_sanic(settings: Settings, sock: socket.socket, port: int) -> None:
    from sanic import Sanic
    from sanic.worker.loader import AppLoader

    from nubo_backend.app import create_app

    loader = AppLoader(factory=partial(create_app, settings))
    sanic_app = loader.load()
    single = settings.workers <= 1
    # One process serves the socket bound above; worker processes bind the (checked) port
    # themselves, as Sanic's multiplexer expects.
    if not single:
        sock.close()
    sanic_app.prepare(
        host=None if single else settings.host,
        port=None if single else port,
        sock=sock if single else None,
        workers=max(settings.workers, 1),
        single_process=single,
        motd=False,
        access_log=False,
    )
    exporter = _start_metrics(settings)
    # A log line, not an echo: in production every line on stderr is JSON.
    url = f"http://{settings.host}:{port}"
    logging.getLogger("nubo.app").info(f"nubo listening on {url} (pid {os.getpid()})", extra={"url": url})
    try:
        if single:
            Sanic.serve_single(primary=sanic_app)
        else:
            from nubo_backend.serving import workers

            workers.serve(sanic_app, loader)
    finally:
        if exporter is not None:
            from nubo_backend.observability.exporter import stop_exporter

            stop_exporter(exporter)


def _start_metrics(settings: Settings) -> Any:
    """The /metrics endpoint on its own port, when NUBO_METRICS_PORT (or --metrics-port) asks for one."""
    if not settings.metrics_port:
        return None
    from nubo_backend.observability.exporter import MetricsBindError, start_exporter
    from nubo_backend.serving.preflight import EXIT_CANNOT_START

    try:
        server, port = start_exporter(settings.host, settings.metrics_port)
    except MetricsBindError as exc:
        _fail(str(exc), EXIT_CANNOT_START)
    url = f"http://{settings.host}:{port}/metrics"
    logging.getLogger("nubo.app").info(f"nubo metrics on {url}", extra={"metrics_url": url})
    return server


# An instance still up this long after its own graceful shutdown (shutdown_grace) is stuck,
# and is killed rather than waited for forever.
STOP_MARGIN_SECONDS = 10


def _serve_instances(settings: Settings, count: int) -> None:
    from nubo_backend.serving.supervisor import supervise

    if settings.port == 0:
        _fail("--instances needs a fixed --port: instance i listens on port + i - 1")
    ports = [settings.port + i for i in range(count)]
    if ports[-1] > 65535:
        _fail(f"ports {ports[0]}-{ports[-1]} go past 65535: choose a lower --port")

    # Each instance its own metrics port, as its own HTTP port (0 for every one: off).
    metrics = {p: settings.metrics_port + i if settings.metrics_port else 0 for i, p in enumerate(ports)}

    def command(port: int) -> list[str]:
        return [sys.executable, "-m", "cli", "serve", "--host", settings.host, "--port", str(port),
                "--metrics-port", str(metrics[port])]

    status = supervise(
        command, settings.host, ports, settings.shutdown_grace + STOP_MARGIN_SECONDS, lambda line: typer.echo(line),
        metrics_ports=metrics,
    )
    raise typer.Exit(status)


@app.command()
def migrate(
    status: bool = typer.Option(False, "--status", help="List applied and pending migrations."),
) -> None:
    """Apply pending PostgreSQL migrations and ensure MongoDB indexes (TTL included).
    Both stores are reached before either is changed."""
    from nubo_backend.serving.preflight import StartupError, migrate_all_stores
    from nubo_backend.stores.migrations import MigrationError
    from nubo_backend.stores.migrations import status as migration_status

    settings = _settings()
    try:
        if status:
            for row in asyncio.run(migration_status(settings.postgres_dsn)):
                state = f"applied {row.applied_at}" if row.applied_at else "pending"
                typer.echo(f"{row.filename:<40} {state}")
            return
        applied, indexes = asyncio.run(
            migrate_all_stores(settings, on_apply=lambda m: typer.echo(f"applying {m.filename} ..."))
        )
    except (MigrationError, StartupError) as exc:
        _fail(str(exc))
    except Exception as exc:  # noqa: BLE001 - surface driver errors as one line, not a trace
        from nubo_backend.stores import short_reason

        _fail(short_reason(exc))
    typer.echo(f"PostgreSQL: {len(applied)} migration(s) applied" if applied else "PostgreSQL: up to date")
    for index in indexes:
        typer.echo(f"MongoDB index ready: {index}")


@app.command()
def token(
    user: str = typer.Argument(..., help="Username or numeric id of the account."),
    ttl: int = typer.Option(None, "--ttl", help="Access token lifetime in seconds (in production at most "
                            "NUBO_ACCESS_TOKEN_TTL)."),
    create: bool = typer.Option(
        False, "--create", help="Create the account first if it does not exist (test accounts)."
    ),
) -> None:
    """Print an access token the running server accepts (backed by a revocable session).

    Reads the same settings as `nubo serve` (NUBO_* > .env > config/): give it the server's
    NUBO_REDIS_URL, NUBO_REDIS_NAMESPACE and NUBO_JWT_SECRET, or the server will not know the token."""
    from nubo_backend.auth.minting import MintError, mint_token

    settings = _settings()
    lifetime = settings.access_token_ttl if ttl is None else ttl
    try:
        minted = asyncio.run(mint_token(settings, user, lifetime, create=create))
    except MintError as exc:
        _fail(str(exc))
    if minted.password is not None:
        typer.echo(f"created user {minted.username} (id {minted.user_id}), password {minted.password}", err=True)
    typer.echo(minted.token)
    typer.echo(
        f"token for {minted.username} (id {minted.user_id}), valid {lifetime}s; "
        f"session in Redis namespace {settings.redis_namespace or '(none)'!r}",
        err=True,
    )


@app.command()
def role(
    user: str = typer.Argument(..., metavar="USER", help="Username or numeric id of the account."),
    new_role: str = typer.Argument(..., metavar="ROLE", help="moderator or user."),
) -> None:
    """Make an account a moderator, or a user again (docs/moderation.md)."""
    from nubo_backend.moderation.roles import RoleError, set_role

    settings = _settings()
    try:
        change = asyncio.run(set_role(settings, user, new_role))
    except RoleError as exc:
        _fail(str(exc))
    typer.echo(f"{change.username} (id {change.user_id}): {change.before} -> {change.after}")


outbox_app = typer.Typer(help="Events the relay set aside (docs/realtime.md).", no_args_is_help=True)
app.add_typer(outbox_app, name="outbox")


@outbox_app.command("list")
def outbox_list() -> None:
    """Outbox rows set aside after bounded failed attempts, and why."""
    from nubo_backend.outbox.set_aside import list_set_aside

    rows = asyncio.run(list_set_aside(_settings()))
    for row in rows:
        typer.echo(f"{row['id']}  {row['type']}  lane {row['lane']}  recipients {row['recipients']}  "
                   f"set aside {row['set_aside_at']:%Y-%m-%d %H:%M:%S}: {row['reason']}")
    typer.echo(f"{len(rows)} row(s) set aside", err=True)


@outbox_app.command("retry")
def outbox_retry(
    ids: Annotated[list[int] | None, typer.Argument(metavar="[ID]...", help="Rows to send again (default: all).")]
    = None,
) -> None:
    """Send set-aside rows again: back at the end of their lanes."""
    from nubo_backend.outbox.set_aside import retry_set_aside

    moved = asyncio.run(retry_set_aside(_settings(), ids or None))
    typer.echo(f"{len(moved)} row(s) back in the outbox")


def _progress(line: str) -> None:
    typer.echo(line, err=True)


@app.command()
def backup(
    to: str = typer.Option(None, "--to", help="A directory or s3://BUCKET/PREFIX (default NUBO_BACKUP_TARGET)."),
    keep: int = typer.Option(None, "--keep", help="Sets to keep, newest first (default NUBO_BACKUP_KEEP)."),
    list_sets: bool = typer.Option(False, "--list", help="List the complete backups, newest first, and exit."),
    check: bool = typer.Option(
        False, "--check", help="Exit 1 unless the newest backup is younger than twice NUBO_BACKUP_INTERVAL."
    ),
    every: float = typer.Option(
        None, "--every", help="Keep running: a backup now, then one every SECONDS (the compose backup service)."
    ),
) -> None:
    """Back up PostgreSQL (pg_dump custom format) and MongoDB (when mongodump is installed),
    then remove the oldest sets beyond --keep. Progress goes to stderr."""
    from nubo_backend.backup import BackupError, check_recent, human_size, list_backups

    settings = _settings()
    try:
        if list_sets:
            for found in list_backups(settings, to):
                mongo = "postgres+mongo" if found.has_mongo else "postgres"
                typer.echo(f"{found.name}  {human_size(found.size_bytes):>9}  {mongo}")
            return
        if check:
            newest = check_recent(settings, to, 2 * settings.backup_interval)
            typer.echo(f"ok: newest backup {newest.name}")
            return
    except BackupError as exc:
        _fail(str(exc))
    if every is None:
        _backup_once(settings, to, keep)
        return
    log = logging.getLogger("nubo.backup")
    from nubo_backend.observability.logs import setup_logging

    setup_logging(settings)
    while True:  # a daemon: stopped by its container (SIGTERM)
        try:
            _backup_once(settings, to, keep)
            pause = every
        except typer.Exit:
            pause = min(every, 300.0)  # a failed round is retried sooner
            log.error("backup failed; next try in %.0f s", pause)
        time.sleep(pause)


def _backup_once(settings: Settings, to: str | None, keep: int | None) -> None:
    from nubo_backend.backup import BackupError, human_size, make_backup

    try:
        result = make_backup(settings, to, keep, _progress)
    except BackupError as exc:
        _fail(str(exc))
    removed = f"; removed {len(result.removed)} old" if result.removed else ""
    typer.echo(
        f"backup {result.backup.name}: {human_size(result.backup.size_bytes)} in {result.target} "
        f"({result.seconds:.1f} s){removed}; {result.mongo_note}"
    )


@app.command()
def restore(
    name: str = typer.Argument("latest", help="The backup to restore (`nubo backup --list`), or latest."),
    source: str = typer.Option(None, "--from", help="A directory or s3://BUCKET/PREFIX (default NUBO_BACKUP_TARGET)."),
    clean: bool = typer.Option(
        False, "--clean", help="Restore into a database that has tables: drop and recreate what the backup holds."
    ),
) -> None:
    """Restore a backup into NUBO_POSTGRES_DSN's database (empty, unless --clean), in one
    transaction, and MongoDB when the backup has it and mongorestore is installed."""
    from nubo_backend.backup import BackupError, restore_backup

    settings = _settings()
    try:
        result = restore_backup(settings, source, name, clean, _progress)
    except BackupError as exc:
        _fail(str(exc))
    typer.echo(f"restored {result.backup.name} into {result.database}; {result.mongo_note}")
    if result.pending_migrations:
        typer.echo(f"{result.pending_migrations} migration(s) pending: run `nubo migrate`")


@app.command("config")
def show_config() -> None:
    """Print the effective settings, secrets masked."""
    try:
        settings = load_settings()
    except SettingsError as exc:
        _fail(str(exc))
    for key, value in settings.masked().items():
        typer.echo(f"{key:<24} {value}")
    try:
        settings.check()
    except SettingsError as exc:
        typer.secho(f"warning: {exc}", fg=typer.colors.YELLOW, err=True)


if __name__ == "__main__":
    app()
