"""Replicas starting at once each run `nubo migrate` first (the image's CMD): real processes
racing on one empty database apply every migration exactly once, and all of them succeed.
(tests/test_migrations.py races coroutines of one process on made-up migrations.)"""

from __future__ import annotations

import asyncio
import os
import sys
from asyncio.subprocess import PIPE
from collections.abc import AsyncIterator

import asyncpg
import pytest

from nubo_backend.stores.migrations import discover
from tests.databases import drop_database, empty_database, private_name
from tests.support import ROOT

REPLICAS = 3


@pytest.fixture
async def fresh_dsn() -> AsyncIterator[str]:
    name = private_name("replicas")
    yield await empty_database(name)
    await drop_database(name)


async def test_replicas_migrating_at_once_apply_each_migration_once(test_env, fresh_dsn) -> None:
    env = {**os.environ, **test_env, "NUBO_POSTGRES_DSN": fresh_dsn}
    racing = [await asyncio.create_subprocess_exec(sys.executable, "-m", "cli", "migrate", cwd=ROOT, env=env,
                                                   stdout=PIPE, stderr=PIPE) for _ in range(REPLICAS)]
    outputs = await asyncio.wait_for(asyncio.gather(*(proc.communicate() for proc in racing)), timeout=120)
    assert [proc.returncode for proc in racing] == [0] * REPLICAS, outputs
    summaries = sorted(line for out, _ in outputs for line in out.decode().splitlines()
                       if line.startswith("PostgreSQL:"))
    expected = len(discover())
    assert summaries == [f"PostgreSQL: {expected} migration(s) applied"] + ["PostgreSQL: up to date"] * (REPLICAS - 1)
    conn = await asyncpg.connect(fresh_dsn)
    try:
        assert await conn.fetchval("SELECT count(*) FROM schema_migrations") == expected
    finally:
        await conn.close()
