"""Named SQL queries, loaded by aiosql from sql/queries/*.sql and called by name."""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import cache
from typing import Any

import aiosql
from asyncpg import Record

from nubo_backend.settings import ROOT

SQL_DIR = ROOT / "sql"
QUERIES_DIR = SQL_DIR / "queries"
MIGRATIONS_DIR = SQL_DIR / "migrations"

Queries = Any  # aiosql builds the class at run time: one method per `-- name:` query


@cache
def load_queries() -> Queries:
    return aiosql.from_path(QUERIES_DIR, "asyncpg")


async def all_rows(rows: AsyncIterator[Record]) -> list[Record]:
    """Collect a multi-row query: aiosql yields the rows of a plain `-- name:` query lazily."""
    return [row async for row in rows]
