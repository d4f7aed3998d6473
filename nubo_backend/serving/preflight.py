"""What `nubo serve` and `nubo migrate` check before they start: every store answers, and
(for serve) the schema is exactly the one this code ships."""

from __future__ import annotations

import time
from collections.abc import Callable

import asyncpg

from nubo_backend.settings import Settings
from nubo_backend.stores import mongo, open_stores
from nubo_backend.stores.migrations import Migration, MigrationError, migrate, schema_problem
from nubo_backend.stores.startup import StartupError, construct, retry

# Exit status of a process that refused to start (configuration, stores, schema, port):
# EX_CONFIG from sysexits.h. The instance supervisor does not restart it: it would refuse again.
EXIT_CANNOT_START = 78


class NotMigrated(Exception):
    """The database schema is not this code's; the message says to run `nubo migrate`."""


async def check_before_serving(settings: Settings) -> None:
    stores = await open_stores(settings, pool_size=1)
    try:
        problem = await schema_problem(stores.pg)
    except MigrationError as exc:  # the migration files themselves are missing or misnamed
        problem = str(exc)
    finally:
        await stores.close()
    if problem:
        raise NotMigrated(problem)


async def migrate_all_stores(
    settings: Settings,
    on_apply: Callable[[Migration], None],
) -> tuple[list[Migration], list[str]]:
    """Reach PostgreSQL and MongoDB first, then change them: a MongoDB that is down no longer
    leaves PostgreSQL migrated and the indexes missing."""
    deadline = time.monotonic() + settings.startup_timeout
    conn = await retry("PostgreSQL", settings.postgres_dsn, lambda: asyncpg.connect(settings.postgres_dsn), deadline)
    await conn.close()
    client = construct("MongoDB", settings.mongo_url, mongo.open_client)
    try:
        await retry("MongoDB", settings.mongo_url, lambda: mongo.check(client), deadline)
        applied = await migrate(settings.postgres_dsn, on_apply=on_apply)
        indexes = await mongo.ensure_indexes(client[settings.mongo_db], settings.mongo_ttl_days * 86400)
    finally:
        await client.close()
    return applied, indexes


__all__ = ["EXIT_CANNOT_START", "NotMigrated", "StartupError", "check_before_serving", "migrate_all_stores"]
