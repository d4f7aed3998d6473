"""PostgreSQL: the asyncpg pool and its health check."""

from __future__ import annotations

import asyncpg


async def _reset(conn: asyncpg.Connection) -> None:
    """Cheaper than asyncpg's default reset query, sent on every release: the app sets no
    session state, LISTENs nowhere and takes no advisory locks on pooled connections, so only
    a transaction left open (a bug) needs undoing."""
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


async def open_pool(dsn: str, *, min_size: int = 2, max_size: int = 20) -> asyncpg.Pool:
    # Statement cache stays on: aiosql sends the same texts again and again.
    return await asyncpg.create_pool(
        dsn, min_size=min(min_size, max_size), max_size=max_size, timeout=5, reset=_reset
    )


async def check(pool: asyncpg.Pool) -> None:
    async with pool.acquire(timeout=2) as conn:
        await conn.fetchval("SELECT 1")
