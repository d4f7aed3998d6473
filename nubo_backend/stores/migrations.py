"""Schema migrations: sql/migrations/NNNN_name.sql applied in order, once, under an advisory lock."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import asyncpg

from nubo_backend.stores.sql import MIGRATIONS_DIR

# Any constant works; it only has to be the same for every `nubo migrate` process.
ADVISORY_LOCK_KEY = 0x6E75626F  # "nubo"
FILENAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text        NOT NULL,
    checksum   text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


class MigrationError(Exception):
    """The migration files and the database disagree; the message names the file."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()

    @property
    def filename(self) -> str:
        return self.path.name


@dataclass(frozen=True)
class MigrationStatus:
    version: int
    filename: str
    applied_at: str | None  # None while pending


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    found: list[Migration] = []
    if not directory.is_dir() or not any(directory.glob("*.sql")):
        # Else an image or checkout missing sql/ would report "up to date" on an empty database.
        raise MigrationError(
            f"no migration files in {directory}: set NUBO_ROOT to the directory holding sql/ and config/"
        )
    for path in sorted(directory.glob("*.sql")):
        match = FILENAME.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files are named NNNN_name.sql")
        found.append(Migration(int(match[1]), match[2], path, path.read_text()))
    versions = [m.version for m in found]
    if len(versions) != len(set(versions)):
        raise MigrationError("two migration files share a version number")
    return found


@cache
def _discovered(directory: Path) -> tuple[Migration, ...]:
    return tuple(discover(directory))


async def schema_problem(conn: asyncpg.Connection | asyncpg.Pool, directory: Path = MIGRATIONS_DIR) -> str | None:
    """None when the database holds exactly the migrations this code ships, else what is wrong:
    a server on an unmigrated database would answer /ready and then fail every request."""
    migrations = _discovered(directory)
    if not await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL"):
        return "database not migrated: run `nubo migrate`"
    rows = await conn.fetch("SELECT version, checksum FROM schema_migrations")
    applied = {r["version"]: r["checksum"] for r in rows}
    known = {m.version: m for m in migrations}
    unknown = sorted(set(applied) - set(known))
    if unknown:
        return (
            f"database has migration(s) {', '.join(f'{v:04d}' for v in unknown)} that this code does not "
            "know: run the release that applied them, or a newer one"
        )
    pending = [m.filename for m in migrations if m.version not in applied]
    if pending:
        return f"database not migrated ({len(pending)} pending, first {pending[0]}): run `nubo migrate`"
    changed = [m.filename for m in migrations if applied[m.version] != m.checksum]
    if changed:
        return f"{changed[0]} was changed after it was applied; add a new migration instead of editing one"
    return None


async def _applied(conn: asyncpg.Connection) -> dict[int, asyncpg.Record]:
    rows = await conn.fetch("SELECT version, name, checksum, applied_at FROM schema_migrations")
    return {r["version"]: r for r in rows}


def _verify(migrations: list[Migration], applied: dict[int, asyncpg.Record]) -> None:
    for m in migrations:
        row = applied.get(m.version)
        if row is not None and row["checksum"] != m.checksum:
            raise MigrationError(
                f"{m.filename} was changed after it was applied; "
                "add a new migration instead of editing an applied one"
            )


async def migrate(
    dsn: str,
    directory: Path = MIGRATIONS_DIR,
    on_apply: Callable[[Migration], None] | None = None,
) -> list[Migration]:
    """Apply pending migrations, each in its own transaction. Returns those applied now."""
    migrations = discover(directory)
    conn = await asyncpg.connect(dsn)
    try:
        # The lock makes concurrent runs queue up; the second one then finds nothing to do.
        await conn.execute("SELECT pg_advisory_lock($1)", ADVISORY_LOCK_KEY)
        try:
            await conn.execute(CREATE_TABLE)
            applied = await _applied(conn)
            _verify(migrations, applied)
            done: list[Migration] = []
            for m in migrations:
                if m.version in applied:
                    continue
                if on_apply:
                    on_apply(m)
                async with conn.transaction():
                    try:
                        await conn.execute(m.sql)
                    except asyncpg.PostgresError as exc:
                        raise MigrationError(f"{m.filename} failed: {exc}") from exc
                    await conn.execute(
                        "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                        m.version,
                        m.name,
                        m.checksum,
                    )
                done.append(m)
            return done
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", ADVISORY_LOCK_KEY)
    finally:
        await conn.close()


async def status(dsn: str, directory: Path = MIGRATIONS_DIR) -> list[MigrationStatus]:
    migrations = discover(directory)
    conn = await asyncpg.connect(dsn)
    try:
        exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
        applied = await _applied(conn) if exists else {}
    finally:
        await conn.close()
    _verify(migrations, applied)
    return [
        MigrationStatus(
            m.version,
            m.filename,
            applied[m.version]["applied_at"].isoformat() if m.version in applied else None,
        )
        for m in migrations
    ]
