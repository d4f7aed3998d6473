"""Named SQL queries, loaded by aiosql from sql/queries/<domain>/*.sql and called by name.

A query with no suffix yields its rows lazily (aiosql 15): collect them with
`[row async for row in stores.sql.<domain>.<name>(conn, ...)]`.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import aiosql

from nubo_backend.settings import ROOT

SQL_DIR = ROOT / "sql"
QUERIES_DIR = SQL_DIR / "queries"
MIGRATIONS_DIR = SQL_DIR / "migrations"

Queries = Any  # aiosql builds the class at run time: one method per `-- name:` query


@cache
def load_queries() -> Queries:
    return aiosql.from_path(QUERIES_DIR, "asyncpg")

