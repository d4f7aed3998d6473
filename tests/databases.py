"""Private PostgreSQL databases on the shared server, for tests that need one of their own
(never migrated, or migrated by the code under test); each dropped by its test."""

from __future__ import annotations

import asyncpg

from tests.conftest import PG_ADMIN_DSN, RUN_ID, _dsn_for


def private_name(purpose: str) -> str:
    return f"nubo_test_{RUN_ID}_{purpose}"


async def drop_database(name: str) -> None:
    admin = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def empty_database(name: str) -> str:
    """A new, empty database called name (dropped first if a failed run left it); its DSN."""
    await drop_database(name)
    admin = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return _dsn_for(name)
