"""Real services for every test: a fresh PostgreSQL database, a Redis namespace, a Mongo database.

PostgreSQL and Redis are the machine's (NUBO_TEST_PG_ADMIN_DSN, NUBO_TEST_REDIS_URL).
MongoDB is NUBO_MONGO_URL when it answers, else the wire-protocol emulator that
scripts/test installs. Tests marked `real_mongo` run only against a real server.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from pymongo import AsyncMongoClient

from nubo_backend.auth.budgets import BUDGETS
from nubo_backend.settings import Settings, load_settings
from nubo_backend.stores import Stores, open_stores
from nubo_backend.stores.migrations import migrate
from nubo_backend.stores.mongo import collections, ensure_indexes
from tests.support import MongoEmulator, ServerProcess, jongodb_binary

RUN_ID = f"{os.getpid()}"
PG_ADMIN_DSN = os.environ.get("NUBO_TEST_PG_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("NUBO_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
DB_NAME = f"nubo_test_{RUN_ID}"
MEDIA_DIR = tempfile.mkdtemp(prefix=f"nubo-media-{RUN_ID}-")  # the disk backend's files, this run's own


def _dsn_for(database: str) -> str:
    base, _, _ = PG_ADMIN_DSN.rpartition("/")
    return f"{base}/{database}"


async def _mongo_answers(url: str) -> str | None:
    """The server's version if a MongoDB answers at url, else None."""
    client = AsyncMongoClient(url, serverSelectionTimeoutMS=1500)
    try:
        info = await client.admin.command("buildInfo")
        return str(info.get("version", ""))
    except Exception:  # noqa: BLE001 - unreachable means "start the emulator"
        return None
    finally:
        await client.close()


@pytest.fixture(scope="session")
def mongo_url() -> Iterator[str]:
    url = os.environ.get("NUBO_MONGO_URL")
    if url and asyncio.run(_mongo_answers(url)):
        yield url
        return
    binary = jongodb_binary()
    if binary is None:
        pytest.exit(
            "no MongoDB: set NUBO_MONGO_URL to a running server, or run ./scripts/test, "
            "which installs the wire-protocol emulator",
            returncode=2,
        )
    emulator = MongoEmulator(binary).start()
    yield emulator.url
    emulator.stop()


@pytest.fixture(scope="session")
def real_mongo(mongo_url: str) -> bool:
    version = asyncio.run(_mongo_answers(mongo_url)) or ""
    return "jongodb" not in version


