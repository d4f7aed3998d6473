import asyncio
from pathlib import Path

import asyncpg
import pytest

from nubo_backend.stores.migrations import MigrationError, discover, migrate, status
from tests.conftest import PG_ADMIN_DSN, _dsn_for


@pytest.fixture
async def scratch_db() -> str:
    """An empty database of the test's own."""
    name = f"nubo_migrations_{id(object())}"
    admin = await asyncpg.connect(PG_ADMIN_DSN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    yield _dsn_for(name)
    admin = await asyncpg.connect(PG_ADMIN_DSN)
    await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    await admin.close()


def make_migrations(directory: Path, *bodies: str) -> Path:
    directory.mkdir(exist_ok=True)
    for i, body in enumerate(bodies, start=1):
        (directory / f"{i:04d}_step{i}.sql").write_text(body)
    return directory


async def test_project_migrations_apply_on_empty_database(scratch_db: str) -> None:
    applied = await migrate(scratch_db)
    assert [m.filename for m in applied] == [m.filename for m in discover()]


async def test_rerunning_is_a_no_op(scratch_db: str, tmp_path: Path) -> None:
    folder = make_migrations(tmp_path / "m", "CREATE TABLE a (id int);", "CREATE TABLE b (id int);")
    assert len(await migrate(scratch_db, folder)) == 2
    assert await migrate(scratch_db, folder) == []


async def test_status_lists_applied_and_pending(scratch_db: str, tmp_path: Path) -> None:
    folder = make_migrations(tmp_path / "m", "CREATE TABLE a (id int);")
    await migrate(scratch_db, folder)
    make_migrations(folder, "CREATE TABLE a (id int);", "CREATE TABLE b (id int);")
    rows = await status(scratch_db, folder)
    assert [(r.filename, r.applied_at is not None) for r in rows] == [
        ("0001_step1.sql", True),
        ("0002_step2.sql", False),
    ]


async def test_changed_applied_file_is_an_error_naming_it(scratch_db: str, tmp_path: Path) -> None:
    folder = make_migrations(tmp_path / "m", "CREATE TABLE a (id int);")
    await migrate(scratch_db, folder)
    (folder / "0001_step1.sql").write_text("CREATE TABLE a (id bigint);")
    with pytest.raises(MigrationError, match="0001_step1.sql"):
        await migrate(scratch_db, folder)


async def test_failed_migration_rolls_back_and_names_the_file(scratch_db: str, tmp_path: Path) -> None:
    folder = make_migrations(tmp_path / "m", "CREATE TABLE a (id int);", "CREATE TABLE a (id int);")
    with pytest.raises(MigrationError, match="0002_step2.sql"):
        await migrate(scratch_db, folder)
    rows = await status(scratch_db, folder)
    assert [r.applied_at is not None for r in rows] == [True, False]


async def test_concurrent_runs_apply_each_migration_once(scratch_db: str, tmp_path: Path) -> None:
    # A non-idempotent body: a second application would fail on the existing table.
    folder = make_migrations(
        tmp_path / "m", "CREATE TABLE a (id int); SELECT pg_sleep(0.2);", "CREATE TABLE b (id int);"
    )
    results = await asyncio.gather(*(migrate(scratch_db, folder) for _ in range(4)))
    assert sorted(len(r) for r in results) == [0, 0, 0, 2]
    conn = await asyncpg.connect(scratch_db)
    assert await conn.fetchval("SELECT count(*) FROM schema_migrations") == 2
    await conn.close()


def test_badly_named_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "create_things.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="NNNN_name.sql"):
        discover(tmp_path)
