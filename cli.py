"""`nubo`: run the server, migrate the stores, mint test tokens, show the configuration."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from functools import partial

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


def _wait_for_stores(settings: Settings) -> None:
    """Fail fast with one line naming the unreachable store, before Sanic starts."""
    from nubo_backend.stores import StartupError, open_stores

    async def probe() -> None:
        stores = await open_stores(settings, pool_size=1)
        await stores.close()

    try:
        asyncio.run(probe())
    except StartupError as exc:
        _fail(f"{exc} (gave up after {settings.startup_timeout:g}s)")


@app.command()
def serve(
    host: str = typer.Option(None, help="Interface to bind (default from NUBO_HOST)."),
    port: int = typer.Option(None, help="Port of the first instance (default from NUBO_PORT)."),
    workers: int = typer.Option(None, help="Worker processes sharing one port."),
    instances: int = typer.Option(
        1, min=1, help="Independent instances on consecutive ports, as if on separate machines."
    ),
) -> None:
    """Run the API and WebSocket server."""
    settings = _settings(host=host, port=port, workers=workers)
    if instances > 1:
        _serve_instances(settings, instances)
        return
    _wait_for_stores(settings)
    from sanic import Sanic
    from sanic.worker.loader import AppLoader

    from nubo_backend.app import create_app

    loader = AppLoader(factory=partial(create_app, settings))
    sanic_app = loader.load()
    single = settings.workers <= 1
    sanic_app.prepare(
        host=settings.host,
        port=settings.port,
        workers=max(settings.workers, 1),
        single_process=single,
        motd=False,
        access_log=False,
    )
    typer.echo(f"nubo listening on http://{settings.host}:{settings.port} (pid {os.getpid()})", err=True)
    if single:
        Sanic.serve_single(primary=sanic_app)
    else:
        Sanic.serve(primary=sanic_app, app_loader=loader)


# Sanic's own graceful shutdown (GRACEFUL_SHUTDOWN_TIMEOUT) is 15 s; an instance still up
# well after that is stuck, and is killed rather than waited for forever.
STOP_GRACE_SECONDS = 20


def _serve_instances(settings: Settings, count: int) -> None:
    """Start `count` single-instance servers on consecutive ports; Ctrl-C stops them all."""
    children: list[subprocess.Popen[bytes]] = []
    for i in range(count):
        port = settings.port + i
        cmd = [sys.executable, "-m", "cli", "serve", "--host", settings.host, "--port", str(port)]
        children.append(subprocess.Popen(cmd))
        typer.echo(f"instance {i + 1}/{count}: http://{settings.host}:{port}  (pid {children[-1].pid})")
    stop_deadline: float | None = None

    def stop(*_: object) -> None:
        nonlocal stop_deadline
        if stop_deadline is None:
            stop_deadline = time.monotonic() + STOP_GRACE_SECONDS
            for child in children:
                if child.poll() is None:
                    child.send_signal(signal.SIGINT)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    status = 0
    try:
        while any(child.poll() is None for child in children):
            if any(child.poll() not in (None, 0) for child in children):
                status = 1
                stop()
            if stop_deadline is not None and time.monotonic() > stop_deadline:
                break
            time.sleep(0.2)
    finally:
        stop()
        for child in children:
            try:
                child.wait(timeout=max(0.0, (stop_deadline or 0) - time.monotonic()))
            except subprocess.TimeoutExpired:
                typer.echo(f"instance pid {child.pid} did not stop within {STOP_GRACE_SECONDS}s; killed", err=True)
                child.kill()
                child.wait()
                status = 1
    raise typer.Exit(status)


@app.command()
def migrate(
    status: bool = typer.Option(False, "--status", help="List applied and pending migrations."),
) -> None:
    """Apply pending PostgreSQL migrations and ensure MongoDB indexes (TTL included)."""
    from nubo_backend.migrations import MigrationError
    from nubo_backend.migrations import migrate as run_migrations
    from nubo_backend.migrations import status as migration_status

    settings = _settings()
    try:
        if status:
            for row in asyncio.run(migration_status(settings.postgres_dsn)):
                state = f"applied {row.applied_at}" if row.applied_at else "pending"
                typer.echo(f"{row.filename:<40} {state}")
            return
        applied = asyncio.run(
            run_migrations(
                settings.postgres_dsn, on_apply=lambda m: typer.echo(f"applying {m.filename} ...")
            )
        )
        typer.echo(f"PostgreSQL: {len(applied)} migration(s) applied" if applied else "PostgreSQL: up to date")
        for index in asyncio.run(_ensure_mongo_indexes(settings)):
            typer.echo(f"MongoDB index ready: {index}")
    except MigrationError as exc:
        _fail(str(exc))
    except (TimeoutError, OSError) as exc:
        _fail(f"cannot reach a store: {exc}")
    except Exception as exc:  # noqa: BLE001 - surface driver errors as one line, not a trace
        _fail(f"{type(exc).__name__}: {exc}")


async def _ensure_mongo_indexes(settings: Settings) -> list[str]:
    from nubo_backend.stores import StartupError, mongo, retry

    client = mongo.open_client(settings.mongo_url)
    try:
        deadline = time.monotonic() + settings.startup_timeout
        await retry("MongoDB", settings.mongo_url, lambda: mongo.check(client), deadline)
        return await mongo.ensure_indexes(client[settings.mongo_db], settings.mongo_ttl_days * 86400)
    except StartupError as exc:
        raise OSError(str(exc)) from exc
    finally:
        await client.close()


@app.command()
def token(
    sub: int = typer.Option(..., "--sub", help="User id the token is for."),
    ttl: int = typer.Option(None, "--ttl", help="Access token lifetime in seconds."),
) -> None:
    """Print an access token the running server accepts (backed by a revocable session)."""
    from nubo_backend.auth.sessions import create_session
    from nubo_backend.auth.tokens import mint_access_token
    from nubo_backend.stores import redis as redis_store

    settings = _settings()
    lifetime = ttl or settings.access_token_ttl

    async def mint() -> str:
        client = redis_store.open_client(settings.redis_url)
        try:
            session = await create_session(
                client,
                redis_store.Keys(settings.redis_namespace),
                sub,
                max(lifetime, settings.refresh_token_ttl),
                user_agent="nubo token",
            )
        finally:
            await client.aclose()
        jwt_token, _ = mint_access_token(settings.jwt_secret, sub, session.session_id, lifetime)
        return jwt_token

    try:
        typer.echo(asyncio.run(mint()))
    except OSError as exc:
        _fail(f"Redis unreachable at {settings.redis_url}: {exc}")


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