@pytest.fixture(autouse=True)
def _skip_without_real_mongo(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("real_mongo") and not request.getfixturevalue("real_mongo"):
        pytest.skip("needs a real MongoDB server (NUBO_MONGO_URL); the emulator lacks this behaviour")


@pytest.fixture(scope="session")
def test_env(mongo_url: str) -> dict[str, str]:
    """The NUBO_* environment every test process (server, CLI) runs with."""
    return {
        "NUBO_ENV": "test",
        "NUBO_ENV_FILE": "/nonexistent/.env",  # a developer's .env must not leak into tests
        "NUBO_POSTGRES_DSN": _dsn_for(DB_NAME),
        "NUBO_REDIS_URL": REDIS_URL,
        "NUBO_REDIS_NAMESPACE": f"test{RUN_ID}:",
        "NUBO_MONGO_URL": mongo_url,
        "NUBO_MONGO_DB": DB_NAME,
        "NUBO_STARTUP_TIMEOUT": "5",
        "NUBO_MEDIA_DISK_PATH": MEDIA_DIR,
        "NUBO_LOG_LEVEL": os.environ.get("NUBO_TEST_LOG_LEVEL", "INFO"),
        # Tests write in bulk as no person does: the per-account budgets are off, except where a
        # test sets its own (tests/hostile/test_write_budgets.py).
        "NUBO_WRITE_BUDGETS": ",".join(f"{name}=0/60" for name in BUDGETS),
    }


@pytest.fixture(scope="session")
def settings(test_env: dict[str, str]) -> Settings:
    return load_settings(environ=test_env)


@pytest.fixture(scope="session")
async def database(settings: Settings) -> AsyncIterator[str]:
    """A database of this run's own, migrated, dropped at the end."""
    admin = await asyncpg.connect(PG_ADMIN_DSN)
    await admin.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
    await admin.execute(f'CREATE DATABASE "{DB_NAME}"')
    await admin.close()
    await migrate(settings.postgres_dsn)
    yield settings.postgres_dsn
    admin = await asyncpg.connect(PG_ADMIN_DSN)
    await admin.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
    await admin.close()


@pytest.fixture
async def own_database(settings: Settings) -> AsyncIterator[Settings]:
    """Settings for a database of the test's own, migrated, dropped after it: for servers on
    private Redis, whose relays must not share an outbox with the session's servers."""
    name = f"{DB_NAME}_own"
    admin = await asyncpg.connect(PG_ADMIN_DSN)
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    own = settings.replace(postgres_dsn=_dsn_for(name), mongo_db=name)
    await migrate(own.postgres_dsn)
    mongo = AsyncMongoClient(own.mongo_url)
    await ensure_indexes(mongo[name], own.mongo_ttl_days * 86400)
    yield own
    for spec in collections():  # (the emulator has no dropDatabase)
        await mongo[name][spec.name].delete_many({})
    await mongo.close()
    admin = await asyncpg.connect(PG_ADMIN_DSN)
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.close()


@pytest.fixture
async def own_stores(own_database: Settings) -> AsyncIterator[Stores]:
    """Stores of a database and Redis namespace of the test's own (`own_database`): no server of
    the session relays its outbox or reads its keys. Its keys are deleted after the test."""
    stores = await open_stores(own_database.replace(redis_namespace=own_database.redis_namespace + "own:"))
    yield stores
    keys = [k async for k in stores.redis.scan_iter(match=f"{stores.keys.ns}*", count=1000)]
    if keys:
        await stores.redis.delete(*keys)
    await stores.close()


@pytest.fixture(scope="session")
async def session_stores(settings: Settings, database: str) -> AsyncIterator[Stores]:
    stores = await open_stores(settings)
    # What `nubo migrate` does for MongoDB: collections get their unique and TTL indexes.
    await ensure_indexes(stores.mongo, settings.mongo_ttl_days * 86400)
    yield stores
    await _clean(stores)
    await stores.close()
    shutil.rmtree(MEDIA_DIR, ignore_errors=True)


@pytest.fixture
async def stores(session_stores: Stores) -> Stores:
    """The real stores, emptied before the test."""
    await _clean(session_stores)
    return session_stores


async def _clean(stores: Stores) -> None:
    tables = await stores.pg.fetch(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'schema_migrations'"
    )
    if tables:
        names = ", ".join(f'"{t["tablename"]}"' for t in tables)
        await stores.pg.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
    keys = [k async for k in stores.redis.scan_iter(match=f"{stores.keys.ns}*", count=1000)]
    if keys:
        await stores.redis.delete(*keys)
    for spec in collections():
        await stores.mongo[spec.name].delete_many({})


@pytest.fixture(scope="session")
def server_process(test_env: dict[str, str], session_stores: Stores) -> Iterator[ServerProcess]:
    """One real `nubo serve` process shared by the session's HTTP tests."""
    proc = ServerProcess(test_env)
    try:  # stopped even when it fails to get ready
        proc.start()
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def server(server_process: ServerProcess, stores: Stores) -> ServerProcess:
    """The shared real server, with stores emptied before the test."""
    return server_process


@pytest.fixture
async def api(server: ServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on the real server."""
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        yield client


@pytest.fixture
def start_server(test_env: dict[str, str], stores: Stores) -> Iterator:
    """Start extra real servers (other instances, other settings); all stopped after the test."""
    started: list[ServerProcess] = []

    def start(env: dict[str, str] | None = None, **kwargs: object) -> ServerProcess:
        proc = ServerProcess({**test_env, **(env or {})}, **kwargs)
        started.append(proc)  # before it starts: one that fails to get ready is stopped too
        return proc.start()

    yield start
    for proc in started:
        proc.stop()


# A server starting beside other test runs on 2 cores can take longer than 20 s to answer.
STARTUP_WITHIN = 60.0


@pytest.fixture
def start_patiently(test_env: dict[str, str], stores: Stores) -> Iterator:
    """`start_server`, waiting up to STARTUP_WITHIN seconds for each server to answer
    (tests/test_metrics.py and its kin start several, some with workers); all stopped after."""
    started: list[ServerProcess] = []

    def start(env: dict[str, str] | None = None, **kwargs: object) -> ServerProcess:
        proc = ServerProcess({**test_env, **(env or {})}, **kwargs).start(wait=False)
        started.append(proc)
        proc.wait_ready(timeout=STARTUP_WITHIN)
        return proc

    yield start
    for proc in started:
        proc.stop()


# Debian's chromium, driven by Playwright (which never downloads a browser here): the demo
# page's tests (tests/browser/) and the passkeys' (tests/accounts/). scripts/test installs it.
CHROMIUM = Path(os.environ.get("NUBO_CHROMIUM", "/usr/bin/chromium"))


@pytest.fixture
def chromium() -> Path:
    if not CHROMIUM.exists():
        pytest.skip(f"no chromium at {CHROMIUM} (scripts/test installs Debian's)")
    return CHROMIUM
